"""The gate cache holds no raw personal data (issue 11 item 3), and still saves the work.

A chain that echoes the customer's message (a fake, named as such) answers a fictional
dataset whose questions hold an e-mail address, a card number, a phone number and a name.
A tracked gate run then leaves none of the four raw in any file of the project: reports,
``.ragate/`` (the SQLite cache's bytes included) and the MLflow store. The answers holding
them are cached masked; a warm run calls the chain for none of them and reaches the same
verdict; a metric's new version re-generates exactly the masked answers (no metric ever
scores masked text), and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _fixtures import PII_QUESTIONS as QUESTIONS
from _fixtures import QUOTING_PROFILE, gate_project, run_gates
from _fixtures import RAW_PII as RAW

from gates.cache import Cache
from gates.engine import GENERATION_NAMESPACE, MASKED_GENERATION_NAMESPACE, GateEngine, load_cases
from gates.profile import GateProfile, load_profile

PERSONAL = {"p1", "p2", "p3", "p4"}

CHAIN = """
import hashlib, os
from pathlib import Path


class FakeEchoChain:
    \"\"\"A fake chain for a test: it repeats the customer's message in its answer.\"\"\"

    version = {"fake-echo": "1"}

    def invoke(self, question, **kw):
        # The call log names each question by its digest: the log holds nothing raw.
        with open(Path(__file__).parent / "calls.log", "a") as log:
            log.write(hashlib.sha256(question.encode()).hexdigest() + "\\n")
        return {"answer": f"Thanks for writing. You said: {question}",
                "contexts": ["Support answers every message within one working day."],
                "latency_ms": 100.0}


def build():
    return FakeEchoChain()
"""

# A fake metric registered by the project's conftest: it reads the answer and quotes it in
# its reason and details, as real metrics' reasons do ("weakest claim '...'").
CONFTEST = """
import os

from gates.metrics.base import register, score_each


class FakeQuotingMetric:
    name = "quoting"
    version = os.environ.get("FAKE_QUOTING_VERSION", "1")
    direction = "higher_is_better"
    default_threshold = 0.5

    def reads(self, case):
        return {"answer": case.answer}

    def score_batch(self, cases):
        return score_each(self, cases, lambda c: (1.0, f"quoted '{c.answer}'", {"quote": c.answer}))


