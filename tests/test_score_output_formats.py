"""``ragate score --output``: the format follows the suffix (found by an independent tester:
a ``.parquet`` or ``.csv`` output used to get JSON Lines). Parquet has the columns the Spark
engine writes; a suffix no writer handles is a usage error before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gates.cli import main

ROWS = [
    {
        "id": "a",
        "question": "How do I reset it?",
        "answer": "Hold the button for 5 s.",
        "contexts": ["Hold 5 s."],
    },
    {
        "id": "b",
        "question": "Who to call?",
        "answer": "Call jane.doe@example.com.",
        "contexts": ["Call support."],
    },
]


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def test_parquet_output_holds_the_rows_and_score_columns(tmp_path: Path) -> None:
    output = tmp_path / "out.parquet"
    assert main(["score", "--metrics", "pii", "--input", str(_input(tmp_path)), "--output", str(output)]) == 0
    frame = pd.read_parquet(output)
    assert list(frame["id"]) == ["a", "b"]
    assert list(frame["contexts"].map(list)) == [r["contexts"] for r in ROWS]
    assert {"score__pii", "reason__pii"} <= set(frame.columns)
    assert frame["score__pii"][0] < 0.5 <= frame["score__pii"][1]
    assert {p.name for p in tmp_path.iterdir()} == {"in.jsonl", "out.parquet"}  # no temporary left


@pytest.mark.parametrize("name", ["out.csv", "out.txt", "out"])
def test_an_unwritten_format_is_exit_2_and_writes_nothing(tmp_path: Path, capsys, name: str) -> None:
    source = _input(tmp_path)
    code = main(["score", "--metrics", "pii", "--input", str(source), "--output", str(tmp_path / name)])
    assert code == 2
    err = capsys.readouterr().err
    assert "the format follows the suffix" in err and ".jsonl or .json or .parquet or .pq" in err
    assert "Traceback" not in err
    assert {p.name for p in tmp_path.iterdir()} == {"in.jsonl"}


def test_an_abbreviated_option_is_not_guessed(tmp_path: Path, capsys) -> None:
    source = _input(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--metric", "pii", "--input", str(source), "--output", str(tmp_path / "o.jsonl")])
    assert exit_info.value.code == 2
    assert "unknown option --metric (did you mean --metrics?)" in capsys.readouterr().err


def test_a_misspelled_option_is_named_before_a_missing_one(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["promote", "--too", "champion"])
    assert exit_info.value.code == 2
    assert "unknown option --too (did you mean --to?)" in capsys.readouterr().err


def test_the_options_of_a_subcommand_are_known_to_its_command(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["feedback", "export", "--sinse", "1d"])
    assert exit_info.value.code == 2
    assert "unknown option --sinse (did you mean --since?)" in capsys.readouterr().err
