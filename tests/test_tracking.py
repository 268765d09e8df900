"""MLflow end to end with a temporary SQLite store: gate runs are tracked, the chain is
registered, promotion is refused on a failed gate and accepted on a passed one, rollback
moves the champion back, and the regression gate catches a planted regression.

The system under test here is the harness, so the chain is a ``FakeChain`` and the metric
is latency (no model): what is real is pytest, the plugin and MLflow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures import MlflowServer, latency_project, ragate
from _fixtures import latency_profile as _profile

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    return latency_project(pytester, monkeypatch, tmp_path)


def run_gates(project: pytest.Pytester, env: str, max_p95: float, regression: float | None = None):
    profile = project.path / "profiles" / f"{env}.yaml"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(_profile(env, max_p95, regression))
    return project.runpytest_subprocess(
        "-p", "no:deepeval", "-m", "gate", "--gate-env", env, "--gate-no-cache"
    )


def test_promotion_follows_the_gates_and_rollback_restores_the_champion(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = run_gates(project, "staging", max_p95=1.0)
    assert failed.ret == 1
    failed.stdout.fnmatch_lines(["*ragate verdict: FAIL*", "*tracked as MLflow run * (model version 1)*"])

    refused = ragate("promote", "--to", "staging")
    assert refused.returncode == 2
    assert "latency.max_p95" in refused.stderr  # the refusal names the failing gate

    passed = run_gates(project, "staging", max_p95=1000.0)
    assert passed.ret == 0, passed.stdout.str()
    promoted = ragate("promote", "--to", "staging")
    assert promoted.returncode == 0, promoted.stderr
    assert "version 1 is now @staging" in promoted.stdout
    assert ragate("promote", "--to", "champion").returncode == 2  # staging passed, prod never ran

    assert run_gates(project, "prod", max_p95=1000.0).ret == 0
    assert ragate("promote", "--to", "champion").returncode == 0

    monkeypatch.setenv("FAKE_VERSION", "2")
    assert run_gates(project, "prod", max_p95=1000.0).ret == 0
    second = ragate("promote", "--to", "champion")
    assert second.returncode == 0, second.stderr
    assert "version 2 is now @champion" in second.stdout

    back = ragate("rollback")
    assert back.returncode == 0, back.stderr
    assert "version 2 -> version 1" in back.stdout
    listing = ragate("history")
    assert listing.returncode == 0
    assert "champion" in listing.stdout and "staging" in listing.stdout


def test_regression_gate_fails_on_a_planted_regression_and_passes_unchanged(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_gates(project, "prod", max_p95=100000.0, regression=50.0).ret == 0  # no champion yet
    assert ragate("promote", "--to", "champion").returncode == 0

    unchanged = run_gates(project, "prod", max_p95=100000.0, regression=50.0)
    assert unchanged.ret == 0, unchanged.stdout.str()
    unchanged.stdout.fnmatch_lines(["*latency.max_regression*PASS*"])

    monkeypatch.setenv("FAKE_VERSION", "slower")
    monkeypatch.setenv("FAKE_LATENCY", "400")
    slower = run_gates(project, "prod", max_p95=100000.0, regression=50.0)
    assert slower.ret == 1
    slower.stdout.fnmatch_lines(["*latency.max_regression*FAIL*"])


def test_unreachable_tracking_server_still_prints_the_verdict(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    result = run_gates(project, "staging", max_p95=1000.0)
    result.stdout.fnmatch_lines(["*ragate verdict: PASS*", "*tracking failed (the verdict above stands)*"])
    assert result.ret == 0
    history = ragate("history")
    assert history.returncode == 1
    assert "cannot reach the tracking store" in history.stderr


def test_promote_without_any_gate_run_is_refused(project: pytest.Pytester) -> None:
    refused = ragate("promote", "--to", "staging")
    assert refused.returncode == 2
    assert "no registered model 'ragate-chain'" in refused.stderr


@pytest.mark.slow
def test_gate_run_is_logged_to_a_team_server_over_http(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mlflow_server: MlflowServer
) -> None:
    from mlflow.tracking import MlflowClient

    url = mlflow_server.url  # the shared fixture (tests/conftest.py): a fresh server per module
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    result = run_gates(project, "staging", max_p95=1000.0)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*tracked as MLflow run * in {url} (model version 1)*"])
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    runs = client.search_runs(
        [client.get_experiment_by_name("ragate-gates").experiment_id], "tags.`ragate.env` = 'staging'"
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["ragate.verdict"] == "PASS"
    assert run.data.metrics["latency.max_p95.n_scored"] == 12
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "gate-report.json",
        "gate-report.md",
        "gate-report.junit.xml",
        "gate-report.html",  # every file the reporters wrote is logged with the run
        "cases.json",
    }
