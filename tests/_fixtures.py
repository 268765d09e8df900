"""Helpers the test modules share: processes on loopback, a tracked team project, the CLI.

``tests/conftest.py`` turns the expensive ones into fixtures (``mlflow_server``); test
modules import the plain helpers with ``from _fixtures import ...`` (pytest puts ``tests/``
on ``sys.path``, as for every test module here: no ``__init__.py`` packages).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# PYTEST_ADDOPTS of the pytest processes the tests start (tests/conftest.py): the property-
# based testing and LangSmith plugins that other packages install load on every pytest
# start (~1.1 s of a 7.5 s gate run of a fake project) and no gate run uses them.
LEAN_PYTEST = "-p no:hypothesispytest -p no:langsmith_plugin"


def served_env(tracking_uri: str, *paths: Path) -> dict[str, str]:
    """The environment for a ``ragate`` subprocess of a served-chain test: ``paths`` on
    ``PYTHONPATH``, tracking to ``tracking_uri``, every switch that stops network calls."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "NEMO_GUARDRAILS_NO_USAGE_STATS": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
    }


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    url: str, process: subprocess.Popen, what: str, timeout: float = 180, log: Path | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail the test (with ``log``'s tail) if ``process``
    exits first or ``timeout`` seconds pass."""

    def fail(why: str) -> None:
        tail = f":\n{log.read_text(errors='replace')[-2000:]}" if log is not None and log.exists() else ""
        pytest.fail(f"{what} {why}{tail}")

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            fail(f"exited with {process.returncode}")
        if time.monotonic() > deadline:
            fail(f"not ready in {timeout:.0f} s")
        time.sleep(0.25)


def stop(process: subprocess.Popen) -> None:
    """Terminate ``process`` and wait for it; kill it if it does not stop in 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class MlflowServer(NamedTuple):
    """A running ``mlflow server``: its URL and the folder holding its store and artifacts."""

    url: str
    folder: Path


@contextmanager
def mlflow_server_in(folder: Path) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on loopback (SQLite store and artifacts in ``folder``), as a
    team would run it; stopped on exit."""
    port = free_port()
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/health", server, "mlflow server")
        yield MlflowServer(url, folder)
    finally:
        stop(server)


def calibration_texts(*names: str) -> list[str]:
    """The ``text`` of every row of the named files under ``datasets/calibration``, in order."""
    texts = []
    for name in names:
        lines = (REPO / "datasets" / "calibration" / name).read_text(encoding="utf-8").splitlines()
        texts += [json.loads(line)["text"] for line in lines if line.strip()]
    return texts


def run_python(code: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter in the repository; its stdout. Fails the test
    (with the end of stderr) when it exits non-zero."""
    command = [sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def stored_files(folder: Path) -> dict[Path, bytes]:
    """Every file under ``folder`` with its bytes, as a running server keeps them.

    A file that goes away between the listing and the read is left out: SQLite's rollback
    journal (``server.db-journal``) exists only while a write is in flight, and what it held
    is in ``server.db`` once the write commits. Raises AssertionError when ``folder`` holds
    no file at all (a scan of nothing proves nothing)."""
    found: dict[Path, bytes] = {}
    for path in sorted(folder.rglob("*")):
        try:
            if path.is_file():
                found[path] = path.read_bytes()
        except FileNotFoundError:
            continue
    assert found, f"no file under {folder}"
    return found


def tracked_project(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *,
    chain_module: str,
    chain_source: str,
    rows: Sequence[dict[str, Any]],
    store: str,
    min_scored_cases: int,
    required_metrics: Sequence[str] = (),
    staging_before_champion: bool = False,
) -> pytest.Pytester:
    """A team project in ``pytester.path`` whose gates run ``chain_module:build``, tracked in
    ``store`` (an MLflow tracking URI): pyproject tables, the chain module, ``rows`` as
    ``qa.jsonl``, the latency suite; the test runs inside it (cwd and ``sys.path``).
    Profiles go under ``profiles/`` (the committed ones promotion trusts). The policy's
    ``staging_before_champion`` is off unless asked for: most tests here gate one rule."""
    pytester.makepyprojecttoml(
        f"""
        [tool.ragate]
        cache_dir = ".ragate/cache"

        [tool.ragate.gates]
        chain = "{chain_module}:build"
        profiles_dir = "profiles"

        [tool.ragate.promotion]
        min_scored_cases = {min_scored_cases}
        required_metrics = {json.dumps(list(required_metrics))}
        staging_before_champion = {str(staging_before_champion).lower()}
        """
    )
    pytester.makepyfile(**{chain_module: chain_source})
    (pytester.path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = REPO / "quality" / "test_latency.py"
    (pytester.path / "test_latency.py").write_text(suite.read_text())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(pytester.path)
    monkeypatch.syspath_prepend(str(pytester.path))
    return pytester


def ragate(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``ragate`` command in a process of its own, as a user runs it (in ``cwd``, with
    ``env``, default this process's). (In-process calls would import mlflow and sqlalchemy
    inside a test, and pytester's restore of sys.modules leaves them half-imported for the
    next test.)"""
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy() if env is None else env,
        timeout=timeout,
    )


def gate_project(
    folder: Path, module: str, chain: str, questions: dict[str, str], profile: str, **files: str
) -> Path:
    """A team's project in ``folder``: ``chain`` (source defining ``build()``) written as
    ``<module>.py`` and configured as the chain, the ``questions`` (id -> text) as
    ``qa.jsonl``, ``profile`` as ``profile.yaml`` and any other ``files`` (name -> text).
    The cache lives in ``.ragate/cache``; pytest's cache provider and deepeval's plugin are off."""
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        "[tool.ragate]\n"
        'cache_dir = ".ragate/cache"\n\n'
        "[tool.ragate.gates]\n"
        f'chain = "{module}:build"\n\n'
        "[tool.pytest.ini_options]\n"
        'addopts = "-p no:cacheprovider -p no:deepeval"\n'
    )
    (folder / f"{module}.py").write_text(chain)
    rows = [{"id": i, "question": q, "ground_truth": "x", "source_ids": ["d"]} for i, q in questions.items()]
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "profile.yaml").write_text(profile)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def run_gates(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``pytest -m gate --gate-profile=profile.yaml ARGS`` in a :func:`gate_project`, in a
    process of its own, tracking (unless ``--gate-no-track``) to the project's default store
    (``MLFLOW_TRACKING_URI`` unset), with ``env`` added to the environment."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "gate", "--gate-profile=profile.yaml", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=base | {"MLFLOW_DISABLE_TELEMETRY": "true"} | env,
        timeout=600,
    )


# The profile of the no-raw-personal-data runs: a fake metric quoting the answer
# ("quoting", defined by those tests' conftest) and the pii metric.
QUOTING_PROFILE = """
env: ci
datasets:
  - name: golden
    path: qa.jsonl
metrics:
  quoting:
    threshold: 0.5
    rules: {min_mean: 0.5, max_unscored_share: 0.0}
  pii:
    threshold: 0.5
    rules: {max_violations: 0, max_unscored_share: 0.0}
"""

# A fictional customer's personal data (a test card number, a 555 phone number) and support
# questions holding it (p1-p4) or not (p5): what ragate must never write raw.
RAW_PII = {
    "e-mail": "jane.roe@example.org",
    "card": "4111 1111 1111 1111",
    "phone": "+1 415-555-0134",
    "name": "Jane Roe",
}
PII_QUESTIONS = {
    "p1": f"My e-mail is {RAW_PII['e-mail']}, why did my invoice not arrive?",
    "p2": f"Why was my card {RAW_PII['card']} charged twice this month?",
    "p3": f"Please call me back on {RAW_PII['phone']} about my refund.",
    "p4": f"Hello, my name is {RAW_PII['name']} and I cannot log in to my account.",
    "p5": "How long do deleted files stay in the trash?",
}


# A fake chain for the tracking and promotion tests: instant answers, its version and latency
# from the environment (FAKE_VERSION, FAKE_LATENCY).
VERSIONED_FAKE_CHAIN = '''
import os


class FakeChain:
    """Answers instantly; its latency and version come from the environment."""

    def __init__(self):
        self.version = {"fake": os.environ.get("FAKE_VERSION", "1")}

    def invoke(self, question, **kwargs):
        base = float(os.environ.get("FAKE_LATENCY", "100"))
        return {"answer": "ok", "contexts": ["ok"], "latency_ms": base + len(question) % 7}


def build():
    return FakeChain()
'''


def latency_profile(env: str, max_p95: float, regression: float | None = None) -> str:
    """A profile gating latency only (``max_p95``, and ``max_regression`` when given)."""
    rules = f"max_p95: {max_p95}" + (f", max_regression: {regression}" if regression is not None else "")
    return textwrap.dedent(
        f"""
        env: {env}
        datasets:
          - name: golden
            path: qa.jsonl
        metrics:
          latency:
            threshold: 100000
            rules: {{{rules}}}
        """
    )


def latency_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **policy: Any
) -> pytest.Pytester:
    """A tracked project (:func:`tracked_project`, store ``tmp_path/mlflow.db``) of 12 questions
    answered by :data:`VERSIONED_FAKE_CHAIN`; ``policy``: more promotion settings."""
    rows = [
        {"id": f"q{i}", "question": "q" * (i + 3), "ground_truth": "ok", "source_ids": ["doc"], "tags": ["t"]}
        for i in range(12)
    ]
    return tracked_project(
        pytester,
        monkeypatch,
        chain_module="fakechain",
        chain_source=VERSIONED_FAKE_CHAIN,
        rows=rows,
        store=f"sqlite:///{tmp_path / 'mlflow.db'}",
        min_scored_cases=10,
        **policy,
    )
