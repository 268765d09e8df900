"""Gate runs under pytest-xdist parallelise (issue 13 item 3): each worker answers and scores
its share of the cases (a stable hash of the case id), the workers exchange their results,
and the verdict and every per-case score are those of a run without xdist.

The chain is a fake defined here (the harness is under test, not a model): it sleeps a
little per question and logs which process answered what, and when.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates.engine import Case, split_shares

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
FAST = ("-p", "no:deepeval", "-p", "no:langsmith_plugin", "-p", "no:hypothesispytest", "--gate-no-track")

FAKE_SLOW_CHAIN = '''
import json
import os
import time
from pathlib import Path

HERE = Path(__file__).parent


class FakeSlowChain:
    """Answers every question after a short sleep; logs pid, question, start and end."""

    version = {"fake": "slow-1"}

    def invoke(self, question, **kw):
        start = time.time()
        time.sleep(0.3)
        end = time.time()
        with open(HERE / "calls.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"pid": os.getpid(), "q": question, "start": start, "end": end}) + "\\n")
        # A recorded latency above the call's own 0.3 s, so the gate reads this one.
        return {"answer": "Yes.", "contexts": ["Yes."], "latency_ms": 1000.0 + int(question.split()[3])}


def build():
    return FakeSlowChain()
'''

QUESTIONS = [f"Is feature number {i} part of the Pro plan?" for i in range(1, 13)]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml(
        """
        [tool.ragate]
        cache_dir = ".ragate/cache"

        [tool.ragate.gates]
        chain = "fakeslowchain:build"

        [tool.pytest.ini_options]
        addopts = "-p no:cacheprovider"
        asyncio_default_fixture_loop_scope = "function"
        """
    )
    pytester.makepyfile(fakeslowchain=FAKE_SLOW_CHAIN)
    rows = [
        {"id": f"q{i:02d}", "question": q, "ground_truth": "yes", "source_ids": ["doc"], "tags": ["t"]}
        for i, q in enumerate(QUESTIONS, 1)
    ]
    (pytester.path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (pytester.path / "test_latency.py").write_text((ROOT / "quality" / "test_latency.py").read_text())
    profile = {
        "env": "ci",
        "datasets": [{"name": "golden", "path": "qa.jsonl"}],
        # 1001..1012 ms: cases q07..q12 fail their threshold, and the p95 (1011.45) fails the gate.
        "metrics": {"latency": {"threshold": 1006, "rules": {"max_p95": 1010}}},
    }
    (pytester.path / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *FAST, "-m", "gate", "--gate-profile=profile.yaml", *args, timeout=600
    )


def _calls(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    path = pytester.path / "calls.jsonl"
    calls = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return calls


def _report(pytester: pytest.Pytester, folder: str) -> dict[str, Any]:
    return json.loads((pytester.path / folder / "gate-report.json").read_text())


def test_each_worker_answers_its_share_and_the_verdict_is_the_serial_one(project: pytest.Pytester) -> None:
    serial = _run(project, "--gate-report=serial", "--gate-no-cache")
    assert serial.ret == pytest.ExitCode.TESTS_FAILED, serial.stdout.str()  # p95 above 1010 ms
    assert sorted(c["q"] for c in _calls(project)) == sorted(QUESTIONS)

    sharded = _run(project, "--gate-report=sharded", "--gate-no-cache", "-n", "2")

    assert sharded.ret == serial.ret, sharded.stdout.str()
    calls = _calls(project)
    # Every question answered exactly once, by the worker whose share it is.
    assert sorted(c["q"] for c in calls) == sorted(QUESTIONS)
    by_pid: dict[int, set[str]] = {}
    for call in calls:
        by_pid.setdefault(call["pid"], set()).add(call["q"])
    text = dict(zip((f"q{i:02d}" for i in range(1, len(QUESTIONS) + 1)), QUESTIONS))
    split = split_shares([_case(f"q{i:02d}") for i in range(1, len(QUESTIONS) + 1)], 2)
    shares = {index: {text[c.id] for c in members} for index, members in enumerate(split)}
    assert sorted(map(len, shares.values())) == [6, 6], shares  # twelve ids, six each
    assert sorted(map(sorted, by_pid.values())) == sorted(map(sorted, shares.values()))
    # Side by side, not one after the other behind a lock.
    (first, second) = ([c for c in calls if c["pid"] == pid] for pid in by_pid)
    assert min(c["end"] for c in first) > min(c["start"] for c in second)
    assert min(c["end"] for c in second) > min(c["start"] for c in first)

    expected, got = _report(project, "serial"), _report(project, "sharded")
    assert got["passed"] == expected["passed"] is False
    assert {c["id"]: c["scores"] for c in got["cases"]} == {c["id"]: c["scores"] for c in expected["cases"]}
    assert [(g["name"], g["observed"], g["passed"]) for g in got["gates"]] == [
        (g["name"], g["observed"], g["passed"]) for g in expected["gates"]
    ]


def test_a_warm_sharded_run_calls_no_model(project: pytest.Pytester) -> None:
    assert _run(project, "--gate-report=first", "-n", "2").ret == pytest.ExitCode.TESTS_FAILED
    assert len(_calls(project)) == len(QUESTIONS)

    again = _run(project, "--gate-report=again", "-n", "2")

    assert again.ret == pytest.ExitCode.TESTS_FAILED
    assert _calls(project) == []
    first, second = _report(project, "first"), _report(project, "again")
    assert {c["id"]: c["scores"] for c in second["cases"]} == {c["id"]: c["scores"] for c in first["cases"]}


def _case(case_id: str) -> Case:
    return Case(case_id, case_id, "golden", "?", ("latency",))


def test_shares_are_even_stable_and_keep_repeats_together() -> None:
    # Repeated samples of one case stay in one share; the split does not depend on the order;
    # shares differ in size by at most one dataset id.
    cases = [_case(f"q{i:02d}") for i in range(1, 23)]
    repeat = Case("q01#r2", "q01", "golden", "?", ("latency",), repeat=1)
    split = split_shares([*cases, repeat], 2)
    assert sorted(len({c.base_id for c in m}) for m in split) == [11, 11]
    assert [c.id for c in split[0] + split[1]].count("q01#r2") == 1
    assert next(i for i, m in enumerate(split) if repeat in m) == next(
        i for i, m in enumerate(split) if any(c.id == "q01" for c in m)
    )
    backwards = split_shares(list(reversed(cases)), 2)
    assert [sorted(c.id for c in m) for m in backwards] == [
        sorted(c.id for c in m if c.repeat == 0) for m in split
    ]
    assert [len(m) for m in split_shares([_case(f"q{i:02d}") for i in range(1, 41)], 4)] == [10, 10, 10, 10]
