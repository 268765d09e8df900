"""``ragate score``: scores existing answers (no generation), in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gates.cli import main

CONTEXT = "Refunds are issued within 14 days of a cancellation, to the original payment method."
ROWS = [
    {
        "id": "good",
        "question": "How long do refunds take?",
        "answer": "Refunds are issued within 14 days, to the original payment method.",
        "contexts": [CONTEXT],
        "sources": ["refund-policy"],
        "latency_ms": 812.0,
    },
    {
        "id": "wrong-number",
        "question": "How long do refunds take?",
        "answer": "Refunds are issued within 45 days, to the original payment method.",
        "contexts": [CONTEXT],
    },
    {
        "id": "abstains",
        "question": "Is there a Linux app?",
        "answer": "I don't know; the documentation does not say.",
        "contexts": [CONTEXT],
        "answerable": False,
    },
]


def write_rows(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_score_writes_the_input_plus_scores_and_reasons(tmp_path: Path, capsys) -> None:
    source = write_rows(tmp_path / "cases.jsonl", ROWS)
    output = tmp_path / "out" / "scores.jsonl"

    code = main(
        [
            "score",
            "--metrics",
            "faithfulness,answer_relevancy",
            "--input",
            str(source),
            "--output",
            str(output),
        ]
    )

    assert code == 0
    rows = read_rows(output)
    assert [r["id"] for r in rows] == ["good", "wrong-number", "abstains"]
    for given, row in zip(ROWS, rows):
        assert {k: row[k] for k in given} == given  # the input row, unchanged
        assert set(row) - set(given) == {"scores", "reasons"}
        assert set(row["scores"]) == set(row["reasons"]) == {"faithfulness", "answer_relevancy"}
        assert all(0.0 <= v <= 1.0 for v in row["scores"].values())
        assert all(isinstance(r, str) and r for r in row["reasons"].values())
    good, wrong, abstains = rows
    assert wrong["scores"]["faithfulness"] < 0.5 <= good["scores"]["faithfulness"]
    assert "45" in wrong["reasons"]["faithfulness"]
    assert abstains["scores"] == {"faithfulness": 1.0, "answer_relevancy": 1.0}
    assert "scored 3 rows with faithfulness, answer_relevancy" in capsys.readouterr().err


def test_score_defaults_to_all_four_metrics(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "cases.jsonl", ROWS[:1])
    output = tmp_path / "scores.jsonl"

    assert main(["score", "--input", str(source), "--output", str(output)]) == 0

    [row] = read_rows(output)
    assert set(row["scores"]) == {"faithfulness", "answer_relevancy", "toxicity", "pii"}
    assert all(0.0 <= v <= 1.0 for v in row["scores"].values())
    # toxicity and pii are probabilities of a violation: a clean answer scores low.
    assert row["scores"]["toxicity"] < 0.5 and row["scores"]["pii"] < 0.5


@pytest.mark.parametrize(
    ("lines", "where", "what"),
    [
        ([ROWS[0], "{not json"], ":2:", "not valid JSON"),
        ([ROWS[0], ROWS[1], {"id": "x", "question": "q", "answer": "a"}], ":3:", "missing field 'contexts'"),
        ([{**ROWS[0], "context": ["typo"]}], ":1:", "unknown field 'context'"),
        ([{**ROWS[0], "contexts": "not a list"}], ":1:", "field 'contexts'"),
        ([ROWS[0], ROWS[0]], ":2:", "duplicate id 'good'"),
    ],
)
def test_malformed_input_is_exit_2_naming_file_and_line_and_writes_nothing(
    tmp_path: Path, capsys, lines: list[Any], where: str, what: str
) -> None:
    source = write_rows(tmp_path / "cases.jsonl", lines)
    output = tmp_path / "scores.jsonl"

    code = main(["score", "--metrics", "faithfulness", "--input", str(source), "--output", str(output)])

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ragate score: error: {source}{where}")
    assert what in err
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [source]  # no temporary file left behind either


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metrics", "faithfulness,coherence"], "unknown metric(s) coherence; choose from"),
        (["--metrics", ","], "unknown metric(s) (none given)"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    source = write_rows(tmp_path / "cases.jsonl", ROWS)
    with pytest.raises(SystemExit) as excinfo:
        main(["score", *argv, "--input", str(source), "--output", str(tmp_path / "o.jsonl")])
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_input_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["score", "--input", str(tmp_path / "absent.jsonl"), "--output", str(tmp_path / "o.jsonl")])
    assert excinfo.value.code == 2
    assert "absent.jsonl: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["score", "ask"])
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("output is input", "is the --input file; write the results to another file"),
        ("output is a folder", "is a directory; give a file path"),
        ("empty input", "no rows (the file is empty or holds only blank lines)"),
        ("blank input", "no rows (the file is empty or holds only blank lines)"),
    ],
)
def test_bad_input_or_output_is_exit_2_before_any_work(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, command: str, case: str, message: str
) -> None:
    import gates.cli

    def no_work(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("work started before the input and output were checked")

    monkeypatch.setattr(gates.cli, "_configured_chain", no_work, raising=False)  # ask: no chain is built
    monkeypatch.setattr("gates.metrics.base.get_metric", no_work)  # score: no metric loads
    # Rows each command accepts: answers to score, questions to ask.
    rows = ROWS if command == "score" else [{"id": r["id"], "question": r["question"]} for r in ROWS]
    source = write_rows(tmp_path / "cases.jsonl", rows)
    output = tmp_path / "out.jsonl"
    if case == "output is input":
        output = source
    elif case == "output is a folder":
        output = tmp_path / "folder"
        output.mkdir()
    elif case == "empty input":
        source.write_text("")
    else:
        source.write_text("\n   \n\n")
    before = source.read_bytes()

    assert main([command, "--input", str(source), "--output", str(output)]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"ragate {command}: error: ")
    assert message in err
    assert source.read_bytes() == before  # the input is never replaced
    assert not (tmp_path / "out.jsonl").exists()
