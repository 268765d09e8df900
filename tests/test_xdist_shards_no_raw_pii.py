"""The share files xdist workers hand each other hold no raw personal data (issue 13 item 3).

Under ``pytest -m gate -n 2`` each worker writes its share of the run to
``shard-<i>.json`` in a temporary folder that the others read. A chain that echoes the
customer's message (a fake, named as such) answers a fictional dataset whose questions hold
an e-mail address, a card number, a phone number and a name, and a fake metric quotes the
answer in its reason and details. The project's conftest copies the share folder when the
controller finishes (before the plugin removes it): none of the four values is in any file
of it, and the report equals the one of a run without xdist (the same masked answers and
reasons, the same scores and verdict). Each worker also records where its time went.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from _fixtures import PII_QUESTIONS as QUESTIONS
from _fixtures import QUOTING_PROFILE, gate_project
from _fixtures import RAW_PII as RAW

CHAIN = """
class FakeEchoChain:
    \"\"\"A fake chain for a test: it repeats the customer's message in its answer.\"\"\"

    version = {"fake-echo": "1"}

    def invoke(self, question, **kw):
        return {"answer": f"Thanks for writing. You said: {question}",
                "contexts": ["Support answers every message within one working day."],
                "latency_ms": 100.0, "extra": {"raw": question}}


def build():
    return FakeEchoChain()
"""

# A fake metric that quotes the answer in its reason and details (as real reasons do), and
# a hook that keeps a copy of the share folder when the controller finishes.
CONFTEST = """
import shutil
import tempfile
from pathlib import Path

from gates.metrics.base import register, score_each


class FakeQuotingMetric:
    name = "quoting"
    version = "1"
    direction = "higher_is_better"
    default_threshold = 0.5

    def reads(self, case):
        return {"answer": case.answer}

    def score_batch(self, cases):
        return score_each(self, cases, lambda c: (1.0, f"quoted '{c.answer}'", {"quote": [c.answer]}))


register("quoting")(FakeQuotingMetric)


def pytest_sessionfinish(session):
    if hasattr(session.config, "workerinput"):
        return
    for folder in Path(tempfile.gettempdir()).glob("ragate-shards-*"):
        shutil.copytree(folder, Path(str(session.config.rootpath)) / "kept-shards" / folder.name)
"""

PROFILE = QUOTING_PROFILE


def leaks(blob: bytes) -> list[str]:
    found = []
    for kind, value in RAW.items():
        for variant in {value, value.replace(" ", ""), value.replace("-", " ")}:
            if variant.encode() in blob or variant.encode("utf-16-le") in blob:
                found.append(kind)
                break
    return found


def gate(folder: Path, report: str, *args: str) -> subprocess.CompletedProcess[str]:
    tmp = folder / "tmp"
    tmp.mkdir(exist_ok=True)
    env = os.environ | {"TMPDIR": str(tmp)}  # the share folder lands where the conftest looks
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gate", "--gate-profile=profile.yaml", "--gate-no-track",
         f"--gate-report={report}", "-p", "no:langsmith_plugin", *args],
        cwd=folder, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip


def cases(folder: Path, report: str) -> tuple[bool, list[dict[str, Any]], dict[str, Any]]:
    data = json.loads((folder / report / "gate-report.json").read_text())
    keep = ("id", "question", "answer", "scores", "reasons")
    return data["passed"], [{k: c[k] for k in keep} for c in data["cases"]], data["stats"]


def test_share_files_hold_no_raw_personal_data_and_the_report_is_the_serial_one(tmp_path: Path) -> None:
    project = gate_project(
        tmp_path / "project",
        "fakeecho",
        CHAIN,
        QUESTIONS,
        PROFILE,
        **{
            "conftest.py": CONFTEST,
            "test_quoting.py": 'from gates.suite import *  # noqa: F403\n\nMETRIC = "quoting"\n',
            "test_pii.py": 'from gates.suite import *  # noqa: F403\n\nMETRIC = "pii"\n',
        },
    )
    serial = gate(project, "serial", "--gate-no-cache")
    assert serial.returncode == 1, serial.stdout + serial.stderr  # the pii gate fails: the chain leaks

    for run, args in (("nocache", ("--gate-no-cache",)), ("cached", ())):
        sharded = gate(project, run, "-n", "2", *args)
        assert sharded.returncode == 1, sharded.stdout + sharded.stderr
        assert leaks((sharded.stdout + sharded.stderr).encode()) == []

        kept = list((project / "kept-shards").glob("ragate-shards-*"))
        assert len(kept) == 1, (kept, sharded.stdout[-3000:], sharded.stderr[-3000:])
        files = sorted(p.name for p in kept[0].iterdir())
        assert {"shard-0.json", "shard-1.json", "worker-0.json", "worker-1.json"} <= set(files), files
        shared = [p for p in kept[0].iterdir() if p.suffix == ".json"]
        for path in shared:
            assert leaks(path.read_bytes()) == [], (path.name, path.read_text())
        states = [s for p in kept[0].glob("shard-*.json") for s in json.loads(p.read_text())["results"]]
        masked = {s["id"] for s in states if s["answer_sha256"]}
        assert masked == {"p1", "p2", "p3", "p4"}, states  # p5 holds nothing personal: as given
        assert all("extra" not in s["answer"] for s in states)

        # What every worker shows of the masked answers is what the serial run shows.
        passed, shown, stats = cases(project, run)
        assert (passed, shown) == cases(project, "serial")[:2], run
        workers = stats["xdist_workers"]
        assert [w["worker"] for w in workers] == [0, 1]
        assert sum(w["cases"] for w in workers) == len(QUESTIONS)
        assert all(w["work_seconds"] > 0 and w["share_wait_seconds"] >= 0 for w in workers)
        for path in (project / run).rglob("*"):
            if path.is_file():
                assert leaks(path.read_bytes()) == [], path
        for old in kept:
            import shutil

            shutil.rmtree(old)
