"""Retrieval metrics: hit_rate, mrr, context_recall, context_precision (exact, model-free)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gates.metrics.base import MetricCase, applies, get_metric
from gates.metrics.retrieval import normalise_source, same_source

NAMES = ("hit_rate", "mrr", "context_recall", "context_precision")


def case(source_ids, sources, answerable=True, contexts=None) -> MetricCase:
    contexts = tuple(f"chunk {i}" for i in range(len(sources))) if contexts is None else tuple(contexts)
    return MetricCase(
        id="c",
        question="q",
        answer="a",
        contexts=contexts,
        answerable=answerable,
        source_ids=tuple(source_ids),
        sources=tuple(sources),
    )


def values(c: MetricCase) -> dict[str, float | None]:
    return {name: get_metric(name).score_batch([c])[0].value for name in NAMES}


def test_registered_higher_is_better():
    for name in NAMES:
        metric = get_metric(name)
        assert metric.name == name
        assert metric.direction == "higher_is_better"


def test_worked_example():
    # Ranked chunks: a(1) b(2) a(3) c(4); relevant: a and d.
    got = values(case(["a", "d"], ["a", "b", "a", "c"]))
    assert got == {"hit_rate": 1.0, "mrr": 1.0, "context_recall": 0.5, "context_precision": 0.5}


def test_first_relevant_at_rank_three():
    got = values(case(["refund-policy"], ["plans", "billing", "refund-policy"]))
    assert got["mrr"] == pytest.approx(1 / 3, abs=1e-6)
    assert got["hit_rate"] == 1.0
    assert got["context_precision"] == pytest.approx(1 / 3, abs=1e-6)
    assert got["context_recall"] == 1.0


def test_miss_scores_zero_everywhere():
    got = values(case(["troubleshooting-login"], ["password-reset", "two-factor-auth"]))
    assert got == {name: 0.0 for name in NAMES}


def test_nothing_retrieved_is_a_miss_not_an_error():
    score = get_metric("mrr").score_batch([case(["a"], [], contexts=[])])[0]
    assert score.value == 0.0
    assert "nothing retrieved" in score.reason


def test_ids_are_normalised():
    # The shipped chain reports file stems (rag/ingest.py doc_id); other chains may report
    # paths, suffixes, chunk anchors or another case.
    assert normalise_source("corpus/Plans-and-Pricing.md#3") == "corpus/plans-and-pricing"
    assert same_source(normalise_source("datasets/corpus/refund-policy.md"), "refund-policy")
    assert not same_source("pro-refund-policy", "refund-policy")
    got = values(case(["refund-policy"], ["datasets\\corpus\\refund-policy.md#0", "refund-policy.md?x=1"]))
    assert got == {name: 1.0 for name in NAMES}


def test_unanswerable_case_is_not_applicable():
    c = case([], ["plans"], answerable=False)
    for name in NAMES:
        metric = get_metric(name)
        assert not applies(metric, c)
        score = metric.score_batch([c])[0]
        assert score.value is None
        assert score.details == {"not_applicable": True}
        assert score.reason.startswith("not applicable")


@pytest.mark.parametrize(
    ("c", "field"),
    [
        (case([], ["plans"], answerable=True), "source_ids"),
        (case([], ["plans"], answerable=None), "source_ids"),
        (case(["plans"], [], contexts=["a chunk"]), "sources"),
    ],
)
def test_missing_field_is_unscored_and_named(c, field):
    for name in NAMES:
        score = get_metric(name).score_batch([c])[0]
        assert score.value is None
        assert f"missing field '{field}'" in score.reason
        assert not score.details.get("not_applicable")


ids = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@given(relevant=st.lists(ids, min_size=1, max_size=4), retrieved=st.lists(ids, max_size=8))
def test_properties(relevant, retrieved):
    got = values(case(relevant, retrieved))
    for value in got.values():
        assert value is not None
        assert 0.0 <= value <= 1.0
    hit = any(s in relevant for s in retrieved)
    assert got["hit_rate"] == float(hit)
    # Every other metric is zero exactly when nothing relevant was retrieved.
    for name in ("mrr", "context_recall", "context_precision"):
        assert got["hit_rate"] >= got[name]
        assert (got[name] > 0) == hit
    # Definitions, restated independently.
    first = next((i for i, s in enumerate(retrieved, start=1) if s in relevant), None)
    assert got["mrr"] == pytest.approx(1.0 / first if first else 0.0, abs=1e-6)  # values keep 6 decimals
    assert got["context_recall"] == pytest.approx(
        len(set(retrieved) & set(relevant)) / len(set(relevant)), abs=1e-6
    )
    if retrieved:
        share = sum(s in relevant for s in retrieved) / len(retrieved)
        assert got["context_precision"] == pytest.approx(share, abs=1e-6)


@given(relevant=st.lists(ids, min_size=1, max_size=4), retrieved=st.lists(ids, max_size=8), extra=ids)
def test_more_chunks_never_lower_recall_or_hit(relevant, retrieved, extra):
    before = values(case(relevant, retrieved))
    after = values(case(relevant, [*retrieved, extra]))
    assert after["hit_rate"] >= before["hit_rate"]
    assert after["context_recall"] >= before["context_recall"]
    assert after["mrr"] >= before["mrr"]  # appending below cannot move the first hit down


def test_engine_assigns_retrieval_only_to_answerable_cases(tmp_path):
    from gates.engine import load_cases
    from gates.profile import GateProfile

    data = tmp_path / "qa.jsonl"
    data.write_text(
        '{"id": "a", "question": "How much is Pro?", "ground_truth": "$19", "source_ids": ["plans"]}\n'
        '{"id": "u", "question": "Dark mode?", "ground_truth": "Not covered.", "source_ids": []}\n',
        encoding="utf-8",
    )
    profile = GateProfile.model_validate(
        {
            "env": "staging",
            "datasets": [{"name": "golden", "path": str(data)}],
            "metrics": {"hit_rate": {}, "answer_correctness": {}},
        }
    )
    cases = {c.id: c for c in load_cases(profile, tmp_path, mask=False)}
    assert cases["a"].metrics == ("hit_rate", "answer_correctness")
    assert cases["u"].metrics == ("answer_correctness",)


def test_ragate_score_takes_source_ids_sources_and_ground_truth(tmp_path):
    import json

    from gates.cli import main

    rows = [
        {
            "id": "hit",
            "question": "What is the API rate limit on the Pro plan?",
            "answer": "The Pro plan allows up to 10 requests per minute.",
            "contexts": ["Pro plan: 600 requests per minute.", "Bulk: 10 requests per minute."],
            "ground_truth": "On the Pro plan, the limit is 600 requests per minute.",
            "source_ids": ["api-rate-limits"],
            "sources": ["plans-and-pricing", "api-rate-limits"],
        },
        {
            "id": "unanswerable",
            "question": "Does Tasklane have a dark mode?",
            "answer": "I don't know. The documentation does not cover that.",
            "contexts": [],
            "source_ids": [],
            "sources": [],
        },
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    metrics = "answer_correctness,hit_rate,mrr,context_recall,context_precision"
    # Not applicable is not unscored: the run is complete (exit 0).
    assert main(["score", "--metrics", metrics, "--input", str(source), "--output", str(output)]) == 0
    out = {r["id"]: r for r in map(json.loads, output.read_text(encoding="utf-8").splitlines())}
    hit = out["hit"]["scores"]
    retrieval = (hit["hit_rate"], hit["mrr"], hit["context_recall"], hit["context_precision"])
    assert retrieval == (1.0, 0.5, 1.0, 0.5)
    assert hit["answer_correctness"] < 0.5  # 10 is not 600
    # source_ids: [] makes the row unanswerable: it declines, so it is correct.
    assert out["unanswerable"]["scores"]["answer_correctness"] == 1.0
    assert out["unanswerable"]["scores"]["hit_rate"] is None
    assert out["unanswerable"]["reasons"]["hit_rate"].startswith("not applicable")

    # An answerable row without ground_truth or source_ids: unscored, the field named, exit 1.
    del rows[0]["ground_truth"], rows[0]["source_ids"]
    rows[0]["answerable"] = True
    source.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    assert main(["score", "--metrics", metrics, "--input", str(source), "--output", str(output)]) == 1
    reasons = json.loads(output.read_text(encoding="utf-8"))["reasons"]
    assert "missing field 'ground_truth'" in reasons["answer_correctness"]
    assert "missing field 'source_ids'" in reasons["mrr"]


class FakeRetrievalChain:
    """A fake chain for this unit test: fixed answers with the sources of its chunks."""

    def __init__(self, sources: dict[str, list[str]]) -> None:
        self.sources = sources
        self.version = {"model": "fake"}

    def invoke(self, question: str, **kw):
        found = self.sources[question]
        return {"answer": "an answer", "contexts": [f"chunk of {s}" for s in found], "sources": found}


def test_a_gate_run_scores_retrieval_on_answerable_cases_and_counts_no_unscored(tmp_path):
    import json

    from gates.cache import NoCache
    from gates.engine import GateEngine
    from gates.profile import GateProfile

    rows = {
        "a": ("How much is Pro?", ["plans"], ["plans", "billing"]),
        "b": ("How do refunds work?", ["refund-policy"], ["billing", "refund-policy"]),
        "u": ("Dark mode?", [], ["views"]),  # unanswerable: out of the retrieval metrics' scope
    }
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": i, "question": q, "ground_truth": "x", "source_ids": ids}) + "\n"
            for i, (q, ids, _) in rows.items()
        ),
        encoding="utf-8",
    )
    rules = {"min_mean": 0.5, "max_unscored_share": 0.0}
    profile = GateProfile.model_validate(
        {
            "env": "staging",
            "datasets": [{"name": "golden", "path": str(data)}],
            "metrics": {name: {"threshold": 0.5, "rules": rules} for name in NAMES},
        }
    )
    chain = FakeRetrievalChain({q: found for q, _, found in rows.values()})
    run = GateEngine(profile, tmp_path, lambda: chain, NoCache()).run()
    assert run.verdict.passed, [g.describe() for g in run.verdict.failing]
    assert run.case("u").scores == {}
    assert [r.case.id for r in run.by_metric("mrr")] == ["a", "b"]
    assert [r.scores["mrr"].value for r in run.by_metric("mrr")] == [1.0, 0.5]
    unscored = {g.name: g.n_unscored for g in run.verdict.gates}
    assert set(unscored.values()) == {0}
