"""The metric model: a named, versioned scorer of a batch of cases.

A metric never loses a batch: a case it cannot score comes back as an unscored
:class:`Score` (``value is None``) with the error as its reason, and is counted apart.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
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
    source_ids: tuple[str, ...] = ()  # the case's relevant documents (golden set)
    sources: tuple[str, ...] = ()  # the chain's retrieved chunks' documents, best first
    prompt_tokens: int | None = None  # as the chain's model reported them; None = unknown
    completion_tokens: int | None = None
    # The SHA-256 (hex) of the chain's raw answer when ``answer`` holds its masked form (a
    # generation the cache keeps masked, read back only when all its judgments are cached:
    # no metric ever scores it); None when ``answer`` is the text the chain gave.
    answer_sha256: str | None = None


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
    # Optional: the code and data the judgments depend on beyond the metric's own module
    # (which is always hashed): dotted module names ("ragate_core.pii"; a package means all
    # its .py files) and package data paths ("ragate_core/data/*.jsonl": a package, then a
    # glob inside it). Their contents join every judgment's cache key, so editing them
    # never reuses a stale judgment. Read with getattr(metric, "depends_on", ()).
    depends_on: tuple[str, ...] = ()

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]: ...

    def reads(self, case: MetricCase) -> dict[str, Any]:
        """The inputs this metric reads, for its cache key."""
        ...


def passes(metric: Metric, value: float, threshold: float) -> bool:
    """Whether one case's value passes the per-case threshold in the metric's direction."""
    return value >= threshold if metric.direction == "higher_is_better" else value <= threshold


def judgment_key(metric: Metric, case: MetricCase) -> str:
    """Content address of a judgment: metric name + version + everything it reads.

    The code of the metric's module (and of the shared metric helpers and data, and of
    everything its ``depends_on`` names) is part of the key too, so an edited metric never
    reads a judgment its old code made. The answer enters as its SHA-256, not its text: a
    generation the cache keeps masked still finds its judgments (``answer_sha256``).
    """
    return judgment_key_and_reads(metric, case)[0]


def answer_sha256(answer: str) -> str:
    """The SHA-256 (hex) of an answer's UTF-8 text: how judgment keys name the answer (a lone
    surrogate, which UTF-8 cannot encode, enters as its surrogate-pass bytes)."""
    return hashlib.sha256(answer.encode("utf-8", "surrogatepass")).hexdigest()


def judgment_key_and_reads(metric: Metric, case: MetricCase) -> tuple[str, bool]:
    """:func:`judgment_key`, and whether the metric reads the answer (its ``reads`` has a
    top-level value equal to ``case.answer``): only such a judgment's reason can quote it."""
    inputs = dict(metric.reads(case))
    digest = None
    for name, value in inputs.items():
        if isinstance(value, str) and value == case.answer:
            digest = digest or {"answer_sha256": case.answer_sha256 or answer_sha256(case.answer)}
            inputs[name] = digest
    blob = json.dumps(
        {
            "m": metric.name,
            "v": metric.version,
            "code": _code_hash(type(metric).__module__, tuple(getattr(metric, "depends_on", ()) or ())),
            "in": inputs,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest(), digest is not None


@functools.cache
def _code_hash(module_name: str, depends_on: tuple[str, ...] = ()) -> str:
    import importlib

    here = Path(__file__).parent
    files = [Path(importlib.import_module(module_name).__file__ or ""), here / "text.py", here / "base.py"]
    files += sorted((here / "data").glob("*"))
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.read_bytes())
    # Without depends_on the digest is what it always was: existing caches stay valid.
    for entry in depends_on:
        for path in dependency_files(entry):
            digest.update(f"\0{entry}\0{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def dependency_files(entry: str) -> list[Path]:
    """The files one ``depends_on`` entry names, sorted; ``ValueError`` when it names none.

    ``"pkg.module"``: that module's file; ``"pkg"`` (a package): every ``.py`` file under
    it; ``"pkg.sub/data/*.json"``: the files matching the glob inside the package folder.
    """
    import importlib.util

    module, _, pattern = entry.partition("/")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"depends_on {entry!r}: cannot find module {module!r}: {exc}") from exc
    if spec is None:
        raise ValueError(f"depends_on {entry!r}: no module named {module!r}")
    folders = list(spec.submodule_search_locations or [])
    if pattern:
        if not folders:
            raise ValueError(f"depends_on {entry!r}: {module!r} is a module, not a package with data")
        files = sorted(p for folder in folders for p in Path(folder).glob(pattern) if p.is_file())
    elif folders:
        files = sorted(p for folder in folders for p in Path(folder).rglob("*.py") if p.is_file())
    else:
        files = [Path(spec.origin)] if spec.origin and Path(spec.origin).is_file() else []
    if not files:
        raise ValueError(f"depends_on {entry!r}: names no file")
    return files


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
    _load_all()
    return sorted(_REGISTRY)


# The built-in metrics by the module that registers them, so that scoring one metric imports
# only its own module (all of them cost ~0.3 s of a first score); _load_builtin imports
# these modules, and tests/test_metric_registry_lazy.py checks each registers its names.
BUILTIN_MODULES = {
    "answer_correctness": "correctness",
    "answer_relevancy": "relevancy",
    "attack_blocked": "guardrails",
    "context_precision": "retrieval",
    "context_recall": "retrieval",
    "cost": "cost",
    "faithfulness": "faithfulness",
    "false_block": "guardrails",
    "hit_rate": "retrieval",
    "internal_error": "guardrails",
    "latency": "latency",
    "mrr": "retrieval",
    "pii": "pii",
    "toxicity": "toxicity",
}


def is_metric(name: str) -> bool:
    """Whether ``name`` is a registered metric; a built-in name imports nothing."""
    if name in BUILTIN_MODULES:
        return True
    _load_all()
    return name in _REGISTRY


_INSTANCES: dict[str, Metric] = {}


def get_metric(name: str) -> Metric:
    """The shared instance of a registered metric (models load once per process).

    Raises ``KeyError`` for an unknown name, ``UsageError`` when the metric's
    ``depends_on`` names no file (its judgments could not be keyed honestly)."""
    if name not in _REGISTRY and name in BUILTIN_MODULES:
        importlib.import_module(f"gates.metrics.{BUILTIN_MODULES[name]}")
    if name not in _REGISTRY:
        _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(_REGISTRY))}")
    if name not in _INSTANCES:
        metric = _REGISTRY[name]()
        for entry in getattr(metric, "depends_on", ()) or ():
            try:
                dependency_files(entry)
            except ValueError as exc:
                from ragate_core.errors import UsageError

                raise UsageError(f"metric {name!r} ({type(metric).__module__}): {exc}") from exc
        _INSTANCES[name] = metric
    return _INSTANCES[name]


