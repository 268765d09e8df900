"""``ragate serve`` for real: a subprocess on loopback tracing into a real ``mlflow server``.

The chain is a fake (``FakeEchoChain``, written into the temporary project): it answers at
once through a two-step LangChain runnable, with contexts, sources and token counts, so
the test measures the service and its tracing, not a model. Also: feedback read back as
MLflow assessments and exported as regression cases, bad input refused with the field
named and nothing stored, and no raw personal data anywhere in the store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# mlflow_server: tests/conftest.py
from _fixtures import free_port, served_env, stop, stored_files, wait_ready

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
FAKE_CHAIN = '''
"""A fake chain for tests/test_serve.py: echoes the question, instantly."""
from langchain_core.runnables import RunnableLambda

CONTEXT = "Refunds are paid within 14 days of the request."


class FakeEchoChain:
    def __init__(self):
        retrieve = RunnableLambda(lambda q: {"question": q, "contexts": [CONTEXT]})
        generate = RunnableLambda(
            lambda s: {
                "answer": "You asked: " + s["question"],
                "contexts": s["contexts"],
                "sources": ["refunds.md"],
                "prompt_tokens": 40 + len(s["question"].split()),
                "completion_tokens": 12,
            }
        )
        self.runnable = retrieve | generate

    def invoke(self, question):
        return self.runnable.invoke(question)


def build():
    return FakeEchoChain()
'''
# Fictional personal data: must never reach the store raw.
PII = {
    "name": "Margarethe Vollenweider",
    "email": "m.vollenweider@example.org",
    "phone": "+41 44 668 18 00",
}
PII_QUESTION = f"Hi, I am {PII['name']}, mail {PII['email']} or call {PII['phone']}: when is my refund paid?"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mlflow_server: tuple[str, Path]) -> dict:
    """A team's project whose configured chain is the fake, and the environment to run in it."""
    root = tmp_path_factory.mktemp("team")
    (root / "pyproject.toml").write_text(
        '[tool.ragate]\n[tool.ragate.gates]\nchain = "fake_serve_chain:build"\n', encoding="utf-8"
    )
    (root / "fake_serve_chain.py").write_text(FAKE_CHAIN, encoding="utf-8")
    env = served_env(mlflow_server[0], root)
    return {"root": root, "env": env}


