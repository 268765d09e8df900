"""``ragate monitor`` on traces files: quiet on an unchanged chain, an alert on a planted
worse version, exit 2 (never "no drift") when the window holds no traces."""

from __future__ import annotations

import json
import os
import random
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


def traces(path: Path, seed: int, *, slow: float = 1.0, rude_every: int = 0, days_ago: float = 0.1) -> Path:
    """Rows of ``ragate ask --output`` with timestamps: a chain version's answers."""
    rng = random.Random(seed)
    now = datetime.now(tz=UTC)
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
                "timestamp": (now - timedelta(days=days_ago, minutes=i)).isoformat(),
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def monitor(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(
        [str(BIN / "ragate"), "monitor", "--metrics", "latency,toxicity", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.ragate]\ncache_dir = "cache"\n', encoding="utf-8")
    return tmp_path


def test_unchanged_is_quiet_and_a_worse_version_alerts(root: Path) -> None:
    baseline = traces(root / "baseline.jsonl", seed=1)
    same = traces(root / "same.jsonl", seed=2)
    worse = traces(root / "worse.jsonl", seed=3, slow=1.6, rude_every=4)

    quiet = monitor(root, "--traces", str(same), "--baseline", str(baseline), "--output", "m.json")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    report = json.loads((root / "m.json").read_text())
    assert report["alert"] is False and report["rows"] == 40
    assert [m["metric"] for m in report["metrics"]] == ["latency", "toxicity"]
    assert all(len(m["per_day"]) >= 1 for m in report["metrics"])

    loud = monitor(root, "--traces", str(worse), "--baseline", str(baseline), "--output", "w.json")
    assert loud.returncode == 1, loud.stdout + loud.stderr
    alerts = {m["metric"]: m for m in json.loads((root / "w.json").read_text())["metrics"]}
    assert alerts["latency"]["alert"] and alerts["latency"]["diff"] > 0
    assert alerts["toxicity"]["alert"] and alerts["toxicity"]["failing_share"] > 0.1
    assert "ALERT" in loud.stdout


def test_no_traces_in_the_window_is_a_usage_error_not_no_drift(root: Path) -> None:
    old = traces(root / "old.jsonl", seed=4, days_ago=3)
    result = monitor(root, "--traces", str(old), "--since", "1d", "--baseline", str(old))
    assert result.returncode == 2
    assert "no traces in" in result.stderr and "nothing to monitor" in result.stderr
