"""A gate run holds each repeated text once: retrieved chunks a chain returns as fresh copies
with every answer, and the metric, tag and source-id tuples repeated across dataset rows.
Equal values, one object: what the metrics read and the reports show is unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gates.cache import Cache
from gates.engine import GateEngine, load_cases
from gates.profile import GateProfile

QUESTIONS = [f"Question number {i}?" for i in range(4)]


class FakeFreshCopiesChain:
    """A fake chain that, like a real retriever, builds new string objects on every call."""

    def __init__(self) -> None:
        self.version = {"fake": "fresh-copies-1"}

    def invoke(self, question: str, **kwargs: Any) -> dict[str, Any]:
        chunks = ["".join(["The refund window ", "is thirty days."]), "".join(["SSO is ", "in Pro."])]
        return {
            "answer": "Thirty days.",
            "contexts": chunks,
            "sources": ["refunds", "sso"],
            "latency_ms": 5.0,
        }


def _profile(tmp_path: Path) -> GateProfile:
    rows = [
        {"id": f"q{i}", "question": q, "ground_truth": "x", "source_ids": ["refunds"], "tags": ["t"]}
        for i, q in enumerate(QUESTIONS)
    ]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return GateProfile.model_validate(
        {
            "env": "ci",
            "datasets": [{"name": "golden", "path": str(tmp_path / "qa.jsonl")}],
            "metrics": {
                "latency": {"threshold": 1000, "rules": {"max_p95": 500}},
                "hit_rate": {"threshold": 0.5, "rules": {"min_mean": 0.1}},
            },
        }
    )


def _run(tmp_path: Path, prof: GateProfile) -> Any:
    cache = Cache(tmp_path / "cache.sqlite")
    return GateEngine(prof, tmp_path, FakeFreshCopiesChain, cache).run()


def test_fresh_context_copies_are_held_once_with_the_same_results(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    cold = _run(tmp_path, prof)
    first, *others = [r.answer.contexts for r in cold.results]
    assert first == ("The refund window is thirty days.", "SSO is in Pro.")
    for contexts in others:
        assert contexts == first
        assert all(a is b for a, b in zip(contexts, first))
    warm = _run(tmp_path, prof)  # read back from the cache: the same answers, scores and verdict
    assert cold.stats.generated == len(QUESTIONS) and warm.stats.generation_cache_hits == len(QUESTIONS)
    assert [r.to_dict() for r in warm.results] == [r.to_dict() for r in cold.results]
    assert warm.verdict == cold.verdict and cold.verdict.passed


def test_loaded_cases_share_repeated_tuples_and_keep_their_values(tmp_path: Path) -> None:
    cases = load_cases(_profile(tmp_path), tmp_path, mask=False)
    assert [c.id for c in cases] == ["q0", "q1", "q2", "q3"]
    assert all(c.id == c.base_id for c in cases)
    assert {c.tags for c in cases} == {("t",)} and {c.source_ids for c in cases} == {("refunds",)}
    assert all(c.tags is cases[0].tags and c.metrics is cases[0].metrics for c in cases)
    assert cases[0].metrics == ("latency", "hit_rate")
