"""From per-case values to gate results: rules, bootstrap intervals, fail-closed verdicts.

A rule is one decorated function: it reads an :class:`Observation` of one metric's
per-case values and returns what it observed (and its 95% interval, if it has one); the
decorator names it, says what it reads and how the observation compares with the
profile's value::

    @rule("max_median", reads="median", op="<=")
    def median(o: Observation) -> tuple[float, tuple[float, float] | None]:
        return float(np.median(o.scored)), None

A profile may then set ``rules: {max_median: 0.4}`` for any metric (an unknown rule key
is a usage error naming the known ones).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from gates.results import GateResult, decide

__all__ = [
    "CONFIDENCE",
    "RULES",
    "SEED",
    "GateResult",
    "Observation",
    "Rule",
    "Verdict",
    "bootstrap",
    "decide",
    "evaluate_metric",
    "metric_gates",
    "register_rule",
    "row_mean",
    "rule",
    "rule_names",
    "rule_spec",
]

CONFIDENCE = 0.95
SEED = 20261122  # fixed: the same inputs always give the same verdict

Interval = tuple[float, float]
Comparison = Literal[">=", "<="]


BOOTSTRAP_CHUNK = 2_000_000  # indices per chunk of resamples (16 MB of int64)


def bootstrap(
    values: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], resamples: int, seed: int = SEED
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` (applied row-wise to resamples)."""
    rng = np.random.default_rng(seed)
    # Resamples are drawn in row chunks (~2M indices each) so memory stays bounded at any
    # number of cases; the generator's stream, hence the interval, is the same as one draw.
    rows = max(1, BOOTSTRAP_CHUNK // max(1, len(values)))
    stats = np.concatenate(
        [
            statistic(values[rng.integers(0, len(values), size=(min(rows, resamples - start), len(values)))])
            for start in range(0, resamples, rows)
        ]
    )
    return _percentile_interval(stats)


def _percentile_interval(stats: np.ndarray) -> Interval:
    """The central :data:`CONFIDENCE` interval of bootstrap statistics (percentile method)."""
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def grouped_bootstrap_mean(
    values: np.ndarray, groups: np.ndarray, resamples: int, seed: int = SEED
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` resampling whole ``groups``
    (a cluster bootstrap: Davison & Hinkley, *Bootstrap Methods and their Application*, 1997,
    section 3.8). The samples of one question answered several times (``sampling.repeats``)
    are one group: resampled as independent cases they would narrow the interval by about
    the square root of the repeats, as if each repeat were a new question."""
    first: dict[Any, int] = {}  # groups numbered by first appearance: any labels, one result
    index = np.array([first.setdefault(g, len(first)) for g in groups], dtype=np.int64)
    sums = np.bincount(index, weights=values)
    counts = np.bincount(index).astype(float)
    rng = np.random.default_rng(seed)
    k = len(sums)
    rows = max(1, BOOTSTRAP_CHUNK // max(1, k))
    stats = []
    for start in range(0, resamples, rows):
        drawn = rng.integers(0, k, size=(min(rows, resamples - start), k))
        stats.append(sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1))
    return _percentile_interval(np.concatenate(stats))


def row_mean(rows: np.ndarray) -> np.ndarray:
    """The mean of each row (the statistic :func:`bootstrap` needs for a mean)."""
    return rows.mean(axis=-1)


def row_p95(rows: np.ndarray) -> np.ndarray:
    """The 95th percentile of each row."""
    return np.quantile(rows, 0.95, axis=-1)


@dataclass(frozen=True)
class Observation:
    """One metric's per-case values, as the rules read them.

    ``scored`` holds the scored values (unscored cases left out), ``passing`` 1.0 where
    the case passes the metric's per-case threshold, else 0.0 (same order).
    """

    scored: np.ndarray
    passing: np.ndarray
    n_unscored: int
    resamples: int
    groups: np.ndarray | None = None  # the question of each scored value, when repeated

    @property
    def n(self) -> int:
        return len(self.scored)

    def _mean_interval_of(self, values: np.ndarray) -> Interval:
        """The bootstrap interval of the mean of ``values`` (aligned with ``scored``): whole
        questions resampled when some were answered more than once."""
        groups = self.groups
        if groups is not None and len(set(groups.tolist())) < len(groups):
            return grouped_bootstrap_mean(values, groups, self.resamples)
        return bootstrap(values, row_mean, self.resamples)

    @functools.cached_property
    def mean_interval(self) -> Interval:
        return self._mean_interval_of(self.scored)

    @functools.cached_property
    def pass_rate_interval(self) -> Interval:
        return self._mean_interval_of(self.passing)


Observe = Callable[[Observation], tuple[float, Interval | None]]


@dataclass(frozen=True)
class Rule:
    """A registered rule: its profile key, what it reads (in words), how it compares.

    ``needs_scores``: with no scored case the rule fails closed without observing.
    ``paired``: decided against the champion's scores (see :mod:`gates.regression`),
    not from the run's own values. ``bounds``: the values a profile may give it.
    """

    name: str
    reads: str
    op: Comparison
    observe: Observe | None
    needs_scores: bool = True
    paired: bool = False
    bounds: tuple[float | None, float | None] = (None, None)

    def compare(self, observed: float, threshold: float) -> bool:
        return observed >= threshold if self.op == ">=" else observed <= threshold


RULES: dict[str, Rule] = {}


def register_rule(spec: Rule) -> Rule:
    """Register a :class:`Rule` built by hand (the decorator does this for you)."""
    RULES[spec.name] = spec
    return spec


def rule(
    name: str,
    *,
    reads: str,
    op: Comparison,
    needs_scores: bool = True,
    paired: bool = False,
    bounds: tuple[float | None, float | None] = (None, None),
) -> Callable[[Observe], Observe]:
    """Register ``fn`` as the rule ``name`` (the profile key); stack it to register one
    observation under several names (``min_mean``/``max_mean``)."""
    if op not in (">=", "<="):
        raise ValueError(f"rule {name!r}: op must be '>=' or '<=', got {op!r}")

    def deco(fn: Observe) -> Observe:
        register_rule(Rule(name, reads, op, fn, needs_scores, paired, bounds))
        return fn

    return deco


RULE_ENTRY_POINT_GROUP = "ragate.rules"
_plugins_loaded = False


def _load_plugins() -> None:
    """Import the modules other distributions list under the entry-point group
    ``ragate.rules`` (importing one registers its ``@rule`` functions)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    from ragate_core.errors import UsageError

    for ep in entry_points(group=RULE_ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:
            raise UsageError(
                f"entry point {ep.name} = {ep.value} (group {RULE_ENTRY_POINT_GROUP}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def rule_spec(name: str) -> Rule | None:
    """The registered rule ``name`` (``None`` when there is none)."""
    if name not in RULES:
        _load_plugins()
    return RULES.get(name)


def rule_names() -> list[str]:
    """Every registered rule name, built-in and from the ``ragate.rules`` entry points."""
    _load_plugins()
    return sorted(RULES)


def check_rule_value(name: str, value: Any) -> float:
    """A profile's value for rule ``name`` as a float; ``ValueError`` says what is wrong."""
    spec = rule_spec(name)
    if spec is None:
        raise ValueError(f"unknown rule {name!r}; known rules: {', '.join(rule_names())}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"rule {name!r} needs a number, got {value!r}")
    low, high = spec.bounds
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"rule {name!r}: {value} is outside [{low}, {high}]")
    return float(value)


@rule("min_mean", reads="mean", op=">=")
@rule("max_mean", reads="mean", op="<=")
def _mean(o: Observation) -> tuple[float, Interval | None]:
    return float(o.scored.mean()), o.mean_interval


@rule("min_lower_bound", reads="lower bound of the 95% CI of the mean", op=">=")
def _lower_bound(o: Observation) -> tuple[float, Interval | None]:
    return o.mean_interval[0], o.mean_interval


@rule("max_upper_bound", reads="upper bound of the 95% CI of the mean", op="<=")
def _upper_bound(o: Observation) -> tuple[float, Interval | None]:
    return o.mean_interval[1], o.mean_interval


@rule("min_pass_rate", reads="pass rate", op=">=", bounds=(0.0, 1.0))
def _pass_rate(o: Observation) -> tuple[float, Interval | None]:
    return float(o.passing.mean()), o.pass_rate_interval


@rule("max_violations", reads="cases failing the per-case threshold", op="<=", bounds=(0.0, None))
def _violations(o: Observation) -> tuple[float, Interval | None]:
    return float(o.n - o.passing.sum()), None


@rule("max_p95", reads="95th percentile", op="<=", bounds=(0.0, None))
def _p95(o: Observation) -> tuple[float, Interval | None]:
    return float(np.quantile(o.scored, 0.95)), bootstrap(o.scored, row_p95, o.resamples)


@rule("max_total", reads="total over the scored cases (a run budget)", op="<=", bounds=(0.0, None))
def _total(o: Observation) -> tuple[float, Interval | None]:
    return float(o.scored.sum()), None


@rule("max_unscored_share", reads="unscored share", op="<=", needs_scores=False, bounds=(0.0, 1.0))
def _unscored_share(o: Observation) -> tuple[float, Interval | None]:
    total = o.n + o.n_unscored
    return (o.n_unscored / total if total else 1.0), None


# Decided by gates.regression.regression_gate from paired per-case scores.
register_rule(
    Rule(
        "max_regression",
        "mean drop against the champion (paired)",
        "<=",
        None,
        paired=True,
        bounds=(0.0, None),
    )
)


class _Rules(Protocol):
    def active(self) -> dict[str, float]: ...


def evaluate_metric(
    metric: str,
    values: Sequence[float | None],
    case_passes: Callable[[float], bool],
    rules: _Rules | Mapping[str, float],
    resamples: int = 2000,
    groups: Sequence[str] | None = None,
) -> list[GateResult]:
    """Decide every active rule of one metric over its per-case values.

    ``rules`` is a profile's ``GateRules`` or a mapping rule -> value. Paired rules
    (``max_regression``) are left to :mod:`gates.regression`. Fail closed: with no scored
    case every rule fails, whatever its threshold. ``groups``: the question each value
    answers (aligned with ``values``); repeated answers to one question are resampled
    together (:func:`grouped_bootstrap_mean`).
    """
    active = rules.active() if hasattr(rules, "active") else dict(rules)
    scored = np.array([v for v in values if v is not None], dtype=float)
    observation = Observation(
        scored=scored,
        passing=np.array([case_passes(v) for v in scored], dtype=float),
        n_unscored=sum(v is None for v in values),
        resamples=resamples,
        groups=(
            np.array([g for g, v in zip(groups, values) if v is not None], dtype=object)
            if groups is not None
            else None
        ),
    )
    n, n_unscored = observation.n, observation.n_unscored
    results = []
    for name, threshold in active.items():
        spec = rule_spec(name)
        if spec is None:
            raise KeyError(f"unknown rule {name!r}; known rules: {', '.join(rule_names())}")
        if spec.paired or spec.observe is None:
            continue
        if n == 0 and spec.needs_scores:
            results.append(
                GateResult(metric, name, threshold, None, None, 0, n_unscored, False, "nothing scored")
            )
            continue
        observed, interval = spec.observe(observation)
        passed = n > 0 and spec.compare(observed, threshold)
        note = "nothing scored" if n == 0 else ""
        results.append(GateResult(metric, name, threshold, observed, interval, n, n_unscored, passed, note))
    return results


class _Gate(Protocol):
    @property
    def rules(self) -> _Rules: ...


class _Profile(Protocol):
    @property
    def metrics(self) -> Mapping[str, _Gate]: ...

    @property
    def bootstrap_resamples(self) -> int: ...


def metric_gates(
    profile: _Profile,
    metrics: Mapping[str, Any],
    thresholds: Mapping[str, float],
    values: Callable[[str], Sequence[float | None]],
    groups: Callable[[str], Sequence[str]] | None = None,
) -> list[GateResult]:
    """Every gated metric's rules, decided by :func:`evaluate_metric`: the one loop over a profile.

    ``profile`` is a ``GateProfile`` (its ``metrics`` gates and ``bootstrap_resamples``);
    ``metrics`` maps a name to its ``Metric`` (its ``direction`` decides whether a case's
    value passes ``thresholds[name]``); ``values(name)`` gives that metric's per-case values
    (``None`` = unscored; cases outside the metric's scope left out), ``groups(name)`` the
    question each of them answers (repeats of one question share it). A gated metric missing
    from ``metrics`` gets no result here: the report lists it as missing and the run fails
    closed. Paired rules (``max_regression``) are left to :mod:`gates.regression`.
    """
    from gates.metrics.base import passes

    gates: list[GateResult] = []
    for name, gate in profile.metrics.items():
        if name not in metrics:
            continue
        metric, threshold = metrics[name], thresholds[name]
        gates.extend(
            evaluate_metric(
                name,
                values(name),
                lambda v, m=metric, t=threshold: passes(m, v, t),
                gate.rules,
                profile.bootstrap_resamples,
                groups(name) if groups is not None else None,
            )
        )
    return gates


@dataclass(frozen=True)
class Verdict:
    """The decision of one gate run."""

    env: str
    profile: str
    profile_sha256: str
    gates: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return decide(self.gates)

    @property
    def failing(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]
