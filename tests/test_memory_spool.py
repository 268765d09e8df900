"""A large gate run keeps its per-case results on disk (issue 12 item 3, bounded memory):
answered and scored a part at a time, each part spooled (gates.engine.ResultSpool) and read
back one case at a time. The same results, verdict and gate-report.json as a run that holds
every result in memory; nothing raw on disk; the dataset read line by line
(ragate_core.tables.iter_rows) with read_rows' rows and messages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import gates.engine as engine_module
from gates.cache import Cache
from gates.engine import GateEngine, GateRun, SpooledResults
from gates.profile import GateProfile
from gates.report import build_report
from gates.reporters import write_reports
from gates.schema import GoldenCase
from ragate_core.errors import UsageError
from ragate_core.tables import iter_rows, read_rows

EMAIL = "ann.lee@example.com"
N = 11


class FakeEchoChain:
    """A fake chain for a test: quotes the question (so a personal one leaks into the
    answer), fresh context strings per call, a latency that varies with the case and the
    sample, and an error for one question."""

    def __init__(self) -> None:
        self.version = {"fake-echo-spool": "1"}

    def invoke(self, question: str, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
        if "boom" in question:
            raise RuntimeError("the chain broke")
        number = int(question.split("#")[1].split(" ")[0])
        return {
            "answer": f"You asked: {question}",
            "contexts": ["".join(["Refunds take ", "thirty days."]), "".join(["SSO is ", "in Pro."])],
            "sources": ["refunds", "sso"] if number % 3 else ["billing"],
            "latency_ms": 100.0 * (number % 5) + 450.0 * seed + 10.0,  # above any call's own wall time
        }


def _profile(tmp_path: Path) -> GateProfile:
    rows = []
    for i in range(N):
        question = f"Question #{i} about refunds?"
        if i == 4:
            question = f"Question #{i} please write to {EMAIL}?"
        if i == 7:
            question = "Question #7 boom?"
        rows.append(
            {
                "id": f"q{i:03d}",
                "question": question,
                "ground_truth": "x",
                "source_ids": ["refunds"],
                "tags": ["t"],
            }
        )
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    return GateProfile.model_validate(
        {
            "env": "ci",
            "datasets": [{"name": "golden", "path": str(tmp_path / "qa.jsonl")}],
            "sampling": {"repeats": 2},
            "metrics": {
                "latency": {"threshold": 500, "rules": {"max_p95": 900}},
                "hit_rate": {"threshold": 0.5, "rules": {"min_mean": 0.1}},
                "mrr": {"threshold": 0.5, "rules": {"min_lower_bound": 0.1}},
                "context_recall": {"threshold": 0.5, "rules": {"min_pass_rate": 0.1}},
            },
        }
    )


def _run(tmp_path: Path, folder: str, in_memory: int, monkeypatch: pytest.MonkeyPatch) -> GateRun:
    monkeypatch.setattr(engine_module, "RESULTS_IN_MEMORY", in_memory)
    cache = Cache(tmp_path / folder / "cache.sqlite")
    return GateEngine(_profile(tmp_path), tmp_path, FakeEchoChain, cache).run()


def _report_text(run: GateRun, tmp_path: Path, folder: str, old_way: bool) -> str:
    info = {"thresholds": run.thresholds, "profile": "p.yaml", "flaky": run.flaky}
    if old_way:  # as the benchmark built it before the spool: every record in one dict
        records = {}
        for result in run.results:
            record = result.to_dict()
            records[record["id"]] = record
        report = build_report("ci", run.verdict.gates, records, info)
    else:
        report = dataclasses.replace(
            build_report("ci", run.verdict.gates, (), info), cases=run.case_records()
        )
    report = dataclasses.replace(report, created="2026-01-01T00:00:00+00:00")
    (path,) = write_reports(report, tmp_path / folder / "reports", ["json"])
    return path.read_text(encoding="utf-8")


def test_a_spooled_run_gives_the_same_results_verdict_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = _run(tmp_path, "held", 10_000, monkeypatch)
    spooled = _run(tmp_path, "spooled", 3, monkeypatch)  # 22 cases: 8 parts of 3 at most
    assert isinstance(spooled.results, SpooledResults) and not isinstance(held.results, SpooledResults)
    assert len(spooled.results) == len(held.results) == 2 * N
    assert spooled.verdict == held.verdict
    assert spooled.flaky == held.flaky and spooled.flaky["latency"]
    for name in ("generated", "generation_cache_hits", "served_failures"):
        assert getattr(spooled.stats, name) == getattr(held.stats, name), name
    # A judgment a later part repeats (same inputs) is found in the cache the earlier one
    # filled: counted as a hit, not made again.
    total = spooled.stats.judgments + spooled.stats.judgment_cache_hits
    assert total == held.stats.judgments + held.stats.judgment_cache_hits
    assert [r.to_dict() for r in spooled.results] == [r.to_dict() for r in held.results]
    assert [r.case for r in spooled.results] == [r.case for r in held.results]
    values = [{m: s.value for m, s in r.scores.items()} for r in held.results]
    assert [{m: s.value for m, s in r.scores.items()} for r in spooled.results] == values
    assert spooled.case("q004#r2").to_dict() == held.case("q004#r2").to_dict()
    assert spooled.case("q007#r1").error == held.case("q007#r1").error
    assert spooled.results[-1].to_dict() == held.results[-1].to_dict()
    assert [r.case.id for r in spooled.results[2:5]] == [r.case.id for r in held.results[2:5]]
    assert [r.case.id for r in spooled.by_metric("mrr")] == [r.case.id for r in held.by_metric("mrr")]
    with pytest.raises(KeyError):
        spooled.case("q999")
    with pytest.raises(IndexError):
        spooled.results[2 * N]
    # gate-report.json: byte for byte what the records of a run held in memory gave.
    before = _report_text(held, tmp_path, "held", old_way=True)
    assert _report_text(held, tmp_path, "held2", old_way=False) == before
    assert _report_text(spooled, tmp_path, "spooled", old_way=False) == before
    assert EMAIL not in before and "<EMAIL_ADDRESS>" in before
    # Read back from the spool, the personal answer is the masked one, never the raw.
    assert EMAIL not in spooled.case("q004#r1").answer.answer
    spool_file = Path(spooled.results.spool.db.execute("PRAGMA database_list").fetchone()[2])
    assert EMAIL.encode() not in spool_file.read_bytes()
    # Warm: every answer and judgment from the cache, the same report.
    warm = _run(tmp_path, "spooled", 3, monkeypatch)
    assert warm.stats.generated == 0 and warm.verdict == held.verdict
    assert _report_text(warm, tmp_path, "warm", old_way=False) == before


def test_spooled_contexts_are_held_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path, "spooled", 4, monkeypatch)
    contexts = [r.answer.contexts for r in run.results if r.answer is not None]
    assert contexts[0] == ("Refunds take thirty days.", "SSO is in Pro.")
    assert all(a is b for c in contexts for a, b in zip(c, contexts[0]))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_iter_rows_reads_what_read_rows_reads(tmp_path: Path) -> None:
    rows = [
        {"id": f"r{i}", "question": f"Question {i}? \u2028 next", "ground_truth": "x", "source_ids": ["s"]}
        for i in range(5)
    ]
    text = "\ufeff" + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[:3]) + "\n\n  \r\n"
    text += "\n".join(json.dumps(r, ensure_ascii=False) for r in rows[3:])
    path = _write(tmp_path / "qa.jsonl", text.encode("utf-8"))
    assert list(iter_rows(path, GoldenCase)) == read_rows(path, GoldenCase)
    assert [r.id for r in iter_rows(path, GoldenCase)] == [f"r{i}" for i in range(5)]


ROW = b'{"id": "a", "question": "Q?", "ground_truth": "x", "source_ids": []}\n'


@pytest.mark.parametrize(
    "data",
    [
        ROW + ROW,
        ROW + b'\n{"id": "b", "question": \n',
        ROW + b'["not", "an", "object"]\n',
        ROW + ROW.replace(b'"a"', b'"b"').replace(b"Q?", b"Q\xff?"),
        ROW + ROW.replace(b'"a"', b'"b"').replace(b'"question"', b'"questions"'),
    ],
    ids=["duplicate-id", "bad-json", "not-an-object", "not-utf8", "unknown-field"],
)
def test_iter_rows_raises_read_rows_messages(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path / "bad.jsonl", data)
    with pytest.raises(UsageError) as expected:
        read_rows(path, GoldenCase)
    with pytest.raises(UsageError) as got:
        list(iter_rows(path, GoldenCase))
    assert str(got.value) == str(expected.value) and "bad.jsonl:1:" not in str(got.value)


def test_iter_rows_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        list(iter_rows(tmp_path / "nope.jsonl", GoldenCase))


@pytest.mark.parametrize("count", [0, 1, 3])
def test_cases_json_is_written_as_json_dumps_writes_it(tmp_path: Path, count: int) -> None:
    from io import StringIO

    from gates.results import CaseRecord
    from gates.tracking import write_cases_json

    cases = [
        CaseRecord(
            id=f"c{i}",
            question="Où est\nle remboursement?",
            answer=None if i == 1 else 'Thirty "days"\u2028.',
            tags=("t",),
            scores={"faithfulness": 0.5, "latency": None},
            reasons={"faithfulness": "weakest claim 'x'"},
            extra={"nested": {"a": [1, {"b": "\t"}]}},
        )
        for i in range(count)
    ]
    out = StringIO()
    write_cases_json(iter(cases), out)
    assert out.getvalue() == json.dumps({"cases": [c.to_dict() for c in cases]}, indent=2)


def test_worst_failing_is_the_head_of_failing_cases_with_its_count() -> None:
    from gates.results import CaseRecord, GateReport

    values = [0.2, None, 0.9, 0.2, 0.1, None, 0.4, 0.2, 0.05, 0.6]
    cases = tuple(
        CaseRecord(id=f"c{i}", scores={"faithfulness": v, "latency": 100.0 * i}) for i, v in enumerate(values)
    )
    report = GateReport(
        env="ci",
        cases=cases,
        thresholds={"latency": 450.0, "faithfulness": 0.5},
        directions={"faithfulness": "higher_is_better", "latency": "lower_is_better"},
    )
    every = report.failing_cases()
    for limit in (0, 1, 3, 7, len(every), len(every) + 5):
        assert report.worst_failing(limit) == (len(every), every[:limit])
