"""Datasets as JSONL, CSV and Parquet: one schema, errors naming row, line and column."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gates.schema import AnswerRow, GoldenCase
from ragate_core.errors import UsageError
from ragate_core.tables import DataError, read_rows

ROWS: list[dict[str, Any]] = [
    {
        "id": "a1",
        "question": "How long do refunds take?",
        "answer": "Within 14 days.",
        "contexts": ["Refunds are issued within 14 days.", "They go to the original payment method."],
        "answerable": True,
        "latency_ms": 812.5,
        "tags": ["billing"],
    },
    {
        "id": "a2",
        "question": "Is there a Linux app?",
        "answer": "",
        "contexts": [],
        "answerable": False,
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            cells = []
            for c in columns:
                value = row.get(c)
                if isinstance(value, list):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = str(value).lower()
                cells.append("" if value is None else value)
            writer.writerow(cells)
    return path


def test_csv_and_parquet_read_as_the_same_rows_as_jsonl(tmp_path: Path) -> None:
    expected = read_rows(write_jsonl(tmp_path / "rows.jsonl", ROWS), AnswerRow)
    from_csv = read_rows(write_csv(tmp_path / "rows.csv", ROWS), AnswerRow)
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table, tmp_path / "rows.parquet")
    from_parquet = read_rows(tmp_path / "rows.parquet", AnswerRow)

    assert from_csv == expected
    assert from_parquet == expected
    assert from_csv[1].answer == ""  # an empty cell in a required text column is ""
    assert from_csv[1].latency_ms is None  # an empty optional cell is missing


def test_golden_cases_from_csv(tmp_path: Path) -> None:
    rows = [
        {"id": "g1", "question": "What does Pro cost?", "ground_truth": "$19.", "source_ids": ["pricing"]},
        {"id": "g2", "question": "Linux app?", "ground_truth": "Not documented.", "source_ids": []},
    ]
    cases = read_rows(write_csv(tmp_path / "golden.csv", rows), GoldenCase)
    assert [c.answerable for c in cases] == [True, False]


def test_a_csv_cell_that_is_not_a_json_list_names_line_row_and_column(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[0] | {"id": "a3", "contexts": "Refunds take 14 days."}]
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError) as info:
        read_rows(path, AnswerRow)
    message = str(info.value)
    assert f"{path}:3 (row 2)" in message
    assert "column 'contexts'" in message and "a list of strings" in message


def test_a_broken_json_list_in_a_cell(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [ROWS[0] | {"contexts": '["unclosed'}])
    with pytest.raises(DataError, match=r"bad.csv:2 \(row 1\): column 'contexts': not a valid JSON list"):
        read_rows(path, AnswerRow)


def test_a_list_of_numbers_names_the_item(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [ROWS[0] | {"contexts": [1, 2]}])
    with pytest.raises(DataError, match=r"column 'contexts' item 0: expected a list of strings, got int 1"):
        read_rows(path, AnswerRow)


def test_a_wrong_cell_type_names_column_and_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [ROWS[0], ROWS[1] | {"latency_ms": "fast"}])
    with pytest.raises(DataError, match=r"bad.csv:3 \(row 2\): column 'latency_ms': expected a number"):
        read_rows(path, AnswerRow)


def test_multiline_cells_keep_line_numbers_right(tmp_path: Path) -> None:
    rows = [ROWS[0] | {"answer": "line one\nline two"}, ROWS[1] | {"answerable": "perhaps"}]
    path = write_csv(tmp_path / "multi.csv", rows)
    with pytest.raises(
        DataError, match=r"multi.csv:4 \(row 2\): column 'answerable': expected true or false"
    ):
        read_rows(path, AnswerRow)


def test_missing_and_unknown_columns_are_named_before_any_row(tmp_path: Path) -> None:
    missing = write_csv(tmp_path / "missing.csv", [{k: v for k, v in ROWS[0].items() if k != "contexts"}])
    with pytest.raises(DataError, match=r"missing column 'contexts' \('contexts': a list of strings\)"):
        read_rows(missing, AnswerRow)
    unknown = write_csv(tmp_path / "unknown.csv", [ROWS[0] | {"contxts": "[]"}])
    with pytest.raises(DataError, match=r"unknown column 'contxts'; known columns: id, question"):
        read_rows(unknown, AnswerRow)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "dup.csv", [ROWS[0], ROWS[0]])
    with pytest.raises(DataError, match=r"dup.csv:3 \(row 2\): duplicate id 'a1' \(first at .*dup.csv:2"):
        read_rows(path, AnswerRow)


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,question,answer,contexts\na1,Caf\xe9?,Yes,[]\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_rows(path, AnswerRow)


def test_parquet_wrong_column_type_names_column_and_row(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": ["a1", "a2"],
            "question": ["q1", "q2"],
            "answer": ["x", "y"],
            "contexts": pa.array([["c"], None], type=pa.list_(pa.string())),
            "latency_ms": ["12", "slow"],
        }
    )
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError) as info:
        read_rows(path, AnswerRow)
    # Row 1 is fine (a numeric string converts); row 2 lacks contexts and has a bad latency.
    message = str(info.value)
    assert "bad.parquet: row 2" in message
    assert "column 'contexts' is missing or empty" in message
    assert "column 'latency_ms': expected a number (may be empty), got str 'slow'" in message


def test_a_parquet_column_named_twice_is_said_as_for_csv(tmp_path: Path) -> None:
    columns = [pa.array(["a"]), pa.array(["b"]), pa.array(["q"]), pa.array(["x"]), pa.array([["c"]])]
    path = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_arrays(columns, names=["id", "id", "question", "answer", "contexts"]), path)
    with pytest.raises(DataError, match=r"twice\.parquet: duplicate column name 'id'$"):
        read_rows(path, AnswerRow)


def test_a_large_parquet_file_is_read_in_batches_in_order(tmp_path: Path) -> None:
    n = 10_000  # more than one record batch
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "question": ["q"] * n,
            "answer": ["a"] * n,
            "contexts": [["c"]] * n,
        }
    )
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=3_000)
    assert [r.id for r in read_rows(path, AnswerRow)] == [f"r{i}" for i in range(n)]


def test_parquet_that_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("id,question\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_rows(path, AnswerRow)


def test_jsonl_messages_are_unchanged_and_errors_are_value_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a1"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:1: not valid JSON") as info:
        read_rows(path, AnswerRow)
    assert isinstance(info.value, UsageError) and isinstance(info.value, ValueError)
    with pytest.raises(DataError, match="no such file"):
        read_rows(tmp_path / "absent.csv", AnswerRow)


def test_a_profile_dataset_may_be_csv_or_parquet(tmp_path: Path) -> None:
    from gates.engine import load_cases
    from gates.profile import load_profile

    rows = [
        {"id": "g1", "question": "What does Pro cost?", "ground_truth": "$19.", "source_ids": ["pricing"]},
        {"id": "g2", "question": "Linux app?", "ground_truth": "Not documented.", "source_ids": []},
    ]
    write_csv(tmp_path / "golden.csv", rows)
    pq.write_table(pa.Table.from_pylist([r | {"id": "p" + r["id"]} for r in rows]), tmp_path / "more.parquet")
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "env: ci\ndatasets:\n  - {name: golden, path: golden.csv}\n  - {name: more, path: more.parquet}\n"
        "metrics:\n  latency: {threshold: 1000, rules: {max_p95: 1000}}\n",
        encoding="utf-8",
    )
    cases = load_cases(load_profile(str(profile), tmp_path), tmp_path)
    assert [(c.id, c.answerable) for c in cases] == [
        ("g1", True),
        ("g2", False),
        ("pg1", True),
        ("pg2", False),
    ]


def test_a_repeated_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("id,question,answer,contexts,answer\na1,Q?,A,[],B\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"twice.csv: duplicate column name 'answer'"):
        read_rows(path, AnswerRow)
