"""One rule for ids and nulls, whatever path a row enters by (found by a tester: "numeric ids
and Parquet nulls are handled inconsistently").

The same rows go through the gate engine's dataset reader (``load_cases``), ``ragate score
--input``, :func:`gates.evaluate` (a file, a list of dicts, a DataFrame) and the Spark
engine's pre-check (``check_input``; the Spark-side check of Parquet folders and tables is
in ``tests/test_spark.py``), as JSON Lines and as Parquet. The rule:

- an ``id`` is text; a whole number is accepted as its decimal text (``7`` is ``"7"``, so
  ``"1"`` and ``1`` are the same id); a float or a boolean is refused;
- a known field that is null is a field left out: an optional one takes its default, a
  required one is reported missing;
- a refused row is named (``file:line``, ``file: row N`` or ``row N``) with its column,
  ``ragate score`` exits 2 without a traceback and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gates.api import evaluate
from gates.cli import main
from gates.engine import load_cases
from gates.profile import GateProfile
from gates.spark import check_input
from ragate_core.errors import UsageError

GOLDEN = {"question": "Refunds?", "ground_truth": "Within 30 days.", "source_ids": ["doc-1"]}
ANSWER = {"question": "Refunds?", "answer": "Within 30 days.", "contexts": ["Refunds: 30 days."]}
ID_RULE = 'an id is text such as "q1" or a whole number such as 7'


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _engine(tmp: Path, rows: list[dict[str, Any]], suffix: str) -> list[str]:
    path = _write(tmp / f"qa{suffix}", [GOLDEN | r for r in rows])
    profile = GateProfile.model_validate(
        {"env": "ci", "datasets": [{"name": "g", "path": str(path)}], "metrics": {"latency": {}}}
    )
    return [c.id for c in load_cases(profile, tmp, mask=False)]


def _score(tmp: Path, rows: list[dict[str, Any]], suffix: str) -> list[str]:
    path = _write(tmp / f"answers{suffix}", [ANSWER | r for r in rows])
    output = tmp / "scored.jsonl"
    code = main(["score", "--input", str(path), "--output", str(output), "--metrics", "latency"])
    if code == 2:
        assert not output.exists()  # nothing half-written
        raise UsageError("exit 2")  # the message is on stderr: the caller reads it there
    return [json.loads(line)["id"] for line in output.read_text().splitlines()]


def _api_file(tmp: Path, rows: list[dict[str, Any]], suffix: str) -> list[str]:
    path = _write(tmp / f"answers{suffix}", [ANSWER | r for r in rows])
    return list(evaluate(path, metrics=["latency"], cache=False, root=tmp).scores.index)


def _api_rows(tmp: Path, rows: list[dict[str, Any]], suffix: str) -> list[str]:
    data: Any = [ANSWER | r for r in rows]
    if suffix == ".parquet":  # a DataFrame, with the column types a Parquet file gives
        path = _write(tmp / "frame.parquet", data)
        data = pd.read_parquet(path)
    return list(evaluate(data, metrics=["latency"], cache=False, root=tmp).scores.index)


def _spark_precheck(tmp: Path, rows: list[dict[str, Any]], suffix: str) -> list[str]:
    path = _write(tmp / f"answers{suffix}", [ANSWER | r for r in rows])
    checked = check_input(str(path))
    if checked is None:  # Parquet: checked, but read by the session
        return [str(r["id"]) for r in pq.read_table(path, columns=["id"]).to_pylist()]
    return [r["id"] for r in checked]


PATHS: dict[str, Callable[[Path, list[dict[str, Any]], str], list[str]]] = {
    "engine": _engine,
    "score": _score,
    "api-file": _api_file,
    "api-rows": _api_rows,
    "spark-precheck": _spark_precheck,
}
SUFFIXES = (".jsonl", ".parquet")

# name -> (rows, the ids every path reads, or the words every path's message holds)
ACCEPTED: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "integer id": ([{"id": 7}, {"id": 12}], ["7", "12"]),
    "null tags": ([{"id": "a", "tags": None}], ["a"]),
}
# Answer rows only: these fields are required in a golden row.
ACCEPTED_ANSWERS: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "null optional fields": ([{"id": "a", "ground_truth": None, "source_ids": None, "rail": None}], ["a"]),
}
REFUSED: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {
    "float id": ([{"id": 1.0}], ("'id'", ID_RULE, "not a float")),
    "boolean id": ([{"id": True}], ("'id'", ID_RULE, "not a bool")),
    "null id": ([{"id": "a"}, {"id": None}], ("'id'", "missing")),
    "null question": ([{"id": "a", "question": None}], ("'question'", "missing")),
}
# Answer rows only (a golden row has no answer or contexts).
REFUSED_ANSWERS: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {
    "null answer": ([{"id": "a", "answer": None}], ("'answer'", "missing")),
    "null contexts": ([{"id": "a", "contexts": None}], ("'contexts'", "missing")),
    "null context in the list": ([{"id": "a", "contexts": ["c", None]}], ("contexts", "valid string")),
}
# Golden rows only (the engine): required there, optional in an answer row.
REFUSED_GOLDEN: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {
    "null ground_truth": ([{"id": "a", "ground_truth": None}], ("'ground_truth'", "missing")),
    "null source_ids": ([{"id": "a", "source_ids": None}], ("'source_ids'", "missing")),
}


def _where(path: str, suffix: str, line: int) -> str:
    """How each path names row ``line`` (1-based) of its input."""
    if path == "api-rows":
        return f"row {line - 1}"
    return f"{suffix}:{line}:" if suffix == ".jsonl" else f"{suffix}: row {line}:"


def _refusal(
    run: Callable[..., list[str]], tmp: Path, rows: list[dict[str, Any]], suffix: str, capsys
) -> str:
    with pytest.raises(UsageError) as caught:
        run(tmp, rows, suffix)
    err = capsys.readouterr().err
    if run is _score:
        assert err.startswith("ragate score: error: ") and "Traceback" not in err
        return err
    return str(caught.value)


def _pairs(common: dict[str, Any], answers: dict[str, Any], golden: dict[str, Any]) -> list[tuple[str, str]]:
    """(case, path) pairs: answer-row cases skip the engine, golden-row cases are the engine's."""
    return [
        (case, path)
        for case in [*common, *answers, *golden]
        for path in PATHS
        if (path == "engine") == (case in golden) or case in common
    ]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(("case", "path"), _pairs(ACCEPTED, ACCEPTED_ANSWERS, {}))
