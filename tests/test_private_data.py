"""Personal data never lands raw in anything ragate writes (issue 11 item 3), and the
default MLflow store keeps its artifacts inside the project wherever it moves (item 4).

One tracked gate run over a fictional dataset whose questions hold an e-mail address, a
card number, a phone number and a name; some cases fail, so pytest prints them. Then
every file the run wrote (reports, cache, the MLflow SQLite store and its artifacts) and
pytest's output are searched for the raw values. The project is then copied elsewhere and
gated again: the copy's artifacts go to the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from _fixtures import PII_QUESTIONS as QUESTIONS
from _fixtures import RAW_PII as RAW
from _fixtures import gate_project, run_gates

ROOT = Path(__file__).resolve().parents[1]


CHAIN = """
class SupportChain:
    version = {"support": "1"}

    def invoke(self, question, **kw):
        if "invoice" in question:
            # An error message that quotes the question, as a KeyError would.
            raise RuntimeError(f"no answer for {question!r}")
        slow = "card" in question or "call me" in question
        return {"answer": "We will look into it.", "contexts": ["Support answers within a day."],
                "latency_ms": 5000.0 if slow else 100.0}


def build():
    return SupportChain()
"""

PROFILE = """
env: ci
datasets:
  - name: golden
    path: qa.jsonl
metrics:
  latency:
    threshold: 1000
    rules: {max_p95: 1000}
"""


def make_project(folder: Path) -> Path:
    latency_suite = (ROOT / "quality" / "test_latency.py").read_text()
    return gate_project(
        folder, "supportchain", CHAIN, QUESTIONS, PROFILE, **{"test_latency.py": latency_suite}
    )


def gate(folder: Path) -> subprocess.CompletedProcess[str]:
    return run_gates(folder, "-rA", "--showlocals")  # tracked to the default store


def leaks(text: bytes) -> list[str]:
    found = []
    for kind, value in RAW.items():
        variants = {value, value.replace(" ", ""), value.replace("-", " ")}
        if any(v.encode() in text for v in variants):
            found.append(kind)
    return found


def written_files(folder: Path) -> list[Path]:
    """Everything the run wrote: all files but the test's own inputs."""
    inputs = {"pyproject.toml", "supportchain.py", "qa.jsonl", "profile.yaml", "test_latency.py"}
    return [
        p for p in folder.rglob("*") if p.is_file() and p.name not in inputs and "__pycache__" not in p.parts
    ]


def artifacts(folder: Path) -> set[Path]:
    base = folder / ".ragate" / "mlartifacts"
    return {p.relative_to(base) for p in base.rglob("*") if p.is_file()} if base.exists() else set()


def test_no_raw_personal_data_anywhere_and_artifacts_follow_the_project(tmp_path: Path) -> None:
    first = make_project(tmp_path / "first")
    result = gate(first)

    assert result.returncode == 1, result.stdout  # two slow cases, one failed generation
    output = (result.stdout + result.stderr).encode()
    assert "tracked as MLflow run" in result.stdout, result.stdout
    assert "<EMAIL_ADDRESS>" in result.stdout or "<EMAIL_ADDRESS>" in result.stderr  # what is shown instead
    assert leaks(output) == [], result.stdout
    files = written_files(first)
    names = {p.name for p in files}
    assert {"gate-report.json", "gate-report.md", "mlflow.db", "gates.sqlite", "cases.json"} <= names, names
    for path in files:
        assert leaks(path.read_bytes()) == [], path
    report = json.loads((first / "reports" / "gate-report.json").read_text())
    questions = {c["id"]: c["question"] for c in report["cases"]}
    assert "<CREDIT_CARD>" in questions["p2"] and "<PERSON>" in questions["p4"]
    assert questions["p5"] == QUESTIONS["p5"]  # nothing to mask, nothing changed

    # The artifacts live in the project, not in the working directory of the first run.
    before = artifacts(first)
    assert any(p.name == "cases.json" for p in before)
    assert not (first / "mlruns").exists()

    copy = tmp_path / "moved" / "copy"
    shutil.copytree(first, copy)
    again = gate(copy)
    assert again.returncode == 1
    assert "tracked as MLflow run" in again.stdout, again.stdout
    assert artifacts(first) == before  # nothing new in the original
    grown = artifacts(copy) - before
    assert any(p.name == "cases.json" for p in grown), grown
    # The first run's artifacts are read from the copy now (the store's paths were re-pointed).
    script = textwrap.dedent(
        """
        import json, mlflow
        from mlflow.tracking import MlflowClient
        uri = "sqlite:///.ragate/mlflow.db"
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("ragate-gates").experiment_id],
                                  order_by=["attributes.start_time ASC"])
        mlflow.set_tracking_uri(uri)
        local = mlflow.artifacts.download_artifacts(run_id=runs[0].info.run_id, artifact_path="cases.json")
        print(json.dumps({"uris": [r.info.artifact_uri for r in runs], "local": local}))
        """
    )
    read = subprocess.run([sys.executable, "-c", script], cwd=copy, capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    seen = json.loads(read.stdout.strip().splitlines()[-1])
    assert len(seen["uris"]) == 2
    assert all(uri.startswith((copy / ".ragate" / "mlartifacts").as_uri()) for uri in seen["uris"]), seen
