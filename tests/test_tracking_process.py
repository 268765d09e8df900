"""The tracking child process (gates.tracking.TrackingProcess): it logs the run it is handed
into the project's real SQLite MLflow store, a child that died leaves the run to be tracked
in the calling process, and a run that ends without a verdict leaves no store behind.

Whole gate runs tracked through the child are tests/test_tracking.py and
tests/test_promotion.py (the plugin always tracks through it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.results import GateReport
from gates.tracking import TrackingError, TrackingProcess


def _report() -> GateReport:
    return GateReport(env="ci", chain_version={"fake": "1"}, created="2026-11-30T00:00:00Z")


def _runs(root: Path) -> list[str]:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / '.ragate' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("ragate-gates")
    return [r.info.run_id for r in client.search_runs([experiment.experiment_id])] if experiment else []


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '0'\n", encoding="utf-8")
    return tmp_path


def test_the_child_logs_the_run_into_the_project_store(root: Path) -> None:
    tracker = TrackingProcess(root)
    run = tracker.track(_report(), [])
    assert run.uri.startswith("sqlite:///") and str(root) in run.uri
    assert _runs(root) == [run.run_id]


def test_a_dead_child_leaves_the_run_to_this_process(root: Path) -> None:
    tracker = TrackingProcess(root)
    assert tracker._process is not None
    tracker._process.kill()
    tracker._process.wait()
    run = tracker.track(_report(), [])
    assert _runs(root) == [run.run_id]


def test_a_run_that_stopped_before_the_chain_was_known_registers_no_model_version(root: Path) -> None:
    """An interrupted or refused run is recorded, but makes no model version (the tester's
    Ctrl-C left a version with no chain fields in `ragate history` for good)."""
    tracker = TrackingProcess(root)
    stopped = GateReport(env="ci", chain_version={}, created="2026-11-30T00:00:00Z")
    run = tracker.track(stopped, [])
    assert _runs(root) == [run.run_id]
    assert run.model_version == ""


def test_an_error_in_the_child_is_raised_here(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    tracker = TrackingProcess(root)
    with pytest.raises(TrackingError, match=r"127\.0\.0\.1:9"):
        tracker.track(_report(), [])


def test_closing_without_a_run_writes_no_store(root: Path) -> None:
    tracker = TrackingProcess(root)
    process = tracker._process
    tracker.close()
    assert process is not None and process.poll() is not None
    assert not (root / ".ragate" / "mlflow.db").exists()