def test_accepted_rows_read_the_same_everywhere(case: str, path: str, suffix: str, tmp_path: Path) -> None:
    rows, ids = {**ACCEPTED, **ACCEPTED_ANSWERS}[case]
    assert PATHS[path](tmp_path, rows, suffix) == ids


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize(("case", "path"), _pairs(REFUSED, REFUSED_ANSWERS, REFUSED_GOLDEN))
def test_refused_rows_are_refused_everywhere_naming_row_and_column(
    case: str, path: str, suffix: str, tmp_path: Path, capsys
) -> None:
    rows, words = {**REFUSED, **REFUSED_ANSWERS, **REFUSED_GOLDEN}[case]
    message = _refusal(PATHS[path], tmp_path, rows, suffix, capsys)
    for word in words:
        assert word in message
    assert _where(path, suffix, len(rows)) in message


@pytest.mark.parametrize("path", PATHS)
def test_ids_differing_only_in_type_are_one_id(path: str, tmp_path: Path, capsys) -> None:
    message = _refusal(PATHS[path], tmp_path, [{"id": "1"}, {"id": 1}], ".jsonl", capsys)
    assert "duplicate id '1'" in message and _where(path, ".jsonl", 2) in message


@pytest.mark.parametrize("path", PATHS)
def test_an_unknown_field_is_refused_even_when_null(path: str, tmp_path: Path, capsys) -> None:
    message = _refusal(PATHS[path], tmp_path, [{"id": "a", "colour": None}], ".jsonl", capsys)
    assert "'colour'" in message and "unknown" in message


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("path", [p for p in PATHS if p != "api-rows"])  # in memory: labelled by row
def test_a_file_without_ids_is_refused_everywhere(path: str, suffix: str, tmp_path: Path, capsys) -> None:
    message = _refusal(PATHS[path], tmp_path, [{}], suffix, capsys)
    assert "missing" in message and "id" in message
