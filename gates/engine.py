"""One gate run: load cases, generate answers once, score them batched, decide.

Everything here happens before any pytest item runs; the items only read the
:class:`GateRun` and assert. Generations and judgments go through the cache.
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from gates.cache import Cache, NoCache, content_key
from gates.metrics.base import Metric, MetricCase, Score, get_metric, judgment_key, passes
from gates.profile import DatasetSpec, GateProfile
from gates.schema import UNANSWERABLE_TAG, GoldenCase, NonBlank
from gates.verdict import GateResult, Verdict, evaluate_metric
from rag.errors import UsageError
from rag.jsonl import read_jsonl

DEFAULT_CHAIN = "rag.chain:build_chain"
SCORE_BATCH = 64


class AdversarialRow(BaseModel):
    """A row of ``datasets/adversarial/*.jsonl``: a prompt, and what kind of attack it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: NonBlank
    prompt: NonBlank
    category: NonBlank
    technique: str = ""


@dataclass(frozen=True)
class Case:
    """One question to put to the chain (one sample of it, under repeated sampling)."""

    id: str
    base_id: str
    dataset: str
    question: str
    metrics: tuple[str, ...]
    ground_truth: str | None = None
    source_ids: tuple[str, ...] = ()
    answerable: bool | None = None
    tags: tuple[str, ...] = ()
    repeat: int = 0


@dataclass
class CaseResult:
    """A case, the chain's answer (or the error that stopped it), and its scores."""

    case: Case
    answer: dict[str, Any] | None
    error: str | None = None
    scores: dict[str, Score] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.case.id,
            "dataset": self.case.dataset,
            "question": self.case.question,
            "tags": list(self.case.tags),
            "answer": (self.answer or {}).get("answer"),
            "sources": (self.answer or {}).get("sources"),
            "latency_ms": (self.answer or {}).get("latency_ms"),
            "blocked": (self.answer or {}).get("blocked"),
            "rail": (self.answer or {}).get("rail"),
            "error": self.error,
            "scores": {m: s.value for m, s in self.scores.items()},
            "reasons": {m: s.reason for m, s in self.scores.items()},
        }


@dataclass
class RunStats:
    """What the run cost; the benchmarks and the summary read it."""

    cases: int = 0
    generated: int = 0
    generation_cache_hits: int = 0
    judgments: int = 0
    judgment_cache_hits: int = 0
    model_seconds: float = 0.0
    generate_seconds: float = 0.0
    score_seconds: float = 0.0
    prepare_seconds: float = 0.0


@dataclass
class GateRun:
    """Everything the gate items and the reports read."""

    profile: GateProfile
    results: list[CaseResult]
    verdict: Verdict
    thresholds: dict[str, float]
    chain_version: dict[str, str]
    stats: RunStats
    flaky: dict[str, list[str]]

    def by_metric(self, metric: str) -> list[CaseResult]:
        return [r for r in self.results if metric in r.case.metrics]

    def gates_for(self, metric: str) -> list[GateResult]:
        return [g for g in self.verdict.gates if g.metric == metric]

    def case(self, case_id: str) -> CaseResult:
        for result in self.results:
            if result.case.id == case_id:
                return result
        raise KeyError(case_id)


def load_cases(profile: GateProfile, root: Path) -> list[Case]:
    """The cases a profile selects, repeated as its sampling says."""
    cases: list[Case] = []
    for spec in profile.datasets:
        path = spec.path if spec.path.is_absolute() else root / spec.path
        metrics = tuple(profile.metrics_for(spec))
        base = _read_dataset(path, spec, metrics)
        for repeat in range(profile.sampling.repeats):
            for c in _select(base, spec):
                suffix = f"#r{repeat + 1}" if profile.sampling.repeats > 1 else ""
                cases.append(
                    Case(
                        id=f"{c.id}{suffix}",
                        base_id=c.id,
                        dataset=c.dataset,
                        question=c.question,
                        metrics=c.metrics,
                        ground_truth=c.ground_truth,
                        source_ids=c.source_ids,
                        answerable=c.answerable,
                        tags=c.tags,
                        repeat=repeat,
                    )
                )
    seen: dict[str, str] = {}
    for c in cases:
        if c.id in seen:
            raise UsageError(
                f"{profile.source}: case id {c.id!r} appears in datasets {seen[c.id]!r} and {c.dataset!r}"
            )
        seen[c.id] = c.dataset
    return cases


def _read_dataset(path: Path, spec: DatasetSpec, metrics: tuple[str, ...]) -> list[Case]:
    if spec.kind == "adversarial":
        return [
            Case(
                r.id,
                r.id,
                spec.name,
                r.prompt,
                metrics,
                tags=tuple(t for t in (r.category, r.technique) if t),
            )
            for r in read_jsonl(path, AdversarialRow)
        ]
    return [
        Case(
            r.id,
            r.id,
            spec.name,
            r.question,
            metrics,
            ground_truth=r.ground_truth,
            source_ids=tuple(r.source_ids),
            answerable=r.answerable,
            tags=tuple(r.tags),
        )
        for r in read_jsonl(path, GoldenCase)
    ]


def _select(cases: list[Case], spec: DatasetSpec) -> list[Case]:
    sample = spec.sample
    chosen = cases
    if sample.tags is not None:
        chosen = [c for c in chosen if set(c.tags) & set(sample.tags)]
    if sample.per_tag is not None:
        # Stratified and stable: within each first tag, the cases whose id hashes lowest.
        # Unanswerable cases form their own stratum, so every subset tests abstention.
        strata: dict[str, list[Case]] = {}
        for c in chosen:
            key = UNANSWERABLE_TAG if UNANSWERABLE_TAG in c.tags else (c.tags[0] if c.tags else "")
            strata.setdefault(key, []).append(c)
        keep = set()
        for members in strata.values():
            members = sorted(members, key=lambda c: hashlib.sha256(c.id.encode()).hexdigest())
            keep.update(c.id for c in members[: sample.per_tag])
        chosen = [c for c in chosen if c.id in keep]
    if sample.limit is not None:
        chosen = chosen[: sample.limit]
    return chosen


def load_chain_factory(spec: str) -> Callable[[], Any]:
    """Import ``module:attribute`` (the configured chain factory)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"[tool.ragate.gates] chain: {spec!r} is not 'module:factory'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"[tool.ragate.gates] chain: cannot import {spec!r}: {exc}") from exc


def chain_version(chain: Any) -> dict[str, str]:
    """What identifies a chain's answers: its ``version`` and, after ``prepare()`` (which
    brings its index up to date), the hash of what it indexed."""
    version = {k: str(v) for k, v in (getattr(chain, "version", {}) or {}).items()}
    if hasattr(chain, "prepare"):
        version["index"] = str(chain.prepare())
    return version


def configured_chain_factory(root: Path) -> Callable[[], Any]:
    """The factory named by ``[tool.ragate.gates] chain`` (default ``rag.chain:build_chain``)."""
    from rag.config import tool_table

    return load_chain_factory(tool_table(root).get("gates", {}).get("chain", DEFAULT_CHAIN))


def answer_to_dict(result: Any) -> dict[str, Any]:
    """Accept a RagAnswer-like object or a mapping from any team's chain."""
    data = result if isinstance(result, dict) else getattr(result, "__dict__", {})
    if "answer" not in data:
        raise TypeError(f"the chain returned {type(result).__name__} without an 'answer'")
    return {
        "answer": str(data["answer"]),
        "contexts": [str(c) for c in data.get("contexts", [])],
        "sources": [str(s) for s in data.get("sources", [])],
        "latency_ms": float(data.get("latency_ms") or 0.0),
        "prompt_tokens": int(data.get("prompt_tokens") or 0),
        "completion_tokens": int(data.get("completion_tokens") or 0),
        "blocked": bool(data.get("blocked", False)),
        "rail": data.get("rail"),
    }


class GateEngine:
    """Runs a profile against a chain, through a cache."""

    def __init__(
        self,
        profile: GateProfile,
        root: Path,
        chain_factory: Callable[[], Any],
        cache: Cache | NoCache,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.profile = profile
        self.root = root
        self.chain_factory = chain_factory
        self.cache = cache
        self.progress = progress or (lambda message: None)
        self.metrics: dict[str, Metric] = {
            name: self._metric(name, gate.judge) for name, gate in profile.metrics.items()
        }
        self.thresholds = {
            name: gate.threshold if gate.threshold is not None else self.metrics[name].default_threshold
            for name, gate in profile.metrics.items()
        }

    def _metric(self, name: str, judge: str) -> Metric:
        if judge == "llm":  # the LLM-judge variant; fails here, naming the profile key, without a judge
            from gates.metrics.llm_metrics import llm_metric

            return llm_metric(name, self.root, where=f"{self.profile.source}: metrics.{name}.judge")
        return get_metric(name)

    def run(self) -> GateRun:
        stats = RunStats()
        cases = load_cases(self.profile, self.root)
        stats.cases = len(cases)
        start = time.perf_counter()
        chain = self.chain_factory()
        version = chain_version(chain)
        stats.prepare_seconds = time.perf_counter() - start

        start = time.perf_counter()
        results = self._generate(chain, version, cases, stats)
        stats.generate_seconds = time.perf_counter() - start

        start = time.perf_counter()
        self._score(results, stats)
        stats.score_seconds = time.perf_counter() - start

        gates: list[GateResult] = []
        for name, gate in self.profile.metrics.items():
            metric = self.metrics[name]
            values = [self._value(r, name) for r in results if name in r.case.metrics]
            threshold = self.thresholds[name]
            gates.extend(
                evaluate_metric(
                    name,
                    values,
                    lambda v, m=metric, t=threshold: passes(m, v, t),
                    gate.rules,
                    self.profile.bootstrap_resamples,
                )
            )
        gates.extend(self._regression(results))
        verdict = Verdict(self.profile.env, str(self.profile.source), self.profile.sha256, tuple(gates))
        return GateRun(self.profile, results, verdict, self.thresholds, version, stats, self._flaky(results))

    def _regression(self, results: list[CaseResult]) -> list[GateResult]:
        """``max_regression`` rules: paired comparison with the champion's recorded scores."""
        allowed = {
            n: g.rules.max_regression
            for n, g in self.profile.metrics.items()
            if g.rules.max_regression is not None
        }
        if not allowed:
            return []
        from gates.regression import champion_scores, regression_gate
        from gates.tracking import TrackingError

        try:
            champion = champion_scores(self.root, self.profile.env)
        except TrackingError as exc:  # cannot compare: the gate fails closed, and says why
            return [
                GateResult(n, "max_regression", d, None, None, 0, 0, False, str(exc))
                for n, d in allowed.items()
            ]
        return [
            regression_gate(
                name,
                self.metrics[name].direction == "higher_is_better",
                {r.case.id: self._value(r, name) for r in results if name in r.case.metrics},
                champion,
                drop,
                self.profile.bootstrap_resamples,
            )
            for name, drop in allowed.items()
        ]

    @staticmethod
    def _value(result: CaseResult, metric: str) -> float | None:
        score = result.scores.get(metric)
        return score.value if score else None

    def _generation_key(self, version: dict[str, str], case: Case) -> str:
        sampling = self.profile.sampling
        return content_key("generation", version, case.question, case.repeat, sampling.temperature)

    def _generate(
        self, chain: Any, version: dict[str, str], cases: Sequence[Case], stats: RunStats
    ) -> list[CaseResult]:
        keys = [self._generation_key(version, c) for c in cases]
        cached = self.cache.get_many("generation", keys)
        stats.generation_cache_hits = sum(k in cached for k in keys)
        results = [CaseResult(c, cached.get(k)) for c, k in zip(cases, keys)]
        todo = [(r, k) for r, k in zip(results, keys) if r.answer is None]
        self.progress(f"generating {len(todo)} answers ({stats.generation_cache_hits} cached)")

        def work(item: tuple[CaseResult, str]) -> None:
            result, _ = item
            try:
                result.answer = answer_to_dict(self._invoke(chain, result.case))
            except Exception as exc:  # counted as unscored for every metric, never dropped
                result.error = f"generation failed: {type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(max_workers=self.profile.concurrency) as pool:
            list(pool.map(work, todo))
        fresh = {k: r.answer for r, k in todo if r.answer is not None}
        self.cache.put_many("generation", fresh)
        stats.generated = len(fresh)
        stats.model_seconds = sum(a["latency_ms"] for a in fresh.values()) / 1000.0
        return results

    def _invoke(self, chain: Any, case: Case) -> Any:
        sampling = self.profile.sampling
        if sampling.repeats > 1 or sampling.temperature is not None:
            return chain.invoke(case.question, seed=case.repeat, temperature=sampling.temperature)
        return chain.invoke(case.question)

    def _score(self, results: list[CaseResult], stats: RunStats) -> None:
        for name, metric in self.metrics.items():
            todo: list[tuple[CaseResult, MetricCase, str]] = []
            for r in results:
                if name not in r.case.metrics:
                    continue
                if r.answer is None:
                    r.scores[name] = Score(name, metric.version, None, r.error or "no answer")
                    continue
                mc = MetricCase(
                    id=r.case.id,
                    question=r.case.question,
                    answer=r.answer["answer"],
                    contexts=tuple(r.answer["contexts"]),
                    ground_truth=r.case.ground_truth,
                    answerable=r.case.answerable,
                    latency_ms=r.answer["latency_ms"],
                    blocked=r.answer.get("blocked"),
                    rail=r.answer.get("rail"),
                )
                todo.append((r, mc, judgment_key(metric, mc)))
            cached = self.cache.get_many("judgment", [k for _, _, k in todo])
            stats.judgment_cache_hits += sum(k in cached for _, _, k in todo)
            misses = [(r, mc, k) for r, mc, k in todo if k not in cached]
            self.progress(f"scoring {name}: {len(misses)} cases ({len(todo) - len(misses)} cached)")
            fresh: dict[str, Any] = {}
            for start in range(0, len(misses), SCORE_BATCH):
                batch = misses[start : start + SCORE_BATCH]
                try:
                    scores = metric.score_batch([mc for _, mc, _ in batch])
                    if len(scores) != len(batch):
                        raise RuntimeError(f"returned {len(scores)} scores for {len(batch)} cases")
                except Exception as exc:  # the whole batch failed: every case unscored, not lost
                    scores = [Score(name, metric.version, None, f"error: {type(exc).__name__}: {exc}")] * len(
                        batch
                    )
                for (_, _, key), score in zip(batch, scores):
                    entry = {"value": score.value, "reason": score.reason, "details": score.details}
                    cached[key] = entry
                    if score.scored:  # errors are retried next run, never cached
                        fresh[key] = entry
            self.cache.put_many("judgment", fresh)
            stats.judgments += len(misses)
            for r, _, key in todo:
                entry = cached[key]
                r.scores[name] = Score(
                    name, metric.version, entry["value"], entry["reason"], entry.get("details", {})
                )

    def _flaky(self, results: list[CaseResult]) -> dict[str, list[str]]:
        """Per metric, the cases whose pass/fail differs across repeated samples."""
        if self.profile.sampling.repeats < 2:
            return {}
        flaky: dict[str, list[str]] = {}
        for name, metric in self.metrics.items():
            outcomes: dict[str, set[bool]] = {}
            for r in results:
                value = self._value(r, name)
                if value is not None:
                    outcomes.setdefault(r.case.base_id, set()).add(
                        passes(metric, value, self.thresholds[name])
                    )
            flaky[name] = sorted(base for base, seen in outcomes.items() if len(seen) > 1)
        return flaky
