"""A gate that cannot be fooled (issue 11): the project is found from its configuration,
never from where an option's path points; a run that reaches no verdict never leaves an
earlier PASS in place; bad input stops the run with one message and pytest's usage exit
code (4), never a traceback per item.

Each run is a pytest subprocess over a tiny project whose chain is a fake defined here
(the harness is under test, not a model); the metric is latency (no model either).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
FAST = ("-p", "no:deepeval", "-p", "no:langsmith_plugin", "-p", "no:hypothesispytest", "--gate-no-track")

FAKE_CHAIN = '''
import json
import time
from pathlib import Path

HERE = Path(__file__).parent


class FakeChain:
    """Answers from settings.json; "mode" makes it stall or be interrupted."""

    def __init__(self):
        self.settings = json.loads((HERE / "settings.json").read_text())
        self.version = {"fake": "1"}

    def invoke(self, question, **kw):
        with open(HERE / "calls.txt", "a", encoding="utf-8") as f:
            f.write(question + "\\n")
        mode = self.settings.get("mode")
        if mode == "stall":
            time.sleep(60)
        if mode == "interrupt":
            raise KeyboardInterrupt
        return {"answer": "Yes.", "contexts": ["Yes."], "latency_ms": 100.0 + len(question) % 7}


def build():
    return FakeChain()
'''

QUESTIONS = ["How much is the Pro plan?", "How long is the trial?", "Is SSO included?"]


class Project:
    """A ragate project in ``pytester.path`` whose chain is ``fakechain:build``."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        pytester.makepyprojecttoml(
            """
            [tool.ragate]
            cache_dir = ".ragate/cache"

            [tool.ragate.gates]
            chain = "fakechain:build"

            [tool.pytest.ini_options]
            addopts = "-p no:cacheprovider"
            asyncio_default_fixture_loop_scope = "function"
            """
        )
        pytester.makepyfile(fakechain=FAKE_CHAIN)
        self.settings()
        self.dataset([{"id": f"q{i}", "question": q} for i, q in enumerate(QUESTIONS, 1)])
        (self.path / "test_latency.py").write_text((ROOT / "quality" / "test_latency.py").read_text())
        self.profile()

    def settings(self, **values: Any) -> None:
        (self.path / "settings.json").write_text(json.dumps(values))

    def dataset(self, rows: list[dict[str, Any] | str], name: str = "qa.jsonl") -> Path:
        lines = []
        for row in rows:
            if isinstance(row, dict):
                row = json.dumps({"ground_truth": "yes", "source_ids": ["doc"], "tags": ["t"], **row})
            lines.append(row + "\n")
        path = self.path / name
        path.write_text("".join(lines))
        return path

    def profile(self, where: Path | None = None, **metrics: Any) -> Path:
        data = {
            "env": "ci",
            "datasets": [{"name": "golden", "path": "qa.jsonl"}],
            "metrics": metrics or {"latency": {"threshold": 1000, "rules": {"max_p95": 500}}},
        }
        path = where or self.path / "profile.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*FAST, "-m", "gate", *args, timeout=240)

    def calls(self) -> int:
        path = self.path / "calls.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def report(self, folder: Path | None = None) -> dict[str, Any] | None:
        path = (folder or self.path / "reports") / "gate-report.json"
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    for key in list(os.environ):
        if key.startswith("RAGATE_"):
            monkeypatch.delenv(key)
    return Project(pytester)


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the project, holding no configuration."""
    return tmp_path_factory.mktemp("outside")


def no_traceback(result: pytest.RunResult) -> None:
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "_pytest/" not in text, text


# --- 1. the project comes from the configuration, not from an option's path ------------------


def test_a_profile_outside_the_project_in_the_space_form_is_refused(project: Project, outside: Path) -> None:
    profile = project.profile(outside / "p.yaml")

    result = project.run("--gate-profile", str(profile))

    # pytest took the path for a test path and rooted the run outside: refused, not gated elsewhere.
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    # (pytester's own --basetemp path also counts: the rootdir is their common folder.)
    result.stderr.fnmatch_lines([f"*pytest chose * as its rootdir*ragate project here is {project.path}:*"])
    result.stderr.fnmatch_lines(["*--gate-profile=PATH*"])
    assert project.calls() == 0
    no_traceback(result)


def test_a_profile_outside_the_project_in_the_equals_form_gates_the_configured_chain(
    project: Project, outside: Path
) -> None:
    profile = project.profile(outside / "p.yaml")

    result = project.run(f"--gate-profile={profile}")

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert project.calls() == 3  # the project's fakechain, not ragate's default chain
    assert (project.path / ".ragate" / "cache" / "gates.sqlite").is_file()  # the project's cache
    assert not (outside / ".ragate").exists()
    assert project.report()["chain_version"]["factory"] == "fakechain:build"


def test_a_report_folder_outside_the_project_in_the_space_form_is_refused(
    project: Project, outside: Path
) -> None:
    result = project.run("--gate-profile=profile.yaml", "--gate-report", str(outside))

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*pytest chose * as its rootdir*here is {project.path}:*--gate-report=DIR*"]
    )
    assert project.calls() == 0
    # No verdict: the report written there says FAIL.
    assert project.report(outside)["passed"] is False


def test_a_report_folder_outside_the_project_in_the_equals_form_works(
    project: Project, outside: Path
) -> None:
    result = project.run("--gate-profile=profile.yaml", f"--gate-report={outside}")

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert project.report(outside)["passed"] is True
    assert project.calls() == 3


# --- 5. no stale PASS -------------------------------------------------------------------------


@pytest.fixture
def passed_before(project: Project) -> Project:
    assert project.run("--gate-profile=profile.yaml").ret == pytest.ExitCode.OK
    assert project.report()["passed"] is True
    return project


def test_a_usage_error_replaces_an_earlier_pass_with_a_fail(passed_before: Project) -> None:
    project = passed_before
    project.profile(latency={"threshold": 1000, "rules": {"max_p96": 500}})

    result = project.run("--gate-profile=profile.yaml")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    report = project.report()
    assert report["passed"] is False and report["gates"] == []
    assert "FAIL" in (project.path / "reports" / "gate-report.md").read_text()


def test_a_collection_error_replaces_an_earlier_pass_with_a_fail(passed_before: Project) -> None:
    project = passed_before
    (project.path / "test_broken.py").write_text("import pytest\npytestmark = pytest.mark.gate\ndef (:\n")

    result = project.run("--gate-profile=profile.yaml")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert project.report()["passed"] is False


def test_an_interrupted_run_replaces_an_earlier_pass_with_a_fail(passed_before: Project) -> None:
    project = passed_before
    project.settings(mode="interrupt")

    result = project.run("--gate-profile=profile.yaml", "--gate-no-cache")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert project.report()["passed"] is False


def _start(project: Project) -> subprocess.Popen[bytes]:
    project.settings(mode="stall")
    before = project.calls()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            *FAST,
            "-m",
            "gate",
            "--gate-profile=profile.yaml",
            "--gate-no-cache",
        ],
        cwd=project.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while project.calls() == before:  # the chain has been called: the run is under way
        assert process.poll() is None and time.monotonic() < deadline, "the run did not start"
        time.sleep(0.2)
    return process


def test_sigterm_replaces_an_earlier_pass_with_a_fail(passed_before: Project) -> None:
    process = _start(passed_before)
    process.send_signal(signal.SIGTERM)
    try:
        # The FAIL report comes at once; the process itself exits when the chain call under
        # way in a worker thread returns.
        deadline = time.monotonic() + 120
        while (passed_before.report() or {}).get("passed") is not False:
            assert time.monotonic() < deadline, f"no FAIL report: {passed_before.report()}"
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert passed_before.report()["stopped"]


def test_sigkill_leaves_no_earlier_pass_behind(passed_before: Project) -> None:
    process = _start(passed_before)
    process.kill()
    process.wait(timeout=30)

    # Nothing can run after SIGKILL: the previous report was removed when the run started.
    assert passed_before.report() is None


def test_collect_only_keeps_the_previous_report(passed_before: Project) -> None:
    assert passed_before.run("--gate-profile=profile.yaml", "--collect-only").ret == pytest.ExitCode.OK
    assert passed_before.report()["passed"] is True


# --- 7. bad input: exit 4 and one message ------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "q1", "question": "Again?"}, "qa.jsonl:4: duplicate id 'q1' (first on line 1)"),
        ({"id": "q4", "question": "Bad?", "colour": "red"}, "qa.jsonl:4: unknown field 'colour' (a row's *"),
        ('{"id": "q4", "question": ', "qa.jsonl:4: not valid JSON*"),
    ],
    ids=["duplicate id", "unknown field", "broken JSON"],
)
def test_a_bad_dataset_row_is_one_usage_error_naming_file_and_line(
    project: Project, row: dict[str, Any] | str, message: str
) -> None:
    project.dataset([{"id": f"q{i}", "question": q} for i, q in enumerate(QUESTIONS, 1)] + [row])

    result = project.run("--gate-profile=profile.yaml")

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([f"ERROR: *{message}"])
    assert result.stderr.str().count("qa.jsonl:4") == 1
    no_traceback(result)
    assert project.calls() == 0


def test_an_llm_judge_without_a_judge_is_one_usage_error_naming_the_key(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith(("RAGATE_JUDGE", "OPENAI_")):
            monkeypatch.delenv(key)
    (project.path / "test_faithfulness.py").write_text(
        (ROOT / "quality" / "test_faithfulness.py").read_text()
    )
    project.profile(
        faithfulness={"threshold": 0.5, "judge": "llm", "rules": {"min_mean": 0.5}},
        latency={"threshold": 1000, "rules": {"max_p95": 500}},
    )

    result = project.run("--gate-profile=profile.yaml")

    # Found at start with the rest of the profile: no case answered, no run tracked.
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    err = result.stderr.str()
    assert err.count("metrics.faithfulness.judge: 'llm' needs a judge") == 1, err
    no_traceback(result)
    assert "Exit:" not in result.stdout.str() + err
    assert project.calls() == 0
    assert project.report()["passed"] is False


def test_a_damaged_cache_is_one_usage_error_saying_what_to_do(project: Project) -> None:
    cache = project.path / ".ragate" / "cache" / "gates.sqlite"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"this is not a database" * 100)

    result = project.run("--gate-profile=profile.yaml")

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    out = result.stdout.str()
    assert out.count(f"{cache}: the gate cache is unreadable") == 1, out
    result.stdout.fnmatch_lines(["*Exit: ragate: a usage error stopped the gate run*"])
    assert "delete that file" in out and "--gate-no-cache" in out
    assert "sqlite3.DatabaseError" not in out
    no_traceback(result)
    # The way out it names works.
    assert project.run("--gate-profile=profile.yaml", "--gate-no-cache").ret == pytest.ExitCode.OK


def test_a_negative_latency_threshold_is_refused_naming_the_key(project: Project) -> None:
    project.profile(latency={"threshold": -5, "rules": {"max_p95": 500}})

    result = project.run("--gate-profile=profile.yaml")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *profile.yaml: metrics.latency.threshold: -5* is negative*"])


def test_a_made_up_environment_is_refused(project: Project) -> None:
    path = project.profile()
    path.write_text(path.read_text().replace("env: ci", "env: qa"))

    result = project.run("--gate-profile=profile.yaml")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *profile.yaml: invalid gate profile:*", "*env: *'qa'*"])


# --- what held stays tested: concurrency, no outbound connection -------------------------------


def _case_scores(report: dict[str, Any]) -> dict[str, Any]:
    return {c["id"]: c["scores"] for c in report["cases"]}


def test_xdist_and_two_concurrent_runs_agree_with_a_serial_run(project: Project) -> None:
    serial = project.run("--gate-profile=profile.yaml", "--gate-report=serial")
    assert serial.ret == pytest.ExitCode.OK, serial.stdout.str()
    expected = project.report(project.path / "serial")

    # Two runs at once on one cache, then the same under pytest-xdist: the same verdict and scores.
    command = [sys.executable, "-m", "pytest", *FAST, "-m", "gate", "--gate-profile=profile.yaml"]
    runs = [
        subprocess.Popen([*command, f"--gate-report=concurrent{i}"], cwd=project.path, stdout=subprocess.PIPE)
        for i in (1, 2)
    ]
    assert [p.wait(timeout=600) for p in runs] == [0, 0]
    xdist = project.run("--gate-profile=profile.yaml", "--gate-report=xdist", "-n", "2")
    assert xdist.ret == pytest.ExitCode.OK, xdist.stdout.str()

    for folder in ("concurrent1", "concurrent2", "xdist"):
        report = project.report(project.path / folder)
        assert report["passed"] is True
        assert _case_scores(report) == _case_scores(expected), folder
        assert [g["observed"] for g in report["gates"]] == [g["observed"] for g in expected["gates"]]


GUARD = """
import socket

_connect = socket.socket.connect


def _refuse(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        with open("connections.txt", "a") as f:
            f.write(repr(address) + "\\n")
        raise OSError(f"outbound connection attempted: {address!r}")
    return _connect(self, address)


socket.socket.connect = _refuse
"""


def test_a_gate_run_opens_no_network_connection_even_without_the_offline_variables(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in (
        "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DEEPEVAL_TELEMETRY_OPT_OUT", "MLFLOW_DISABLE_TELEMETRY",
        "NEMO_GUARDRAILS_NO_USAGE_STATS", "ANONYMIZED_TELEMETRY", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS",
    ):  # fmt: skip
        monkeypatch.delenv(key, raising=False)
    (project.path / "conftest.py").write_text(GUARD)
    # An e-mail address to mask: presidio's check of its domain must not fetch a suffix list.
    project.dataset([{"id": "q1", "question": "Is ops@tasklane.example on the Pro plan?"}])

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    # Tracked too, into the project's own MLflow store.
    result = project.pytester.runpytest_subprocess(
        "-p", "no:deepeval", "-m", "gate", "--gate-profile=profile.yaml", timeout=600
    )

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*tracked as MLflow run*"])
    connections = project.path / "connections.txt"
    assert not connections.exists(), connections.read_text()
