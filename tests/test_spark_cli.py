"""``ragate score --engine spark`` on bad input, as a user runs it (a subprocess): no Java, a
table that does not exist, a Parquet file without the needed columns -> one clear message
naming what is wrong, exit 2, no traceback, and no output written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v java"], capture_output=True).returncode != 0,
    reason="no Java on this machine (scripts/bootstrap installs openjdk-17-jre-headless as root)",
)


def _score(source: str, output: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gates.cli", "score", "--engine", "spark", "--spark-master", "local[1]",
         "--metrics", "pii", "--input", source, "--output", str(output)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, **env},
    )  # fmt: skip


def test_no_java_exits_2_before_anything_is_written(tmp_path: Path) -> None:
    output = tmp_path / "scored.parquet"
    result = _score("prod_answers", output, JAVA_HOME=str(tmp_path / "no-jdk-here"))
    assert result.returncode == 2, result.stderr
    assert "Spark needs Java 17+" in result.stderr and "openjdk-17-jre-headless" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_missing_table_and_parquet_without_columns_exit_2(tmp_path: Path) -> None:
    import pandas as pd

    output = tmp_path / "scored.jsonl"
    result = _score("no_such_table_anywhere", output)
    assert result.returncode == 2, result.stderr
    assert "--input no_such_table_anywhere: no such table in the Spark catalog" in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()

    bad = tmp_path / "answers.parquet"
    pd.DataFrame({"id": ["a"], "question": ["q"], "reply": ["r"]}).to_parquet(bad)
    result = _score(str(bad), output)
    assert result.returncode == 2, result.stderr
    assert f"--input {bad}: missing column(s) answer, contexts" in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no staging folder left behind either
