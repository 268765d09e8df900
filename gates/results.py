"""The typed results of a gate run: gates, cases, the champion's baseline and the report.

``GateReport`` is what every consumer reads (the reporters, tracking, the regression
gate, ``promote``); ``gate-report.json`` is its serialisation (:meth:`GateReport.to_json`
and :meth:`GateReport.from_json` round-trip it). Whether a run passed is decided in one
place, :func:`decide`: :attr:`GateReport.passed`, ``Verdict.passed`` and the aggregate
pytest item all call it.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class GateResult:
    """One rule of one metric, decided.

    ``threshold`` is the profile's value for the rule, ``observed`` what the run measured
    (``None`` when nothing could be measured), ``interval`` the 95% bootstrap interval of
    the observed statistic when the rule has one, ``n_scored``/``n_unscored`` the cases
    that entered it and the ones that could not be scored.
    """

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
        from gates.verdict import rule_spec

        spec = rule_spec(self.rule)
        what, op = (spec.reads, spec.op) if spec else (self.rule, "?")
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
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        data = {k: v for k, v in data.items() if k != "name"}
        data["interval"] = tuple(data["interval"]) if data.get("interval") else None
        return cls(**data)


def decide(gates: Iterable[GateResult], missing: Iterable[str] = ()) -> bool:
    """THE verdict: passed when at least one gate ran, every gate passed and no gated metric
    of the profile is missing (deselected, interrupted, errored). A run that decided nothing
    did not pass."""
    gates = tuple(gates)
    return bool(gates) and not tuple(missing) and all(g.passed for g in gates)


@dataclass(frozen=True)
class CaseRecord:
    """One case as the report keeps it: the question, the chain's answer (or the error that
    stopped it) and every metric's score and reason (``None`` = unscored).

    ``extra`` keeps fields this version does not know, so a report round-trips unchanged.
    """

    id: str
    question: str = ""
    dataset: str = ""
    tags: tuple[str, ...] = ()
    answer: str | None = None
    sources: tuple[str, ...] | None = None
    latency_ms: float | None = None
    blocked: bool | None = None
    rail: str | None = None
    error: str | None = None
    scores: Mapping[str, float | None] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "dataset": self.dataset,
            "question": self.question,
            "tags": list(self.tags),
            "answer": self.answer,
            "sources": None if self.sources is None else list(self.sources),
            "latency_ms": self.latency_ms,
            "blocked": self.blocked,
            "rail": self.rail,
            "error": self.error,
            "scores": dict(self.scores),
            "reasons": dict(self.reasons),
        }
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseRecord:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise ValueError(f"a case needs a string 'id', got {data!r:.80}")
        known = {f.name for f in fields(cls)} - {"extra"}
        sources = data.get("sources")
        return cls(
            id=data["id"],
            question=str(data.get("question") or ""),
            dataset=str(data.get("dataset") or ""),
            tags=tuple(data.get("tags") or ()),
            answer=data.get("answer"),
            sources=None if sources is None else tuple(sources),
            latency_ms=data.get("latency_ms"),
            blocked=data.get("blocked"),
            rail=data.get("rail"),
            error=data.get("error"),
            scores=dict(data.get("scores") or {}),
            reasons=dict(data.get("reasons") or {}),
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class ChampionBaseline:
    """The champion's recorded per-case scores, fetched before a run is scored.

    ``scores`` maps case id -> metric -> value (``None`` = the champion left it unscored);
    ``model_version`` and ``run_id`` say where they came from (registry version, MLflow run).
    """

    model_version: str
    run_id: str | None
    scores: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "run_id": self.run_id,
            "scores": {k: dict(v) for k, v in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChampionBaseline:
        return cls(
            str(data["model_version"]),
            data.get("run_id"),
            {k: dict(v) for k, v in (data.get("scores") or {}).items()},
        )


@dataclass(frozen=True)
class GateReport:
    """Everything one gate run decided and measured; ``gate-report.json`` serialises it.

    ``thresholds`` are the per-case thresholds per metric, ``directions`` each metric's
    ``higher_is_better``/``lower_is_better``, ``missing`` the gated metrics of the profile
    that reported no gate, ``champion`` the baseline the regression gate compared with.
    ``cases`` is a tuple, or for a large run a sequence read from its spool one case at a
    time (``gates.engine.GateRun.case_records``): readers iterate it, and
    :meth:`iter_json` writes it without every case in memory.
    """

    env: str
    gates: tuple[GateResult, ...] = ()
    cases: Sequence[CaseRecord] = ()
    missing: tuple[str, ...] = ()
    created: str = ""
    profile: str | None = None
    profile_sha256: str | None = None
    chain_version: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    directions: Mapping[str, str] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)
    flaky: Mapping[str, list[str]] = field(default_factory=dict)
    champion: ChampionBaseline | None = None
    # Why the run stopped before a verdict (interrupted, usage error...); None when it did not.
    stopped: str | None = None

    @property
    def passed(self) -> bool:
        return decide(self.gates, self.missing)

    @property
    def failing(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    @property
    def metrics(self) -> list[str]:
        """Every metric the report gates or scores, sorted."""
        names = {g.metric for g in self.gates} | set(self.thresholds)
        return sorted(names)

    def higher_is_better(self, metric: str) -> bool:
        return self.directions.get(metric) == "higher_is_better"

    def case_passes(self, metric: str, value: float) -> bool:
        """Whether one case's value passes its metric's per-case threshold."""
        threshold = self.thresholds[metric]
        return value >= threshold if self.higher_is_better(metric) else value <= threshold

    def values(self, metric: str) -> dict[str, float | None]:
        """Case id -> this metric's value, for the cases that metric judged."""
        return {c.id: c.scores[metric] for c in self.cases if metric in c.scores}

    def failing_cases(self) -> list[tuple[CaseRecord, str, float | None, str]]:
        """(case, metric, value, reason) for every case failing or unscored on a gated metric,
        metric by metric (in the report's order), worst first: unscored cases, then the
        farthest from passing (lowest for a higher-is-better metric, highest otherwise)."""
        return sorted(self._failing_rows(), key=self._worst_first())

    def worst_failing(self, limit: int) -> tuple[int, list[tuple[CaseRecord, str, float | None, str]]]:
        """How many rows :meth:`failing_cases` has, and its first ``limit`` rows, holding no
        more than ``limit`` of them at a time (a report of many cases, read from a spool, lists
        the worst without every failing case in memory)."""
        count = 0

        def counted() -> Iterator[tuple[CaseRecord, str, float | None, str]]:
            nonlocal count
            for row in self._failing_rows():
                count += 1
                yield row

        rows = counted()
        worst = heapq.nsmallest(max(0, limit), rows, key=self._worst_first())  # stable, as sorted()
        count += sum(1 for _ in rows)  # what nsmallest left unread (a limit of 0 reads none)
        return count, worst

    def _failing_rows(self) -> Iterator[tuple[CaseRecord, str, float | None, str]]:
        for case in self.cases:
            for metric, value in case.scores.items():
                if metric not in self.thresholds:
                    continue
                if value is None or not self.case_passes(metric, value):
                    yield (case, metric, value, case.reasons.get(metric, ""))

    def _worst_first(self) -> Callable[[tuple[CaseRecord, str, float | None, str]], tuple[int, int, float]]:
        order = {m: i for i, m in enumerate(self.thresholds)}

        def worst_first(row: tuple[CaseRecord, str, float | None, str]) -> tuple[int, int, float]:
            _, metric, value, _ = row
            if value is None:
                return (order[metric], 0, 0.0)
            return (order[metric], 1, value if self.higher_is_better(metric) else -value)

        return worst_first

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._head(),
            "gates": [g.to_dict() for g in self.gates],
            "cases": [c.to_dict() for c in self.cases],
        }

    def _head(self) -> dict[str, Any]:
        """Every field of :meth:`to_dict` before ``gates`` and ``cases``, in its order."""
        return {
            "schema": SCHEMA_VERSION,
            "env": self.env,
            "passed": self.passed,
            "missing": list(self.missing),
            "created": self.created,
            "profile": self.profile,
            "profile_sha256": self.profile_sha256,
            "chain_version": dict(self.chain_version),
            "thresholds": dict(self.thresholds),
            "directions": dict(self.directions),
            "stats": dict(self.stats),
            "flaky": {k: list(v) for k, v in self.flaky.items()},
            "champion": self.champion.to_dict() if self.champion else None,
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateReport:
        """Raises ``ValueError`` naming the field when ``data`` is not a gate report."""
        if not isinstance(data, Mapping) or not isinstance(data.get("env"), str):
            raise ValueError("not a gate report: expected a mapping with a string 'env'")
        try:
            report = cls(
                env=data["env"],
                gates=tuple(GateResult.from_dict(g) for g in data.get("gates") or ()),
                cases=tuple(CaseRecord.from_dict(c) for c in data.get("cases") or ()),
                missing=tuple(data.get("missing") or ()),
                created=str(data.get("created") or ""),
                profile=data.get("profile"),
                profile_sha256=data.get("profile_sha256"),
                chain_version=dict(data.get("chain_version") or {}),
                thresholds=dict(data.get("thresholds") or {}),
                directions=dict(data.get("directions") or {}),
                stats=dict(data.get("stats") or {}),
                flaky={k: list(v) for k, v in (data.get("flaky") or {}).items()},
                champion=ChampionBaseline.from_dict(data["champion"]) if data.get("champion") else None,
                stopped=data.get("stopped"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a gate report: {type(exc).__name__}: {exc}") from exc
        if "passed" in data and bool(data["passed"]) != report.passed:
            raise ValueError(
                f"gate report says passed={data['passed']!r} but its gates decide {report.passed}"
            )
        return report

    def to_json(self) -> str:
        return "".join(self.iter_json())

    def iter_json(self) -> Iterator[str]:
        """:meth:`to_json`'s text in pieces, one per case: ``gate-report.json`` is written
        from it without the whole text (or every case's dict) in memory at once.

        The text is exactly ``json.dumps(self.to_dict(), indent=2, ensure_ascii=False)``
        plus a newline: each case is dumped on its own and indented to its depth (JSON
        escapes every newline inside a string, so each newline of a dump is structure)."""
        head = self._head()
        head["gates"] = [g.to_dict() for g in self.gates]
        text = json.dumps(head, indent=2, ensure_ascii=False)
        yield text[: -len("\n}")] + ',\n  "cases": '
        if not self.cases:
            yield "[]\n}\n"
            return
        separator = "[\n    "
        for case in self.cases:
            yield separator + json.dumps(case.to_dict(), indent=2, ensure_ascii=False).replace("\n", "\n    ")
            separator = ",\n    "
        yield "\n  ]\n}\n"

    @classmethod
    def from_json(cls, text: str) -> GateReport:
        return cls.from_dict(json.loads(text))