@pytest.fixture(scope="module")
def service(project: dict) -> Iterator[str]:
    """``ragate serve`` on a free loopback port, stopped afterwards."""
    port = free_port()
    log = project["root"] / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "ragate"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project["root"],
            env=project["env"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/health", process, "ragate serve", log=log)
        yield url
    finally:
        stop(process)


def _client(mlflow_url: str):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(mlflow_url)
    return MlflowClient(tracking_uri=mlflow_url)


def _trace_ids(mlflow_url: str) -> set[str]:
    import mlflow

    client = _client(mlflow_url)
    experiment = client.get_experiment_by_name("ragate-serve")
    if experiment is None:
        return set()
    traces = mlflow.search_traces(
        locations=[experiment.experiment_id], return_type="list", include_spans=False
    )
    return {t.info.trace_id for t in traces}


def _wait_for_traces(mlflow_url: str, expected: set[str], timeout: float = 120) -> set[str]:
    # The service logs traces asynchronously: they land shortly after the answers.
    deadline = time.monotonic() + timeout
    while True:
        stored = _trace_ids(mlflow_url)
        if expected <= stored or time.monotonic() > deadline:
            return stored
        time.sleep(1)


def test_health_names_the_configured_chain(service: str) -> None:
    import httpx

    health = httpx.get(f"{service}/health", timeout=10).json()
    assert health == {
        "status": "ok",
        "chain": "fake_serve_chain:build",
        "tracing": True,
        "experiment": "ragate-serve",
        "steps_traced": True,
    }


def test_200_requests_from_8_clients_are_all_answered_and_traced(
    service: str, mlflow_server: tuple[str, Path]
) -> None:
    import httpx

    before = _trace_ids(mlflow_server[0])
    questions = [f"How long does refund number {i} take?" for i in range(200)]
    answers: dict[int, dict] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(base_url=service, timeout=60) as http:
            for i in range(worker, len(questions), 8):
                try:
                    response = http.post("/ask", json={"question": questions[i]})
                    response.raise_for_status()
                    with lock:
                        answers[i] = response.json()
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{i}: {exc!r}")

    threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "the load test did not finish in 10 minutes"
    assert failures == []
    assert sorted(answers) == list(range(200))  # no request lost
    for i, body in answers.items():
        assert body["answer"] == "You asked: " + questions[i]
        assert body["sources"] == ["refunds.md"] and body["blocked"] is False
    ids = {body["trace_id"] for body in answers.values()}
    assert len(ids) == 200
    stored = _wait_for_traces(mlflow_server[0], ids)
    assert ids <= stored and len(stored - before) == 200  # every trace stored, once

    # One trace in full: the masked question, the chain's steps, token counts and latency.
    trace = _client(mlflow_server[0]).get_trace(answers[7]["trace_id"])
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert root.name == "ask" and root.inputs == {"question": questions[7]}
    assert root.outputs["contexts"] == ["Refunds are paid within 14 days of the request."]
    assert root.get_attribute("mlflow.chat.tokenUsage") == {
        "input_tokens": 47,  # 40 + the question's 7 words
        "output_tokens": 12,
        "total_tokens": 59,
    }
    assert root.get_attribute("ragate.latency_ms") >= 0
    assert len(trace.data.spans) >= 3  # ask + the runnable's two steps (+ the sequence)


def _post(service: str, path: str, **kwargs):
    import httpx

    return httpx.post(f"{service}{path}", timeout=60, **kwargs)


def test_feedback_is_recorded_on_the_trace_and_exported_masked(
    service: str, project: dict, mlflow_server: tuple[str, Path]
) -> None:
    down = _post(service, "/ask", json={"question": PII_QUESTION}).json()
    # The same question again, other case, spacing and punctuation: one regression case.
    # (The name keeps its case: the masker misses an upper-case name, see the xfail below.)
    rephrased = " " + PII_QUESTION.replace("when is", "WHEN  IS").replace("?", " ?!")
    again = _post(service, "/ask", json={"question": rephrased}).json()
    up = _post(service, "/ask", json={"question": "Can I pay by invoice?"}).json()
    rated = _post(
        service,
        "/feedback",
        json={
            "trace_id": down["trace_id"],
            "rating": "down",
            "correction": f"Please refund {PII['name']}.",
            "comment": f"wrong, write to {PII['email']}",
        },
    )
    assert rated.status_code == 200, rated.text
    assert len(rated.json()["assessment_ids"]) == 2
    assert (
        _post(service, "/feedback", json={"trace_id": again["trace_id"], "rating": "down"}).status_code == 200
    )
    assert _post(service, "/feedback", json={"trace_id": up["trace_id"], "rating": "up"}).status_code == 200

    assessments = _client(mlflow_server[0]).get_trace(down["trace_id"]).info.assessments
    by_name = {a.name: a for a in assessments}
    assert by_name["user_rating"].value is False
    assert by_name["user_rating"].source.source_type == "HUMAN"
    assert by_name["expected_response"].value == "Please refund <PERSON>."
    assert PII["email"] not in (by_name["user_rating"].rationale or "")

    export = [str(BIN / "ragate"), "feedback", "export", "--since", "1d"]
    output = project["root"] / "datasets" / "regression" / "feedback.jsonl"
    reviewed = subprocess.run(
        [*export, "--review"], cwd=project["root"], env=project["env"], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert reviewed.returncode == 0, reviewed.stderr
    assert "nothing written (add --yes" in reviewed.stdout and not output.exists()
    assert "Please refund <PERSON>." in reviewed.stdout

    written = subprocess.run(
        export, cwd=project["root"], env=project["env"], capture_output=True, text=True, timeout=300
    )
    assert written.returncode == 0, written.stderr
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1, rows  # the two phrasings of one question: one case; "up" is not a case
    row = rows[0]
    assert row["ground_truth"] == "Please refund <PERSON>."
    assert "<PERSON>" in row["question"] and "<EMAIL_ADDRESS>" in row["question"]
    assert row["tags"][:2] == ["feedback", "rating:down"]
    assert f"trace:{down['trace_id']}" in row["tags"]
    assert any(t.startswith("date:20") for t in row["tags"])

    # Exporting again adds nothing (deduplicated against the file).
    again_run = subprocess.run(
        export, cwd=project["root"], env=project["env"], capture_output=True, text=True, timeout=300
    )
    assert again_run.returncode == 0 and "nothing written" in again_run.stdout
    assert len(output.read_text(encoding="utf-8").splitlines()) == 1

    # No raw personal data anywhere the store keeps things (database and artifacts).
    _wait_for_traces(mlflow_server[0], {down["trace_id"], again["trace_id"]})
    folder = mlflow_server[1]
    stored = stored_files(folder)
    assert any(p.name == "server.db" for p in stored)
    for path, data in [*stored.items(), (output, output.read_bytes())]:
        for kind, value in PII.items():
            for form in (value, value.upper()):
                assert form.encode() not in data, f"raw {kind} in {path}"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/ask", {}, 422, "question"),
        ("/ask", {"question": "   "}, 422, "question"),
        ("/ask", {"question": "x", "user": "me"}, 422, "user"),
        ("/feedback", {"trace_id": "tr-0000000000000000000000000000dead", "rating": "down"}, 404, "trace_id"),
        ("/feedback", {"trace_id": "TRACE", "rating": "meh"}, 422, "rating"),
        ("/feedback", {"rating": "up"}, 422, "trace_id"),
        ("/ask", "not json", 400, "body"),
        ("/feedback", {"trace_id": "TRACE", "rating": "down", "comment": "x" * 17000}, 413, "body"),
        ("/ask", {"question": "y" * 20000}, 413, "body"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    service: str, mlflow_server: tuple[str, Path], path: str, body: object, status: int, field: str
) -> None:
    known = _post(service, "/ask", json={"question": "Where do I find my invoices?"}).json()["trace_id"]
    _wait_for_traces(mlflow_server[0], {known})
    before = _trace_ids(mlflow_server[0])
    if isinstance(body, dict) and body.get("trace_id") == "TRACE":
        body = {**body, "trace_id": known}  # a real trace: a bad rating must not touch it
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    response = _post(service, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["field"] == field
    assert field in error["error"] or field == "body"
    assert _trace_ids(mlflow_server[0]) == before
    assert not _client(mlflow_server[0]).get_trace(known).info.assessments


@pytest.mark.parametrize(
    "text",
    [f"Within 14 days, {PII['name']}.", PII_QUESTION.upper()],
)
def test_names_the_ner_model_misses_are_masked_before_storing(text: str) -> None:
    # A name at the end of a sentence, and one in a message written in capitals: the
    # masker's own name finder (ragate_core.pii._more_names), issue 14.
    from gates.serve import mask

    assert PII["name"].upper() not in mask(text).upper()


class FakeBrokenChain:
    """A fake chain that fails, quoting the question in its error (as real errors may)."""

    def invoke(self, question: str) -> None:
        raise ValueError("cannot answer: " + question)


def test_a_failing_chain_is_a_500_with_a_trace_and_nothing_raw_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from starlette.testclient import TestClient

    from gates.serve import create_app

    # The project's default store; set here so mlflow's export of it is undone afterwards.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / '.ragate' / 'mlflow.db'}")
    (tmp_path / ".ragate").mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.ragate]\n", encoding="utf-8")
    try:
        with TestClient(create_app(FakeBrokenChain(), root=tmp_path)) as http:
            response = http.post("/ask", json={"question": f"Mail {PII['email']} please"})
    finally:
        mlflow.tracing.configure(span_processors=[])  # the service's masking processor is global
    assert response.status_code == 500
    assert response.json()["error"] == "the chain failed: ValueError"
    trace = mlflow.get_trace(response.json()["trace_id"])
    assert trace.info.state == "ERROR"
    assert "<EMAIL_ADDRESS>" in trace.data.spans[0].attributes["ragate.error"]
    for path in (tmp_path / ".ragate").rglob("*"):
        if path.is_file():
            assert PII["email"].encode() not in path.read_bytes(), path


MONITOR_PROFILE = """\
env: prod
datasets:
  - name: golden
    path: qa.jsonl
metrics:
  toxicity: {threshold: 0.4, rules: {max_violations: 0}}
monitor:
  since: 1d
  metrics:
    toxicity: {max_drop: 0.02, max_failing_share: 0.0}
"""


MONITOR_ARGS = ("--baseline", "baseline.jsonl", "--report-dir", "monitor", "--no-tracking")


def test_monitor_reads_the_served_traces_and_stays_quiet_on_the_same_chain(
    service: str, project: dict, mlflow_server: tuple[str, Path]
) -> None:
    import httpx

    root = project["root"]
    with httpx.Client(base_url=service, timeout=60) as http:
        for i in range(10):  # traces of their own, whatever ran before
            http.post("/ask", json={"question": f"Can I change plan number {i}?"}).raise_for_status()
    golden = {"id": "g1", "question": "q?", "ground_truth": "a.", "source_ids": []}
    (root / "qa.jsonl").write_text(json.dumps(golden) + "\n", encoding="utf-8")
    (root / "monitor.yaml").write_text(MONITOR_PROFILE, encoding="utf-8")
    # The same chain's answers, logged elsewhere: the baseline.
    rows = [
        {
            "id": f"b{i}",
            "question": f"Can I change plan number {i}?",
            "answer": f"You asked: Can I change plan number {i}?",
            "contexts": [],
        }
        for i in range(30)
    ]
    (root / "baseline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    done = subprocess.run(
        [str(BIN / "ragate"), "monitor", "--profile", "monitor.yaml", "--sample", "60", *MONITOR_ARGS],
        cwd=root,
        env=project["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((root / "monitor" / "monitor-report.json").read_text())
    assert report["source"] == "experiment ragate-serve" and report["rows"] >= 10
    assert report["metrics"][0]["metric"] == "toxicity" and report["metrics"][0]["n"] >= 10
    assert report["alert"] is False
