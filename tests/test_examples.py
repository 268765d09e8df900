"""The examples in ``examples/`` run as documented (each in its own process, from the project)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_evaluate_dataframe_example_writes_the_reports(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    env = os.environ | {"RAGATE_CACHE_DIR": str(tmp_path / "cache")}  # never the project's cache
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "evaluate_dataframe.py"), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = {p.name for p in out.iterdir()}
    assert {"gate-report.json", "gate-report.md", "gate-report.html"} <= names
    report = json.loads((out / "gate-report.json").read_text(encoding="utf-8"))
    assert len(report["cases"]) == 6 and report["env"] == "ci"
    assert "<html" in (out / "gate-report.html").read_text(encoding="utf-8").lower()
    # The worst faithfulness cases come first: the two answers that contradict their contexts.
    worst = result.stdout.split("faithfulness_reason", 1)[1]
    assert "refund-wrong" in worst and "sms-codes" in worst
    assert f"verdict: {'PASS' if report['passed'] else 'FAIL'}" in result.stdout
