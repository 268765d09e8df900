"""``ragate score --engine spark`` checks an input file before the Spark session starts
(found by an independent tester: a Parquet file without the needed columns was refused only
after ~39 s of JVM start-up). No Spark session here: that is the point."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gates.spark import check_input
from ragate_core.errors import UsageError


def test_a_parquet_file_without_needed_columns_is_refused_without_a_session(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"id": ["a"], "question": ["q"]}).to_parquet(path)
    with pytest.raises(UsageError, match=r"missing column\(s\) answer, contexts"):
        check_input(str(path))


def test_a_bad_jsonl_row_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"rows.jsonl:1"):
        check_input(str(path))
    with pytest.raises(UsageError, match="no such file"):
        check_input(str(tmp_path / "missing.parquet"))


def test_good_rows_come_back_for_the_session(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    row = {"id": "a", "question": "q", "answer": "x", "contexts": ["c"]}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    rows = check_input(str(path))
    assert rows is not None and rows[0]["id"] == "a"
    assert check_input("catalog.table") is None  # a table: checked by the session
