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
        ({"rules": {"max_unscored_share": 0}}, True),  # fails only when nothing is scored
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
