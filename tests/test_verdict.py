"""From per-case values to gate results: each rule, the bootstrap, and failing closed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gates import verdict
from gates.profile import GateRules
from gates.verdict import RULES, GateResult, Verdict, bootstrap, evaluate_metric


def at_least(threshold: float):
    return lambda value: value >= threshold


AT_LEAST_HALF = at_least(0.5)


def decide(
    values, rules: GateRules, case_passes=AT_LEAST_HALF, resamples: int = 2000
) -> dict[str, GateResult]:
    return {g.rule: g for g in evaluate_metric("m", values, case_passes, rules, resamples)}


def row_means(rows: np.ndarray) -> np.ndarray:
    return rows.mean(axis=-1)


unit_floats = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_subnormal=False)
non_degenerate = st.lists(unit_floats, min_size=2, max_size=40).filter(lambda v: max(v) - min(v) > 1e-6)


@settings(max_examples=60, deadline=None)
@given(non_degenerate)
def test_bootstrap_interval_contains_the_sample_mean(values: list[float]) -> None:
    low, high = bootstrap(np.array(values), row_means, resamples=1000)
    mean = float(np.mean(values))
    assert low <= high
    assert low - 1e-12 <= mean <= high + 1e-12
    # And so does every rule that reports the mean with its interval.
    gate = decide(values, GateRules(min_mean=0.0), resamples=500)["min_mean"]
    assert gate.interval is not None
    assert gate.interval[0] - 1e-12 <= gate.observed <= gate.interval[1] + 1e-12
    assert math.isclose(gate.observed, mean, abs_tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(unit_floats, min_size=1, max_size=40))
def test_the_same_values_give_the_same_interval_and_verdict(values: list[float]) -> None:
    rules = GateRules(min_mean=0.5, min_lower_bound=0.4, max_upper_bound=0.9, max_p95=0.95)
    first = evaluate_metric("m", values, at_least(0.5), rules, 500)
    second = evaluate_metric("m", list(values), at_least(0.5), rules, 500)
    assert first == second


def test_the_seed_is_what_makes_the_interval_repeatable() -> None:
    values = np.array([0.1, 0.9, 0.4, 0.7, 0.2, 0.8])
    assert bootstrap(values, row_means, 200, seed=1) == bootstrap(values, row_means, 200, seed=1)
    assert bootstrap(values, row_means, 200, seed=1) != bootstrap(values, row_means, 200, seed=2)


rule_sets = st.fixed_dictionaries(
    {},
    optional={
        "min_mean": unit_floats,
        "max_mean": unit_floats,
        "min_pass_rate": unit_floats,
        "min_lower_bound": unit_floats,
        "max_upper_bound": unit_floats,
        "max_violations": st.integers(min_value=0, max_value=1000),
        "max_p95": st.floats(min_value=0.0, max_value=1e9),
        "max_unscored_share": unit_floats,
    },
)


@settings(max_examples=80, deadline=None)
@given(rule_sets, st.integers(min_value=0, max_value=30))
def test_a_gate_with_no_scored_case_always_fails(rules: dict, unscored: int) -> None:
    gates = evaluate_metric("m", [None] * unscored, lambda v: True, GateRules(**rules), 100)
    assert {g.rule for g in gates} == set(GateRules(**rules).active())
    assert gates, "max_unscored_share is always active"
    for gate in gates:
        assert gate.passed is False, gate
        assert (gate.n_scored, gate.n_unscored) == (0, unscored)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), unit_floats), min_size=1, max_size=40),
    unit_floats,
)
def test_the_unscored_share_is_counted_and_gated(values: list[float | None], allowed: float) -> None:
    n_unscored = sum(v is None for v in values)
    gates = decide(values, GateRules(min_mean=0.0, max_unscored_share=allowed), resamples=100)
    share = gates["max_unscored_share"]
    assert share.observed == pytest.approx(n_unscored / len(values))
    assert share.passed == (n_unscored < len(values) and n_unscored / len(values) <= allowed)
    # Every rule reports the counts, so a reader sees how much the observed value rests on.
    assert all(g.n_unscored == n_unscored and g.n_scored == len(values) - n_unscored for g in gates.values())


VALUES = [0.2, 0.4, 0.6, 0.8, 1.0]  # mean 0.6; 3 of 5 pass at >= 0.5; p95 0.96


@pytest.mark.parametrize(
    ("rule", "passing", "failing", "observed"),
    [
        ("min_mean", 0.6, 0.61, 0.6),
        ("max_mean", 0.6, 0.59, 0.6),
        ("min_pass_rate", 0.6, 0.61, 0.6),
        ("max_violations", 2, 1, 2),
        ("max_p95", 0.97, 0.95, 0.96),
    ],
)
def test_each_rule_decides_on_hand_made_values(rule: str, passing: float, failing: float, observed: float):
    good = decide(VALUES, GateRules(**{rule: passing}))[rule]
    bad = decide(VALUES, GateRules(**{rule: failing}))[rule]
    assert good.observed == pytest.approx(observed)
    assert bad.observed == pytest.approx(observed)
    assert good.passed is True
    assert bad.passed is False
    assert "nothing scored" not in bad.note


def test_pass_rate_and_violations_follow_the_metric_direction() -> None:
    def at_most(limit):
        return lambda value: value <= limit

    gates = decide(VALUES, GateRules(min_pass_rate=0.8, max_violations=1), case_passes=at_most(0.8))
    assert gates["min_pass_rate"].observed == pytest.approx(0.8)
    assert gates["min_pass_rate"].passed is True
    assert gates["max_violations"].observed == 1
    assert gates["max_violations"].passed is True


def test_interval_bounds_of_a_constant_sample_are_the_constant() -> None:
    gates = decide([0.7] * 10, GateRules(min_lower_bound=0.7, max_upper_bound=0.7))
    assert gates["min_lower_bound"].observed == pytest.approx(0.7)
    assert gates["min_lower_bound"].passed is True
    assert gates["max_upper_bound"].passed is True
    strict = decide([0.7] * 10, GateRules(min_lower_bound=0.71, max_upper_bound=0.69))
    assert strict["min_lower_bound"].passed is False
    assert strict["max_upper_bound"].passed is False


def test_the_lower_bound_is_stricter_than_the_mean() -> None:
    # A mean exactly at the bar passes min_mean, but the interval's lower bound sits below
    # it: min_lower_bound asks for confidence, not luck.
    gates = decide(VALUES, GateRules(min_mean=0.6, min_lower_bound=0.6, max_upper_bound=0.6))
    low, high = gates["min_lower_bound"].interval
    assert low < 0.6 < high
    assert gates["min_lower_bound"].observed == low
    assert gates["max_upper_bound"].observed == high
    assert gates["min_mean"].passed is True
    assert gates["min_lower_bound"].passed is False
    assert gates["max_upper_bound"].passed is False
    assert decide(VALUES, GateRules(min_lower_bound=low))["min_lower_bound"].passed is True


def test_max_unscored_share_on_hand_made_values() -> None:
    values = [0.5, None, 0.5, 0.5]
    assert decide(values, GateRules(max_unscored_share=0.25))["max_unscored_share"].passed is True
    gate = decide(values, GateRules(max_unscored_share=0.2))["max_unscored_share"]
    assert gate.observed == 0.25
    assert gate.passed is False
    # The default profile tolerates no unscored case at all.
    assert decide(values, GateRules())["max_unscored_share"].passed is False
    assert decide([0.5, 0.5], GateRules())["max_unscored_share"].passed is True


def test_unscored_cases_are_left_out_of_the_mean() -> None:
    gate = decide([1.0, None, 0.0, None], GateRules(min_mean=0.5, max_unscored_share=1.0))["min_mean"]
    assert gate.observed == pytest.approx(0.5)
    assert (gate.n_scored, gate.n_unscored) == (2, 2)


def test_gate_result_round_trips_and_describes_itself() -> None:
    gate = decide(VALUES, GateRules(min_mean=0.7))["min_mean"]
    assert GateResult.from_dict(gate.to_dict()) == gate
    assert gate.to_dict()["name"] == "m.min_mean"
    assert gate.describe().startswith("FAIL m.min_mean: mean 0.6 >= 0.7")
    nothing = decide([None], GateRules(min_mean=0.5))["min_mean"]
    assert nothing.describe() == "FAIL m.min_mean: mean n/a >= 0.5 (nothing scored)"
    assert GateResult.from_dict(nothing.to_dict()) == nothing


def test_every_rule_of_the_profile_model_is_known_to_the_verdict() -> None:
    assert set(GateRules.model_fields) <= set(RULES)


def test_a_verdict_passes_only_when_it_decided_something_and_all_passed() -> None:
    passing = decide(VALUES, GateRules(min_mean=0.5))
    failing = decide(VALUES, GateRules(min_mean=0.9))
    assert Verdict("ci", "p.yaml", "", tuple(passing.values())).passed is True
    verdict = Verdict("ci", "p.yaml", "", (*passing.values(), *failing.values()))
    assert verdict.passed is False
    assert [g.rule for g in verdict.failing] == ["min_mean"]
    assert Verdict("ci", "p.yaml", "", ()).passed is False


def test_bootstrap_in_chunks_gives_the_interval_of_one_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    # Memory stays bounded at 50,000 cases because resamples are drawn in row chunks; the
    # generator's stream, hence the interval, must not change with the chunk size.
    values = np.random.default_rng(3).random(101)
    whole = verdict.bootstrap(values, verdict.row_mean, 500)
    monkeypatch.setattr(verdict, "BOOTSTRAP_CHUNK", 101 * 7)  # 7 resamples per chunk
    assert verdict.bootstrap(values, verdict.row_mean, 500) == whole


def test_repeats_of_one_question_do_not_narrow_the_interval() -> None:
    """prod answers each question 3 times: a deterministic chain's three equal answers are
    one question's evidence, not three (the tester's prod run passed min_lower_bound on the
    answers its staging run failed on). Without repeats nothing changes."""
    once = [0.2, 0.9, 0.4, 0.8, 0.55, 0.7, 0.3, 0.95, 0.6, 0.5, 0.65, 0.45]
    rules = {"min_lower_bound": 0.5, "min_pass_rate": 0.5}
    alone = {g.rule: g for g in evaluate_metric("m", once, at_least(0.5), rules, 2000)}
    naive = {g.rule: g for g in evaluate_metric("m", once * 3, at_least(0.5), rules, 2000)}
    ids = [f"q{i}" for i in range(len(once))] * 3
    grouped = {g.rule: g for g in evaluate_metric("m", once * 3, at_least(0.5), rules, 2000, ids)}
    for rule in rules:
        width = alone[rule].interval[1] - alone[rule].interval[0]
        assert naive[rule].interval[1] - naive[rule].interval[0] < 0.75 * width  # the bug
        assert grouped[rule].interval[1] - grouped[rule].interval[0] > 0.85 * width
    distinct = {
        g.rule: g
        for g in evaluate_metric("m", once, at_least(0.5), rules, 2000, [f"q{i}" for i in range(12)])
    }
    assert distinct == alone
