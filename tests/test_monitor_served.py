"""``ragate monitor --experiment`` end to end: answers served by ``ragate serve`` on loopback,
traced into a real ``mlflow server``, scored and compared with a better version's answers.

A team's chain in two versions (fakes, written into the temporary project; the version
is chosen by the ``TEAM_CHAIN_VERSION`` environment variable the factory reads): ``good``
answers from the document about the question; ``worse``, the planted regression, from the
wrong document (the next one in the FAQ), while reporting the right contexts. The
baseline is the better version's own run (``ragate ask --output`` over the questions).
Monitoring the good version's served traces stays quiet (exit 0); the worse version's
raises an alert (exit 1) naming ``answer_relevancy``, and the run lands in the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fixtures import free_port, served_env, stop, wait_ready  # mlflow_server: tests/conftest.py

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
FAQ = [
    ("How long does a refund take?", "Refunds are paid back to your card within 14 days."),
    ("How do I export my data?", "Open Settings, then Data, and click Export to download a CSV file."),
    ("Does the Pro plan include single sign-on?", "Yes, the Pro plan includes single sign-on with SAML."),
    ("Where can I find my invoices?", "Invoices are listed under Billing in your account."),
    ("How do I reset my password?", "Click 'Forgot password' on the sign-in page to get a reset link."),
    ("How many team members can I invite?", "The Team plan lets you invite up to 25 members."),
    ("Can I pay by bank transfer?", "Annual plans can be paid by bank transfer against an invoice."),
    ("How do I delete my account?", "Go to Settings, then Account, and choose Delete account."),
]
TEAM_CHAIN = f'''
"""A team's chain, in two versions (fakes for tests/test_monitor_served.py)."""
import os

FAQ = {FAQ!r}


class FakeFaqChain:
    def __init__(self, version):
        self.shift = 0 if version == "good" else 1  # worse: the next document's answer

    def invoke(self, question):
        index = next(i for i, (q, _) in enumerate(FAQ) if q.rstrip("?") in question)
        answer = FAQ[(index + self.shift) % len(FAQ)][1]
        return {{
            "answer": answer,
            "contexts": [FAQ[index][1]],
            "sources": [f"faq-{{index}}.md"],
            "prompt_tokens": 60,
            "completion_tokens": len(answer.split()),
        }}


def build():
    return FakeFaqChain(os.environ.get("TEAM_CHAIN_VERSION", "good"))
'''
PROFILE = """\
env: prod
datasets:
  - name: faq
    path: faq.jsonl
metrics:
  answer_relevancy: {threshold: 0.5}
monitor:
  since: 1d
  metrics:
    answer_relevancy: {max_drop: 0.1}
"""
ROUNDS = 3  # each question this many times (with a request number): 24 traces per version


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mlflow_server: tuple[str, Path]) -> dict:
    root = tmp_path_factory.mktemp("team")
    (root / "pyproject.toml").write_text(
        '[tool.ragate]\ncache_dir = ".ragate/cache"\n[tool.ragate.gates]\nchain = "team_chain:build"\n',
        encoding="utf-8",
    )
    (root / "team_chain.py").write_text(TEAM_CHAIN, encoding="utf-8")
    rows = [{"id": f"faq-{i}", "question": q, "ground_truth": a} for i, (q, a) in enumerate(FAQ)]
    (root / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "monitor.yaml").write_text(PROFILE, encoding="utf-8")
    env = served_env(mlflow_server[0], root)
    return {"root": root, "env": env}


def _run(project: dict, *args: str, version: str = "good") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ragate"), *args],
        cwd=project["root"],
        env={**project["env"], "TEAM_CHAIN_VERSION": version},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def served(project: dict) -> Iterator[dict[str, list[str]]]:
    """Both versions served at once (``ragate serve``, one experiment each) and asked every
    question ``ROUNDS`` times: the trace ids per version."""
    import httpx

    processes, urls = [], {}
    try:
        for version in ("good", "worse"):
            port = free_port()
            log = project["root"] / f"serve-{version}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(BIN / "ragate"), "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--experiment", f"team-chain-{version}"],
                    cwd=project["root"],
                    env={**project["env"], "TEAM_CHAIN_VERSION": version},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            processes.append(process)
            urls[version] = f"http://127.0.0.1:{port}"
            wait_ready(f"{urls[version]}/health", process, f"ragate serve ({version})", log=log)
        ids: dict[str, list[str]] = {}
        for version, url in urls.items():
            with httpx.Client(base_url=url, timeout=60) as http:
                ids[version] = [
                    http.post("/ask", json={"question": f"{q} (request {n})"}).json()["trace_id"]
                    for n in range(ROUNDS)
                    for q, _ in FAQ
                ]
        yield ids
    finally:
        for process in processes:
            stop(process)  # flushes the traces still queued for export


def _stored(mlflow_url: str, experiment: str) -> set[str]:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(mlflow_url)
    found = MlflowClient(tracking_uri=mlflow_url).get_experiment_by_name(experiment)
    if found is None:
        return set()
    traces = mlflow.search_traces(locations=[found.experiment_id], return_type="list", include_spans=False)
    return {t.info.trace_id for t in traces}


def _wait_stored(mlflow_url: str, experiment: str, ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not set(ids) <= _stored(mlflow_url, experiment):
        assert time.monotonic() < deadline, f"traces of {experiment} not stored in {timeout:.0f} s"
        time.sleep(1)


def test_monitor_alerts_on_the_served_worse_version_and_not_on_the_good_one(
    project: dict, served: dict[str, list[str]], mlflow_server: tuple[str, Path]
) -> None:
    root = project["root"]
    for version, ids in served.items():
        assert len(set(ids)) == ROUNDS * len(FAQ)
        _wait_stored(mlflow_server[0], f"team-chain-{version}", ids)

    # The baseline: the better version's run over the questions.
    asked = _run(project, "ask", "--input", "faq.jsonl", "--output", "baseline.jsonl")
    assert asked.returncode == 0, asked.stderr
    assert len((root / "baseline.jsonl").read_text(encoding="utf-8").splitlines()) == len(FAQ)

    common = ["monitor", "--profile", "monitor.yaml", "--baseline", "baseline.jsonl"]
    quiet = _run(project, *common, "--experiment", "team-chain-good", "--report-dir", "good")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    report = json.loads((root / "good" / "monitor-report.json").read_text())
    assert report["source"] == "experiment team-chain-good" and report["rows"] == ROUNDS * len(FAQ)
    assert report["alert"] is False

    loud = _run(project, *common, "--experiment", "team-chain-worse", "--report-dir", "worse")
    assert loud.returncode == 1, loud.stdout + loud.stderr
    assert "ragate monitor: ALERT: 1 of 1 metrics alert" in loud.stdout
    line = next(x for x in loud.stdout.splitlines() if x.startswith("answer_relevancy"))
    assert "ALERT" in line and "worse by" in line
    [drift] = json.loads((root / "worse" / "monitor-report.json").read_text())["metrics"]
    assert drift["metric"] == "answer_relevancy" and drift["alerts"][0] == "max_drop"
    assert drift["n"] == ROUNDS * len(FAQ) and drift["diff"] < -0.1 and drift["interval"][1] < 0

    # Both monitor runs are in the server, the alert as a tag.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server[0])
    experiment = client.get_experiment_by_name("ragate-monitor")
    runs = {r.data.params["source"]: r for r in client.search_runs([experiment.experiment_id])}
    assert runs["experiment team-chain-worse"].data.tags["ragate.monitor.answer_relevancy"] == "ALERT"
    assert runs["experiment team-chain-good"].data.tags["ragate.monitor.alert"] == "false"
