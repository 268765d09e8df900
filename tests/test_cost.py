"""Cost as a gate: the ``cost`` metric from token counts and the profile's ``pricing:``,
unknown counts unscored (never free), and the rules max_mean, max_p95 and max_total."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gates.metrics.base import MetricCase, get_metric, judgment_key
from gates.metrics.cost import Cost
from gates.profile import GateProfile, Pricing, load_profile
from gates.verdict import evaluate_metric
from ragate_core.errors import UsageError

PRICES = Pricing(currency="USD", prompt_per_1k=0.5, completion_per_1k=1.5)


def case(prompt: int | None, completion: int | None, id: str = "c") -> MetricCase:
    return MetricCase(id=id, question="q", answer="a", prompt_tokens=prompt, completion_tokens=completion)


def test_cost_per_case_is_tokens_times_prices() -> None:
    metric = Cost(PRICES)
    scores = metric.score_batch([case(1000, 1000), case(200, 100), case(0, 0)])
    assert [s.value for s in scores] == pytest.approx([2.0, 0.25, 0.0])
    assert scores[1].reason == "0.25 USD (200 prompt + 100 completion tokens)"
    assert metric.unit == "USD" and metric.direction == "lower_is_better"
    # Far below a cent is kept, not rounded to 0.
    tiny = Cost(Pricing(currency="USD", prompt_per_1k=0.00001, completion_per_1k=0.0))
    assert tiny.score_batch([case(10, 0)])[0].value == pytest.approx(1e-7)


def test_unknown_token_counts_or_prices_are_unscored_not_zero() -> None:
    scores = Cost(PRICES).score_batch([case(None, 5), case(5, None)])
    assert [s.value for s in scores] == [None, None]
    assert "unknown cost, not zero" in scores[0].reason
    unpriced = get_metric("cost").score_batch([case(10, 10)])
    assert unpriced[0].value is None and "pricing" in unpriced[0].reason


def test_prices_are_part_of_the_cache_key() -> None:
    cheap, dear = Cost(PRICES), Cost(PRICES.model_copy(update={"completion_per_1k": 3.0}))
    assert judgment_key(cheap, case(1, 1)) != judgment_key(dear, case(1, 1))


def test_max_total_is_a_run_budget_over_the_scored_cases() -> None:
    gates = evaluate_metric(
        "cost", [0.1, 0.2, None, 0.3], lambda v: v <= 1.0, {"max_total": 0.5, "max_unscored_share": 0.0}
    )
    by_rule = {g.rule: g for g in gates}
    assert by_rule["max_total"].observed == pytest.approx(0.6) and not by_rule["max_total"].passed
    assert not by_rule["max_unscored_share"].passed  # an unknown cost fails this, not the budget


def _project(tmp_path: Path, pricing: str) -> Path:
    (tmp_path / "qa.jsonl").write_text(
        json.dumps({"id": "q1", "question": "How much is Pro?", "ground_truth": "x", "source_ids": ["d"]})
        + "\n"
    )
    path = tmp_path / "p.yaml"
    path.write_text(
        f"env: ci\n{pricing}datasets:\n  - name: g\n    path: qa.jsonl\n"
        "metrics:\n  cost:\n    threshold: 0.01\n    rules:\n      max_mean: 0.005\n      max_total: 1\n"
    )
    return path


def test_a_profile_with_cost_needs_valid_pricing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"metrics.cost: needs a pricing: section"):
        load_profile(str(_project(tmp_path, "")), tmp_path)
    with pytest.raises(UsageError, match=r"pricing.prompt_per_1k"):
        load_profile(
            str(_project(tmp_path, "pricing: {currency: EUR, prompt_per_1k: -1, completion_per_1k: 1}\n")),
            tmp_path,
        )
    profile = load_profile(
        str(_project(tmp_path, "pricing: {currency: EUR, prompt_per_1k: 0.1, completion_per_1k: 0.2}\n")),
        tmp_path,
    )
    assert profile.pricing == Pricing(currency="EUR", prompt_per_1k=0.1, completion_per_1k=0.2)


class FakeTokenChain:
    """A fake chain reporting token counts (None for one question: its model did not say)."""

    def version(self) -> dict[str, str]:
        return {"model": "fake-tokens"}

    def invoke(self, question: str) -> dict[str, Any]:
        tokens = {"How much is Pro?": (1000, 200), "How long is the trial?": (600, 100)}.get(question)
        prompt, completion = tokens if tokens else (None, None)
        return {
            "answer": "ok",
            "contexts": ["ctx"],
            "latency_ms": 5.0,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
        }


def test_the_engine_gates_cost_with_the_profile_prices(tmp_path: Path) -> None:
    from gates.cache import Cache
    from gates.engine import GateEngine

    rows = [
        {"id": f"q{i}", "question": q, "ground_truth": "x", "source_ids": ["d"]}
        for i, q in enumerate(["How much is Pro?", "How long is the trial?", "Is SSO included?"])
    ]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    profile = GateProfile.model_validate(
        {
            "env": "ci",
            "datasets": [{"name": "golden", "path": str(tmp_path / "qa.jsonl")}],
            "pricing": {"currency": "USD", "prompt_per_1k": 0.5, "completion_per_1k": 1.5},
            "metrics": {
                "cost": {"threshold": 1.0, "rules": {"max_mean": 0.5, "max_p95": 1.0, "max_total": 0.5}}
            },
        }
    )
    chain = FakeTokenChain()
    run = GateEngine(profile, tmp_path, lambda: chain, Cache(tmp_path / "c.sqlite")).run()
    values = {r.case.id: r.scores["cost"].value for r in run.results}
    assert values["q0"] == pytest.approx(0.8) and values["q1"] == pytest.approx(0.45)
    assert values["q2"] is None  # unknown tokens: unscored, not free
    gates = {g.rule: g for g in run.gates_for("cost")}
    assert gates["max_mean"].observed == pytest.approx(0.625) and not gates["max_mean"].passed
    assert gates["max_total"].observed == pytest.approx(1.25) and not gates["max_total"].passed
    assert gates["max_p95"].passed
    assert not gates["max_unscored_share"].passed  # the default 0.0: one case had no counts
    assert run.verdict.passed is False
