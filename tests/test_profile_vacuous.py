"""Which gated metrics a profile lets no score fail (the promotion rule proving-profile,
issue 11 item 2): unit tests over in-memory profiles."""

from __future__ import annotations

import pytest

from gates.profile import GateProfile, vacuous_metrics


def _profile(metrics: dict) -> GateProfile:
    return GateProfile(env="staging", datasets=[{"name": "g", "path": "g.jsonl"}], metrics=metrics)


@pytest.mark.parametrize(
    ("gate", "vacuous"),
    [
        ({"rules": {"min_mean": 0}}, True),
        ({"rules": {"min_mean": 0.5}}, False),
        ({"threshold": 0.0, "rules": {"max_violations": 0, "min_mean": 0}}, True),
        ({"threshold": 0.5, "rules": {"max_violations": 0}}, False),
        ({"threshold": 0.0, "rules": {"min_pass_rate": 0.9}}, True),
        # No quality rule: every case must pass its threshold (min_pass_rate 1.0, as
        # deepeval's assert_test), so the metric gates; with a threshold no case can fail,
        # it gates nothing.
        ({"rules": {"max_unscored_share": 0}}, False),
        ({"threshold": 0.5}, False),
        ({"threshold": 0.0}, True),
        ({"rules": {"max_mean": 1.0}}, True),
    ],
)
def test_faithfulness_rules(gate: dict, vacuous: bool) -> None:
    assert vacuous_metrics(_profile({"faithfulness": gate})) == (["faithfulness"] if vacuous else [])


def test_lower_is_better_and_unbounded_metrics() -> None:
    profile = _profile(
        {
            "toxicity": {"threshold": 1.0, "rules": {"max_violations": 0}},  # nothing above 1
            "latency": {"rules": {"max_p95": 60000}},  # milliseconds: a slow answer fails
        }
    )
    assert vacuous_metrics(profile) == ["toxicity"]


def test_a_metric_listed_without_rules_requires_every_case_to_pass() -> None:
    """The tester's profile ``faithfulness: {threshold: 0.5}`` gated nothing and passed a
    chain whose faithfulness mean was 0.19; without rules it now means min_pass_rate 1.0."""
    for gate in ({"threshold": 0.5}, {"threshold": 0.5, "rules": {}}, {"threshold": 0.5, "rules": None}):
        rules = _profile({"faithfulness": gate}).metrics["faithfulness"].rules.active()
        assert rules["min_pass_rate"] == 1.0
    kept = _profile({"faithfulness": {"rules": {"min_mean": 0.7}}}).metrics["faithfulness"].rules
    assert kept.min_pass_rate is None


@pytest.mark.parametrize("value", [True, "0.5"])
def test_a_threshold_must_be_a_number(value: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="valid number"):
        _profile({"faithfulness": {"threshold": value, "rules": {"min_mean": value}}})
