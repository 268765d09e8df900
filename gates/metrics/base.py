"""The metric model: a named, versioned scorer of a batch of cases.

A metric never loses a batch: a case it cannot score comes back as an unscored
:class:`Score` (``value is None``) with the error as its reason, and is counted apart.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

Direction = Literal["higher_is_better", "lower_is_better"]


@dataclass(frozen=True)
class MetricCase:
    """What a metric may read about one answered case."""

    id: str
    question: str
    answer: str
    contexts: tuple[str, ...] = ()
    ground_truth: str | None = None
    answerable: bool | None = None
    latency_ms: float | None = None
    blocked: bool | None = None  # a guardrail refused the request
    rail: str | None = None  # which rail fired


@dataclass(frozen=True)
class Score:
    """One metric's judgment of one case; ``value is None`` means unscored."""

    metric: str
    metric_version: str
    value: float | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        return self.value is not None


class Metric(Protocol):
    """A metric scores many cases at once (models are fastest batched)."""

    name: str
    version: str
    direction: Direction
    # The per-case threshold used when a profile does not set one.
    default_threshold: float

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]: ...

    def reads(self, case: MetricCase) -> dict[str, Any]:
        """The inputs this metric reads, for its cache key."""
        ...


def passes(metric: Metric, value: float, threshold: float) -> bool:
    """Whether one case's value passes the per-case threshold in the metric's direction."""
    return value >= threshold if metric.direction == "higher_is_better" else value <= threshold


def judgment_key(metric: Metric, case: MetricCase) -> str:
    """Content address of a judgment: metric name + version + everything it reads.

    The code of the metric's module (and of the shared metric helpers and data) is part
    of the key too, so an edited metric never reads a judgment its old code made.
    """
    blob = json.dumps(
        {
            "m": metric.name,
            "v": metric.version,
            "code": _code_hash(type(metric).__module__),
            "in": metric.reads(case),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@functools.cache
def _code_hash(module_name: str) -> str:
    import importlib

    here = Path(__file__).parent
    files = [Path(importlib.import_module(module_name).__file__ or ""), here / "text.py", here / "base.py"]
    files += sorted((here / "data").glob("*"))
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def unscored(metric: Metric, reason: str) -> Score:
    return Score(metric.name, metric.version, None, reason)


def score_each(
    metric: Metric,
    cases: Sequence[MetricCase],
    one: Callable[[MetricCase], tuple[float, str, dict[str, Any]]],
    upper: float = 1.0,
) -> list[Score]:
    """Score case by case, turning an exception for one case into an unscored Score.

    Values must lie in ``[0, upper]`` (``[0, 1]`` for every metric but latency).
    """
    out = []
    for case in cases:
        try:
            value, reason, details = one(case)
        except Exception as exc:  # a judge error is counted and reported, never dropped
            out.append(unscored(metric, f"error: {type(exc).__name__}: {exc}"))
            continue
        if value != value or not 0.0 <= value <= upper:  # NaN or out of range
            out.append(unscored(metric, f"error: value {value!r} outside [0, {upper:g}]"))
            continue
        out.append(Score(metric.name, metric.version, round(float(value), 6), reason, details))
    return out


_REGISTRY: dict[str, Callable[[], Metric]] = {}


def register(name: str) -> Callable[[Callable[[], Metric]], Callable[[], Metric]]:
    """Register a metric factory under ``name``."""

    def deco(factory: Callable[[], Metric]) -> Callable[[], Metric]:
        _REGISTRY[name] = factory
        return factory

    return deco


def metric_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


_INSTANCES: dict[str, Metric] = {}


def get_metric(name: str) -> Metric:
    """The shared instance of a registered metric (models load once per process)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(_REGISTRY))}")
    if name not in _INSTANCES:
        _INSTANCES[name] = _REGISTRY[name]()
    return _INSTANCES[name]


def _load_builtin() -> None:
    # Importing the modules registers them; the heavy models load lazily on first use.
    from gates.metrics import faithfulness, guardrails, latency, pii, relevancy, toxicity  # noqa: F401