ENTRY_POINT_GROUP = "ragate.metrics"
_entry_points_loaded = False


def _load_all() -> None:
    global _entry_points_loaded
    _load_builtin()
    if not _entry_points_loaded:
        _entry_points_loaded = True
        _load_entry_points()


def _load_entry_points() -> None:
    """Metrics other distributions add: ``[project.entry-points."ragate.metrics"]``.

    Each entry point is named for its metric and points at a module (importing it
    registers its metrics with :func:`register`) or at a factory taking no argument (a
    class or a function), registered under the entry point's name. A built-in name cannot
    be taken over; a broken entry point is a usage error naming it.
    """
    import inspect
    from importlib.metadata import entry_points

    from ragate_core.errors import UsageError

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        where = f"entry point {ep.name} = {ep.value} (distribution {dist}, group {ENTRY_POINT_GROUP})"
        try:
            obj = ep.load()
        except Exception as exc:
            raise UsageError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if inspect.ismodule(obj):
            continue  # importing it registered its metrics
        if not callable(obj):
            raise UsageError(f"{where}: points at {type(obj).__name__}, not a module or a metric factory")
        known = _REGISTRY.get(ep.name)
        if known is not None and known is not obj:
            raise UsageError(
                f"{where}: a metric named {ep.name!r} is already registered ({known.__module__})"
            )
        _REGISTRY[ep.name] = obj


def _load_builtin() -> None:
    # Importing the modules registers them; the heavy models load lazily on first use.
    for module in sorted(set(BUILTIN_MODULES.values())):
        importlib.import_module(f"gates.metrics.{module}")


def applies(metric: Metric, case: MetricCase) -> bool:
    """Whether ``case`` is in the metric's scope; a metric may define ``applies(case)``
    (reading only what is known before the chain answers: retrieval metrics skip
    unanswerable cases). A case out of scope is neither scored nor unscored."""
    check = getattr(metric, "applies", None)
    return True if check is None else bool(check(case))
