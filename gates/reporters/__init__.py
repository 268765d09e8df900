"""Reporters: one small interface for every way a gate run is reported.

A reporter has a ``name`` (how a profile or ``--gate-reports`` selects it), a
``filename`` (``None`` for the terminal, which the pytest plugin prints) and
``render(report) -> str`` (optionally ``write(report, handle)``, the same text streamed into
an open file). :func:`write_reports` renders every selected reporter into a temporary file
first and only then moves each into place, so a reporter that fails leaves the previous
run's files untouched and no file half-written.

Built-ins: ``terminal``, ``json`` (``gate-report.json``, the :class:`GateReport`'s own
serialisation), ``markdown``, ``junit`` (JUnit XML) and ``html`` (plots, self-contained).
Another package adds one through the entry-point group ``ragate.reporters``, each entry
point naming a reporter object, a class or a factory taking no argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from gates.results import GateReport
from ragate_core.errors import UsageError

# Why a gated metric has no gate result: said the same way by every reporter.
NOT_RUN = (
    "no gate item reported it: its suite file in quality/ is missing (ragate init writes one per "
    "metric), or its items were deselected (-k, a file named on the command line), interrupted or errored"
)

ENTRY_POINT_GROUP = "ragate.reporters"
DEFAULT_REPORTERS: tuple[str, ...] = ("json", "markdown", "junit", "html")


@runtime_checkable
class Reporter(Protocol):
    """Renders a :class:`GateReport` as the text of one file (or of the terminal)."""

    name: str
    filename: str | None

    def render(self, report: GateReport) -> str: ...


_REGISTRY: dict[str, Callable[[], Reporter]] = {}
_loaded = False


def register_reporter(name: str) -> Callable[[Callable[[], Reporter]], Callable[[], Reporter]]:
    """Register a reporter factory (a class or a function taking no argument) under ``name``."""

    def deco(factory: Callable[[], Reporter]) -> Callable[[], Reporter]:
        _REGISTRY[name] = factory
        return factory

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    from gates.reporters import (  # noqa: F401  (registers them)
        html,
        json_report,
        junit,
        markdown,
        terminal,
    )

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise UsageError(
                f"entry point {ep.name} = {ep.value} (group {ENTRY_POINT_GROUP}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if ep.name not in _REGISTRY:
            # A class or a factory function makes a reporter; anything else is one already.
            factory = inspect.isclass(obj) or inspect.isfunction(obj)
            _REGISTRY[ep.name] = obj if factory else (lambda o=obj: o)


def reporter_names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get_reporter(name: str) -> Reporter:
    _load()
    if name not in _REGISTRY:
        raise UsageError(f"unknown reporter {name!r}; known reporters: {', '.join(sorted(_REGISTRY))}")
    reporter = _REGISTRY[name]()
    if not isinstance(reporter, Reporter):
        raise UsageError(f"reporter {name!r} has no name/filename/render(report): {reporter!r}")
    return reporter


def parse_reporters(value: str) -> list[str]:
    """``"json,markdown,html"`` -> the names, each checked (``UsageError`` names the bad one)."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    known = reporter_names()
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise UsageError(
            f"unknown reporter(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}"
        )
    return names


def write_reports(report: GateReport, directory: Path, names: Sequence[str] | None = None) -> list[Path]:
    """Render the selected reporters (default :data:`DEFAULT_REPORTERS`) and write each file
    atomically into ``directory``; returns the paths in the order of ``names``.

    A reporter with a ``write(report, handle)`` method (the JSON one) streams its text into
    the file's temporary twin, so a report with many cases is never held whole as one
    string; the others' ``render`` text is written there. No file is moved into place until
    every reporter has finished: a report that cannot be rendered leaves the previous run's
    files untouched and no new file beside them."""
    from contextlib import ExitStack

    from ragate_core.jsonl import atomic_writer

    reporters = [get_reporter(n) for n in (DEFAULT_REPORTERS if names is None else names)]
    paths = []
    with ExitStack() as pending:  # on leaving: every temporary file moved into place, or all removed
        for reporter in reporters:
            if not reporter.filename:
                continue
            path = directory / reporter.filename
            handle = pending.enter_context(atomic_writer(path))
            write = getattr(reporter, "write", None)
            if callable(write):
                write(report, handle)
            else:
                handle.write(reporter.render(report))
            paths.append(path)
    return paths


def write_rendered(directory: Path, rendered: Sequence[tuple[str, str]]) -> list[Path]:
    """Write each already-rendered ``(filename, text)`` atomically into ``directory``;
    the paths written, in order. Render everything first, then call this."""
    from ragate_core.jsonl import write_text

    paths = []
    for filename, text in rendered:
        path = directory / filename
        write_text(path, text)
        paths.append(path)
    return paths


# Rules whose threshold and observed value are in the metric's own unit (a mean, a
# percentile, a budget); the others are shares or counts of cases.
UNIT_RULES = frozenset(
    {
        "min_mean",
        "max_mean",
        "min_lower_bound",
        "max_upper_bound",
        "max_p95",
        "max_median",
        "max_total",
        "max_regression",
    }
)


def metric_units(profile: object) -> dict[str, str]:
    """Metric name -> unit for the profile's metrics whose unit the profile sets (``cost``:
    its ``pricing.currency``); what a gate run puts in ``report.stats["units"]``. Fixed
    units (latency's ms, in its threshold keys and docs) are left out, so the tables keep
    their established columns."""
    from gates.metrics.base import get_metric

    units = {}
    for name in getattr(profile, "metrics", {}) or {}:
        try:
            metric = get_metric(name)
        except KeyError:
            continue
        configured = getattr(metric, "configured", None)
        if not callable(configured):
            continue
        unit = getattr(configured(profile), "unit", None)
        if isinstance(unit, str) and unit and unit != getattr(metric, "unit", None):
            units[name] = unit
    return units


def with_unit(report: GateReport, metric: str, rule: str, text: str) -> str:
    """``text`` (a formatted threshold or observed value) followed by the metric's unit when
    the rule is in that unit and the report knows it (``stats["units"]``)."""
    units = report.stats.get("units") if isinstance(report.stats, dict) else None
    unit = (units or {}).get(metric) if isinstance(units, dict) else None
    if not unit or rule not in UNIT_RULES or text in ("", "n/a"):
        return text
    return f"{text} {unit}"


def all_reporters(names: Iterable[str] | None = None) -> list[Reporter]:
    return [get_reporter(n) for n in (names or reporter_names())]
