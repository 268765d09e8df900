"""``ragate monitor`` on traces files, with the rules of a profile's ``monitor:`` section:
quiet on an unchanged chain, an alert on a planted worse version, exit 2 (never "no drift")
when the window holds no traces; JSON, Markdown and HTML reports and an MLflow run."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
POLITE = [
    "Refunds are paid within 14 days of the request.",
    "You can export your data from the settings page.",
    "The Pro plan includes single sign-on.",
    "Invoices are listed under billing in your account.",
]
RUDE = [
    "Read the damn manual, you idiot.",
    "Stop asking stupid questions, moron.",
]
PROFILE = """\
env: prod
datasets:
  - name: golden
    path: qa.jsonl
metrics:
  toxicity:
    threshold: 0.4
    rules: {max_violations: 0}
monitor:
  since: 2d
  metrics:
    latency: {max_drop: 0.25, threshold: 2000}
    toxicity: {max_drop: 0.02, max_failing_share: 0.05}
"""
GOLDEN = json.dumps(
    {"id": "g1", "question": "When are refunds paid?", "ground_truth": "In 14 days.", "source_ids": ["r"]}
)


def traces(path: Path, seed: int, *, slow: float = 1.0, rude_every: int = 0, days_ago: float = 0.1) -> Path:
    """Rows of ``ragate ask --output`` with timestamps over two days: a chain version's answers."""
    rng = random.Random(seed)
    anchor = datetime.now(tz=UTC) - timedelta(days=days_ago)
    if (anchor - timedelta(minutes=40)).date() != anchor.date():
        anchor -= timedelta(hours=1)  # the 40 minutes of rows on one side of midnight: two days, never three
    rows = []
    for i in range(40):
        rude = rude_every and i % rude_every == 0
        rows.append(
            {
                "id": f"t{seed}-{i}",
                "question": f"Question {i} about my account?",
                "answer": rng.choice(RUDE if rude else POLITE),
                "contexts": [POLITE[0]],
                "sources": ["refunds"],
                "latency_ms": rng.uniform(800, 1200) * slow,
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "blocked": False,
                "rail": None,
                # Half today, half a day earlier: two points on every time series.
                "timestamp": (anchor - timedelta(days=i % 2, minutes=i)).isoformat(),
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def monitor(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [str(BIN / "ragate"), "monitor", "--profile", "monitor.yaml", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.ragate]\ncache_dir = "cache"\n', encoding="utf-8")
    (tmp_path / "qa.jsonl").write_text(GOLDEN + "\n", encoding="utf-8")
    (tmp_path / "monitor.yaml").write_text(PROFILE, encoding="utf-8")
    return tmp_path


def test_unchanged_is_quiet_and_a_worse_version_alerts(root: Path) -> None:
    baseline = traces(root / "baseline.jsonl", seed=1)
    same = traces(root / "same.jsonl", seed=2)
    worse = traces(root / "worse.jsonl", seed=3, slow=1.6, rude_every=4)

    quiet = monitor(
        root, "--traces", str(same), "--baseline", str(baseline), "--report-dir", "q", "--no-tracking"
    )
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    report = json.loads((root / "q" / "monitor-report.json").read_text())
    assert report["alert"] is False and report["rows"] == 40
    assert [m["metric"] for m in report["metrics"]] == ["latency", "toxicity"]
    assert all(len(m["per_day"]) == 2 for m in report["metrics"])
    for m in report["metrics"]:  # per day: the difference from the baseline and its interval
        assert m["per_day_diff"].keys() == m["per_day"].keys() == m["per_day_interval"].keys()
        for day, (low, high) in m["per_day_interval"].items():
            assert low <= m["per_day_diff"][day] <= high
    latency = report["metrics"][0]
    assert latency["unit"] == "ms" and latency["threshold"] == 2000  # from monitor.metrics.latency
    assert report["metrics"][1]["threshold"] == 0.4  # from metrics.toxicity
    assert "no alert: 0 of 2 metrics alert" in quiet.stdout

    loud = monitor(
        root, "--traces", str(worse), "--baseline", str(baseline), "--report-dir", "w", "--no-tracking"
    )
    assert loud.returncode == 1, loud.stdout + loud.stderr
    alerts = {m["metric"]: m for m in json.loads((root / "w" / "monitor-report.json").read_text())["metrics"]}
    assert alerts["latency"]["alerts"] == ["max_drop"] and alerts["latency"]["diff"] > 0
    assert alerts["latency"]["interval"][0] > 0  # the whole interval on the worse side
    assert "max_failing_share" in alerts["toxicity"]["alerts"] and alerts["toxicity"]["failing_share"] > 0.1
    assert "ALERT" in loud.stdout
    markdown = (root / "w" / "monitor-report.md").read_text()
    assert "ALERT on 2 of 2 metrics" in markdown and "| latency | ms |" in markdown


def test_no_traces_in_the_window_is_a_usage_error_not_no_drift(root: Path) -> None:
    old = traces(root / "old.jsonl", seed=4, days_ago=3)
    result = monitor(root, "--traces", str(old), "--since", "1d", "--baseline", str(old), "--no-tracking")
    assert result.returncode == 2
    assert "no traces in" in result.stderr and "nothing to monitor" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_profile_without_a_monitor_section_is_a_usage_error(root: Path) -> None:
    (root / "bare.yaml").write_text(PROFILE.split("monitor:")[0], encoding="utf-8")
    same = traces(root / "same.jsonl", seed=2)
    result = subprocess.run(
        [str(BIN / "ragate"), "monitor", "--profile", "bare.yaml", "--traces", str(same)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "no monitor: section" in result.stderr


def test_each_run_is_an_mlflow_run_with_the_reports_as_artifacts(root: Path) -> None:
    baseline = traces(root / "baseline.jsonl", seed=1)
    worse = traces(root / "worse.jsonl", seed=3, slow=1.6, rude_every=4)
    result = monitor(root, "--traces", str(worse), "--baseline", str(baseline), "--report-dir", "r")
    assert result.returncode == 1, result.stdout + result.stderr

    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / '.ragate' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ragate-monitor")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.params["rule.latency.max_drop"] == "0.25"
    assert run.data.params["source"] == str(worse)
    assert run.data.metrics["alert"] == 1.0 and run.data.metrics["latency.alert"] == 1.0
    assert run.data.metrics["toxicity.failing_share"] > 0.1
    assert run.data.tags["ragate.monitor.alert"] == "true"
    # The per-day figures are stepped metrics: one point per day, step = days since 1970.
    history = client.get_metric_history(run.info.run_id, "latency.daily_mean")
    days = sorted(datetime.fromisoformat(d) for d in json.loads(
        (root / "r" / "monitor-report.json").read_text())["metrics"][0]["per_day"])  # fmt: skip
    assert sorted(m.step for m in history) == [(d - datetime(1970, 1, 1)).days for d in days]
    assert all(m.value > 1000 for m in history)  # the planted slow version: ~1.6 s
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "toxicity.daily_failing_share")}
    assert len(steps) == 2
    assert client.get_metric_history(run.info.run_id, "latency.daily_ci_low")[0].value > 0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"monitor-report.json", "monitor-report.md", "monitor-report.html"}
    assert str(root / ".ragate" / "mlartifacts") in run.info.artifact_uri
    del mlflow


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no headless browser installed (apt-get install chromium)")
def test_the_html_page_renders_a_time_series_per_metric(root: Path) -> None:
    baseline = traces(root / "baseline.jsonl", seed=1)
    worse = traces(root / "worse.jsonl", seed=3, slow=1.6, rude_every=4)
    result = monitor(
        root, "--traces", str(worse), "--baseline", str(baseline), "--report-dir", "h", "--no-tracking"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    page = root / "h" / "monitor-report.html"
    text = page.read_text()
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text

    shot = root / "shot.png"
    common = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    done = subprocess.run(
        [*common, "--window-size=1200,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # Two metrics, each: the daily mean, the daily difference (with its interval), the daily
    # failing share.
    assert dom.stdout.count("<svg") == 6
    assert dom.stdout.count("<polyline") == 10  # two days: a line per series (3 on the difference)
    assert "ALERT on 2 of 2 metrics" in dom.stdout
