"""From per-case values to gate results: rules, bootstrap intervals, fail-closed verdicts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gates.profile import GateRules

CONFIDENCE = 0.95
SEED = 20261122  # fixed: the same inputs always give the same verdict

# rule -> (what is observed, how it is compared)
RULES: dict[str, tuple[str, str]] = {
    "min_mean": ("mean", ">="),
    "max_mean": ("mean", "<="),
    "min_pass_rate": ("pass rate", ">="),
    "min_lower_bound": ("lower bound of the 95% CI of the mean", ">="),
    "max_upper_bound": ("upper bound of the 95% CI of the mean", "<="),
    "max_violations": ("cases failing the per-case threshold", "<="),
    "max_p95": ("95th percentile", "<="),
    "max_unscored_share": ("unscored share", "<="),
    "max_regression": ("mean drop against the champion (paired)", "<="),
}


@dataclass(frozen=True)
class GateResult:
    """One rule of one metric, decided."""

    metric: str
    rule: str
    threshold: float
    observed: float | None
    interval: tuple[float, float] | None
    n_scored: int
    n_unscored: int
    passed: bool
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.metric}.{self.rule}"

    def describe(self) -> str:
        what, op = RULES[self.rule]
        observed = "n/a" if self.observed is None else f"{self.observed:.4g}"
        status = "PASS" if self.passed else "FAIL"
        note = f" ({self.note})" if self.note else ""
        return f"{status} {self.name}: {what} {observed} {op} {self.threshold:g}{note}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.name
        data["interval"] = list(self.interval) if self.interval else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        data = {k: v for k, v in data.items() if k != "name"}
        data["interval"] = tuple(data["interval"]) if data.get("interval") else None
        return cls(**data)


def bootstrap(
    values: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], resamples: int, seed: int = SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (applied row-wise to resamples)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    stats = statistic(values[idx])
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _mean(rows: np.ndarray) -> np.ndarray:
    return rows.mean(axis=-1)


def _p95(rows: np.ndarray) -> np.ndarray:
    return np.quantile(rows, 0.95, axis=-1)


def evaluate_metric(
    metric: str,
    values: Sequence[float | None],
    case_passes: Callable[[float], bool],
    rules: GateRules,
    resamples: int = 2000,
) -> list[GateResult]:
    """Decide every active rule of one metric over its per-case values.

    Fail closed: with no scored case every rule fails, whatever its threshold.
    """
    scored = np.array([v for v in values if v is not None], dtype=float)
    n, n_unscored = len(scored), sum(v is None for v in values)
    total = n + n_unscored
    results = []
    for rule, threshold in rules.active().items():
        if rule == "max_unscored_share":
            share = n_unscored / total if total else 1.0
            passed = total > 0 and n > 0 and share <= threshold
            note = "nothing scored" if n == 0 else ""
            results.append(GateResult(metric, rule, threshold, share, None, n, n_unscored, passed, note))
            continue
        if n == 0:
            results.append(
                GateResult(metric, rule, threshold, None, None, 0, n_unscored, False, "nothing scored")
            )
            continue
        observed, interval = _observe(rule, scored, case_passes, resamples)
        passed = observed >= threshold if RULES[rule][1] == ">=" else observed <= threshold
        results.append(GateResult(metric, rule, threshold, observed, interval, n, n_unscored, passed))
    return results


def _observe(
    rule: str, scored: np.ndarray, case_passes: Callable[[float], bool], resamples: int
) -> tuple[float, tuple[float, float] | None]:
    mean_interval = bootstrap(scored, _mean, resamples)
    if rule in ("min_mean", "max_mean"):
        return float(scored.mean()), mean_interval
    if rule == "min_lower_bound":
        return mean_interval[0], mean_interval
    if rule == "max_upper_bound":
        return mean_interval[1], mean_interval
    passing = np.array([case_passes(v) for v in scored], dtype=float)
    if rule == "min_pass_rate":
        return float(passing.mean()), bootstrap(passing, _mean, resamples)
    if rule == "max_violations":
        return float(len(scored) - passing.sum()), None
    if rule == "max_p95":
        return float(np.quantile(scored, 0.95)), bootstrap(scored, _p95, resamples)
    raise KeyError(rule)


@dataclass(frozen=True)
class Verdict:
    """The decision of one gate run."""

    env: str
    profile: str
    profile_sha256: str
    gates: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        # A run that decided nothing did not pass.
        return bool(self.gates) and all(g.passed for g in self.gates)

    @property
    def failing(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]
