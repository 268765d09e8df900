"""``pytest -m gate --gate-engine spark``: generation and scoring on a real ``local[2]`` Spark
session give the local run's verdict and report (timestamps and timings aside); cached rows
are not sent again; a bad engine name is a usage error (exit 4) naming where it was written.

Each gate run is a pytester subprocess, as a user runs it. The chain is a fake defined here
(``fake_spark_chain``: canned answers, one question that always fails).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
FAST = (
    "-p", "no:deepeval", "-p", "no:langsmith_plugin", "-p", "no:hypothesispytest",
    "-p", "no:cacheprovider", "--gate-no-track",
)  # fmt: skip
SUITES = ("test_faithfulness.py", "test_latency.py")

FAKE_SPARK_CHAIN = '''
    """A fake chain for the Spark gate test: canned answers; "fail" questions raise."""
    import json
    import os
    from pathlib import Path

    HERE = Path(__file__).parent


    class FakeSparkChain:
        def __init__(self):
            self.answers = json.loads((HERE / "answers.json").read_text(encoding="utf-8"))

        def version(self):
            return {"chain": "fake-spark-chain"}

        def invoke(self, question):
            with open(HERE / "calls.txt", "a", encoding="utf-8") as calls:
                calls.write(f"{os.getpid()}\\n")
            row = self.answers[question]
            if row.get("fail"):
                raise RuntimeError("the fake model timed out")
            return {"answer": row["answer"], "contexts": row["contexts"], "sources": ["doc-a"],
                    "latency_ms": row["latency_ms"], "prompt_tokens": 10, "completion_tokens": 5}


    def build():
        return FakeSparkChain()
'''

CONTEXTS = [
    "The Pro plan costs $29 per user per month, billed monthly or yearly.",
    "The Growth plan allows 600 API requests per minute for each key.",
    "Deleted files stay in the trash for 30 days before they are removed for good.",
    "Support answers e-mails within one business day; Enterprise customers get a phone line.",
    "Two-factor authentication can be required for every member by an administrator.",
]
ANSWERS = [
    "The Pro plan costs $29 per user per month.",
    "The Growth plan allows 600 API requests per minute.",
    "Deleted files stay in the trash for 90 days.",  # unfaithful on purpose
    "Support answers e-mails within one business day.",
    "Administrators can require two-factor authentication.",
]
QUESTIONS = [
    "How much does the Pro plan cost per month?",
    "How many API requests per minute does the Growth plan allow?",
    "How long do deleted files stay in the trash?",
    "How fast does support answer e-mails?",
    "Can an administrator require two-factor authentication?",
    "Which regions host customer data?",  # the fake model fails on this one
]


class SparkProject:
    """A tiny gated project in ``pytester.path``; the Spark session from its pyproject."""

    def __init__(self, pytester: pytest.Pytester, engine_setting: str = "", master: str = "local[2]") -> None:
        self.pytester = pytester
        self.path = pytester.path
        setting = f'engine = "{engine_setting}"' if engine_setting else ""
        pytester.makefile(
            ".toml",
            pyproject=f"""
            [tool.ragate]
            cache_dir = "{(self.path / "cache").as_posix()}"

            [tool.ragate.gates]
            chain = "fake_spark_chain:build"
            {setting}

            [tool.ragate.spark]
            master = "{master}"

            [tool.ragate.spark.conf]
            "spark.driver.memory" = "1g"
            "spark.sql.warehouse.dir" = "{(self.path / "warehouse").as_posix()}"

            [tool.pytest.ini_options]
            addopts = "-p no:cacheprovider"
            asyncio_default_fixture_loop_scope = "function"
            """,
        )
        pytester.makepyfile(fake_spark_chain=FAKE_SPARK_CHAIN)
        answers: dict[str, Any] = {
            q: {"answer": a, "contexts": [c], "latency_ms": 100.0 + 10 * i}
            for i, (q, a, c) in enumerate(zip(QUESTIONS, ANSWERS, CONTEXTS))
        }
        answers[QUESTIONS[-1]] = {"fail": True}
        (self.path / "answers.json").write_text(json.dumps(answers))
        (self.path / "data").mkdir(exist_ok=True)
        rows = [
            {"id": f"qa-{i + 1}", "question": q, "ground_truth": a, "source_ids": ["doc-a"], "tags": ["t"]}
            for i, (q, a) in enumerate(zip(QUESTIONS, [*ANSWERS, "Data is hosted in the EU."]))
        ]
        (self.path / "data" / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        profile = {
            "env": "ci",
            "datasets": [{"name": "golden", "path": "data/qa.jsonl"}],
            "metrics": {
                "faithfulness": {"threshold": 0.5, "rules": {"min_mean": 0.8, "max_unscored_share": 0.2}},
                "latency": {"threshold": 1000, "rules": {"max_p95": 500, "max_unscored_share": 0.2}},
            },
        }
        (self.path / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
        for suite in SUITES:
            (self.path / suite).write_text((ROOT / "quality" / suite).read_text())

    def run(self, *args: str, reports: str = "reports") -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(
            *FAST, "-m", "gate", "--gate-profile", "profile.yaml", f"--gate-report={reports}", *args, *SUITES,
            timeout=900,
        )  # fmt: skip

    def report(self, reports: str = "reports") -> dict[str, Any]:
        return json.loads((self.path / reports / "gate-report.json").read_text())

    def calls(self) -> int:
        path = self.path / "calls.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what differs between any two runs: when, and how long it took."""
    return {k: v for k, v in report.items() if k not in ("created", "stats")}


pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v java"], capture_output=True).returncode != 0,
    reason="no Java on this machine (scripts/bootstrap installs openjdk-17-jre-headless as root)",
)


def test_spark_gate_run_gives_the_local_verdict_and_report(pytester: pytest.Pytester) -> None:
    project = SparkProject(pytester)
    local = project.run("--gate-no-cache", reports="local")
    assert local.ret == 1, local.stdout.str()  # faithfulness.min_mean fails (qa-3 is unfaithful)
    local_report = project.report("local")
    calls_local = project.calls()
    assert calls_local == len(QUESTIONS)

    spark = project.run("--gate-engine", "spark", reports="spark")
    out = spark.stdout.str()
    assert spark.ret == local.ret, out
    assert "on Spark local[2]" in out
    assert "scored 10 case-metrics in 2 batches: 2 tasks on" in out  # one task per batch
    spark_report = project.report("spark")
    assert _comparable(spark_report) == _comparable(local_report)
    # The failed generation is unscored with the local run's reason, not dropped.
    failed = next(c for c in spark_report["cases"] if c["id"] == "qa-6")
    assert failed["scores"]["faithfulness"] is None
    assert "the fake model timed out" in failed["reasons"]["faithfulness"]
    assert project.calls() == calls_local + len(QUESTIONS)
    assert spark_report["stats"]["generated"] == len(QUESTIONS) - 1
    assert spark_report["stats"]["judgments"] == local_report["stats"]["judgments"]

    # Everything answered and scored is cached now: only the failed question goes to Spark again.
    again = project.run("--gate-engine", "spark", reports="again")
    out = again.stdout.str()
    assert again.ret == local.ret, out
    assert "generating 1 answers (5 cached) on Spark" in out
    assert "scoring faithfulness: 0 cases (5 cached) on Spark" in out
    assert project.calls() == calls_local + len(QUESTIONS) + 1
    assert _comparable(project.report("again")) == _comparable(local_report)


def test_unknown_engine_is_a_usage_error_naming_where(pytester: pytest.Pytester) -> None:
    project = SparkProject(pytester)
    result = project.run("--gate-engine", "dask")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gate-engine: 'dask' is not one of local, spark*"])

    project = SparkProject(pytester, engine_setting="ray")
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "[tool.ragate.gates] engine: 'ray' is not one of local, spark"
        in result.stdout.str() + result.stderr.str()
    )
    assert project.calls() == 0


def test_unreachable_master_fails_the_gate_with_exit_1_and_a_report(pytester: pytest.Pytester) -> None:
    import socket

    with socket.socket() as sock:  # a free port: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    project = SparkProject(pytester, master=f"spark://127.0.0.1:{port}")
    result = project.run("--gate-engine", "spark")
    said = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, said
    assert f"Spark master spark://127.0.0.1:{port} is not reachable" in said
    assert "Traceback" not in said
    report = project.report()
    assert report["passed"] is False and "not reachable" in report["stopped"]
    assert project.calls() == 0


@pytest.mark.parametrize("configured", [False, True])
def test_spark_engine_under_xdist_is_a_usage_error_naming_both_options(
    pytester: pytest.Pytester, configured: bool
) -> None:
    # Spark spreads the work itself; under -n every xdist worker would start its own session.
    project = SparkProject(pytester, engine_setting="spark" if configured else "")
    result = project.run("-n", "2", *([] if configured else ["--gate-engine", "spark"]))
    said = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, said
    where = '[tool.ragate.gates] engine = "spark"' if configured else "--gate-engine spark"
    assert f"{where} cannot run under pytest-xdist (-n 2)" in said
    assert said.count("cannot run under pytest-xdist") == 1 and "Traceback" not in said
    assert project.calls() == 0  # refused before any worker or Spark session started
    report = project.report()
    assert report["passed"] is False and "pytest-xdist" in report["stopped"]