register("quoting")(FakeQuotingMetric)
"""

PROFILE = QUOTING_PROFILE

INPUTS = {"pyproject.toml", "fakechain.py", "conftest.py", "qa.jsonl", "profile.yaml", "test_quoting.py"}


def make_project(folder: Path) -> Path:
    return gate_project(
        folder,
        "fakechain",
        CHAIN,
        QUESTIONS,
        PROFILE,
        **{
            "conftest.py": CONFTEST,
            "test_quoting.py": 'from gates.suite import *  # noqa: F403\n\nMETRIC = "quoting"\n',
        },
    )


def gate(folder: Path, version: str = "1") -> subprocess.CompletedProcess[str]:
    return run_gates(folder, "-rA", "--showlocals", FAKE_QUOTING_VERSION=version)  # the default store


def leaks(blob: bytes) -> list[str]:
    found = []
    for kind, value in RAW.items():
        variants = {value, value.replace(" ", ""), value.replace("-", " ")}
        for variant in variants:
            # As written, and as JSON writes it with ensure_ascii (UTF-16 for sqlite is not used).
            if variant.encode() in blob or variant.encode("utf-16-le") in blob:
                found.append(kind)
                break
    return found


def written(folder: Path) -> list[Path]:
    files = (p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [p for p in files if p.name not in INPUTS]


def calls(folder: Path) -> list[str]:
    log = folder / "calls.log"
    lines = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def digest(case_id: str) -> str:
    return hashlib.sha256(QUESTIONS[case_id].encode()).hexdigest()


def verdict(folder: Path) -> dict[str, Any]:
    report = json.loads((folder / "reports" / "gate-report.json").read_text())
    return {
        "passed": report["passed"],
        "gates": report["gates"],
        "cases": [
            {k: c[k] for k in ("id", "question", "answer", "scores", "reasons")} for c in report["cases"]
        ],
    }


def entries(folder: Path, namespace: str) -> dict[str, dict[str, Any]]:
    # closing(): sqlite3's own context manager commits but leaves the connection open, and
    # its close at garbage collection would delete the -shm file while written() reads it.
    with contextlib.closing(sqlite3.connect(folder / ".ragate" / "cache" / "gates.sqlite")) as db:
        rows = db.execute("SELECT key, value FROM entries WHERE namespace = ?", (namespace,)).fetchall()
    return {k: json.loads(v) for k, v in rows}


def test_a_tracked_run_writes_no_raw_value_and_the_warm_run_calls_no_chain(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")

    cold = gate(project)
    assert cold.returncode == 1, cold.stdout + cold.stderr  # the pii gate fails: the chain leaks
    assert "tracked as MLflow run" in cold.stdout, cold.stdout
    assert sorted(calls(project)) == sorted(digest(i) for i in QUESTIONS)
    assert leaks((cold.stdout + cold.stderr).encode()) == [], cold.stdout
    files = written(project)
    names = {p.name for p in files}
    assert {"gate-report.json", "gates.sqlite", "mlflow.db", "cases.json"} <= names, names
    for path in files:
        assert leaks(path.read_bytes()) == [], path

    # The four answers holding personal data are cached masked, the fifth as it was given.
    masked = entries(project, MASKED_GENERATION_NAMESPACE)
    plain = entries(project, GENERATION_NAMESPACE)
    assert len(masked) == 4 and len(plain) == 1, (masked, plain)
    assert all(e["answer_sha256"] and "<" in e["answer"] for e in masked.values())
    assert next(iter(plain.values()))["answer"].endswith(QUESTIONS["p5"])
    quoted = [e["reason"] for e in entries(project, "judgment").values() if e["reason"].startswith("quoted")]
    assert len(quoted) == 5 and sum("<" in r for r in quoted) == 4, quoted
    first = verdict(project)
    assert first["passed"] is False

    warm = gate(project)
    assert warm.returncode == 1, warm.stdout + warm.stderr
    assert calls(project) == []  # every answer from the cache, the masked ones included
    assert verdict(project) == first
    assert leaks((warm.stdout + warm.stderr).encode()) == []

    # A new version of the quoting metric: its judgments are missing, so only the masked
    # answers are asked again (the unmasked one is scored from the cache's text).
    bumped = gate(project, version="2")
    assert bumped.returncode == 1, bumped.stdout + bumped.stderr
    assert sorted(calls(project)) == sorted(digest(i) for i in PERSONAL)
    assert verdict(project) == first
    for path in written(project):
        assert leaks(path.read_bytes()) == [], path


class _FakeChain:
    """A fake chain for a test: echoes the message, counts its calls."""

    def __init__(self) -> None:
        self.version = {"fake": "1"}
        self.asked: list[str] = []

    def invoke(self, question: str, **kw: Any) -> dict[str, Any]:
        self.asked.append(question)
        return {"answer": f"You said: {question}", "contexts": ["Refunds take five days."]}


def _pii_profile(folder: Path) -> GateProfile:
    """A one-case (p1) profile gating pii."""
    (folder / "qa.jsonl").write_text(
        json.dumps({"id": "p1", "question": QUESTIONS["p1"], "ground_truth": "x", "source_ids": ["d"]}) + "\n"
    )
    path = folder / "p.yaml"
    path.write_text(
        "env: ci\ndatasets:\n  - name: golden\n    path: qa.jsonl\n"
        "metrics:\n  pii:\n    threshold: 0.5\n    rules: {max_violations: 0}\n"
    )
    return load_profile(str(path), folder)


def test_a_raw_answer_cached_before_masking_is_rewritten_masked(tmp_path: Path) -> None:
    """A cache written by an older ragate (or any other writer) holds raw answers: the next
    run reads them, and from then on the cache holds them masked, the raw bytes overwritten."""
    profile = _pii_profile(tmp_path)
    path = tmp_path / "cache" / "gates.sqlite"
    cache = Cache(path)
    chain = _FakeChain()
    engine = GateEngine(profile, tmp_path, lambda: chain, cache)
    case = load_cases(profile, tmp_path, cache=cache)[0]
    version = {"fake": "1"}
    key = engine._generation_key(version, case)
    raw = {"answer": f"You said: {QUESTIONS['p1']}", "contexts": ["Refunds take five days."]}
    cache.put_many(GENERATION_NAMESPACE, {key: raw})

    run = GateEngine(profile, tmp_path, lambda: chain, cache, chain_spec=None).run()
    assert chain.asked == []  # the raw answer was used (and judged) as it was
    assert run.results[0].scores["pii"].value is not None and run.results[0].scores["pii"].value > 0.5
    assert cache.get_many(GENERATION_NAMESPACE, [key]) == {}
    kept = cache.get_many(MASKED_GENERATION_NAMESPACE, [key])[key]
    assert RAW["e-mail"] not in kept["answer"] and "<EMAIL_ADDRESS>" in kept["answer"]
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for file in path.parent.iterdir():
        assert leaks(file.read_bytes()) == [], file

    # Warm: all its judgments are cached, so the masked answer is used and no chain called.
    again = GateEngine(profile, tmp_path, lambda: chain, cache).run()
    assert chain.asked == [] and again.stats.generation_cache_hits == 1
    assert again.results[0].scores == run.results[0].scores


@pytest.mark.parametrize("answer", ["Refunds take five days.", ""])
def test_an_answer_with_nothing_to_mask_is_cached_as_given(tmp_path: Path, answer: str) -> None:
    from gates.chain import Answer

    cache = Cache(tmp_path / "gates.sqlite")
    engine = GateEngine(_pii_profile(tmp_path), tmp_path, _FakeChain, cache)
    engine.store_answers({"k": Answer(answer, contexts=("Refunds take five days.",), extra={"trace": "x"})})
    stored = cache.get_many(GENERATION_NAMESPACE, ["k"])["k"]
    assert stored["answer"] == answer and "extra" not in stored
    assert cache.get_many(MASKED_GENERATION_NAMESPACE, ["k"]) == {}
