"""The gate plugin end to end, as pytest tests itself: a tiny project run by ``pytester``.

Each run is a subprocess: the metric registry, the loaded models and the caches are
process-global, and the plugin must be seen exactly as a user sees it (entry point,
options, exit status, terminal summary, report files).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
# The plugins the gates do not need cost seconds of start-up per subprocess (langsmith,
# hypothesis); deepeval's is off as in the project's own addopts. MLflow tracking costs
# many seconds per run and is not what these tests are about.
FAST = (
    "-p",
    "no:deepeval",
    "-p",
    "no:langsmith_plugin",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:cacheprovider",
    "--gate-no-track",
)

FAKECHAIN = """
    import json
    import threading
    from pathlib import Path

    HERE = Path(__file__).parent
    _lock = threading.Lock()


    class FakeChain:
        def __init__(self, settings):
            self.settings = settings
            self.version = {"chain": "fake", "model": settings.get("model", "m1")}

        def invoke(self, question, **kw):
            with _lock, open(HERE / "calls.txt", "a", encoding="utf-8") as f:
                f.write(question + "\\n")
            if self.settings.get("raise"):
                raise RuntimeError("the model crashed")
            row = self.settings["answers"][question]
            return {
                "answer": row["answer"],
                "contexts": row["contexts"],
                "sources": ["doc-a"],
                "latency_ms": row["latency_ms"],
                "prompt_tokens": 12,
                "completion_tokens": 7,
            }


    def build():
        return FakeChain(json.loads((HERE / "settings.json").read_text(encoding="utf-8")))
"""

CASES = [
    {
        "id": "qa-1",
        "question": "How much does the Pro plan cost per month?",
        "context": "The Pro plan costs $29 per user per month.",
        "answer": "The Pro plan costs $29 per user per month.",
        "latency_ms": 100.0,
        "tags": ["billing"],
    },
    {
        "id": "qa-2",
        "question": "How many API requests per minute does the Growth plan allow?",
        "context": "The Growth plan allows 600 API requests per minute for each key.",
        "answer": "The Growth plan allows 600 API requests per minute.",
        "latency_ms": 120.0,
        "tags": ["api"],
    },
    {
        "id": "qa-3",
        "question": "How long do deleted files stay in the trash?",
        "context": "Deleted files stay in the trash for 30 days before they are removed for good.",
        "answer": "Deleted files stay in the trash for 30 days.",
        "latency_ms": 140.0,
        "tags": ["files"],
    },
]


class Project:
    """The tiny gated project inside ``pytester.path``, and handles to change it."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        pytester.makefile(
            ".toml",
            pyproject=f"""
            [tool.ragate]
            cache_dir = "{(self.path / "cache").as_posix()}"

            [tool.ragate.gates]
            chain = "fakechain:build"

            [tool.pytest.ini_options]
            addopts = "-p no:cacheprovider"
            asyncio_default_fixture_loop_scope = "function"
            """,
        )
        pytester.makepyfile(fakechain=FAKECHAIN)
        (self.path / "data").mkdir()
        rows = [
            {
                "id": c["id"],
                "question": c["question"],
                "ground_truth": c["answer"],
                "source_ids": ["doc-a"],
                "tags": c["tags"],
            }
            for c in CASES
        ]
        (self.path / "data" / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.settings()
        self.copy_suite("test_latency.py")
        self.profile({"latency": {"threshold": 1000, "rules": {"max_p95": 500}}})

    def settings(self, raise_: bool = False, **changes: Any) -> None:
        answers = {
            c["question"]: {"answer": c["answer"], "contexts": [c["context"]], "latency_ms": c["latency_ms"]}
            for c in CASES
        }
        for case_id, change in changes.pop("answers", {}).items():
            question = next(c["question"] for c in CASES if c["id"] == case_id)
            answers[question].update(change)
        data = {"answers": answers, "raise": raise_, **changes}
        (self.path / "settings.json").write_text(json.dumps(data))

    def copy_suite(self, name: str) -> None:
        shutil.copy(ROOT / "quality" / name, self.path / name)

    def profile(self, metrics: dict[str, Any], name: str = "profile.yaml", **extra: Any) -> Path:
        data = {
            "env": "ci",
            "datasets": [{"name": "golden", "path": "data/qa.jsonl"}],
            "metrics": metrics,
            **extra,
        }
        path = self.path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def calls(self) -> int:
        path = self.path / "calls.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def run(self, *args: str, profile: str = "profile.yaml", suites: tuple[str, ...] = ("test_latency.py",)):
        return self.pytester.runpytest_subprocess(
            *FAST, "-m", "gate", "--gate-profile", profile, *args, *suites, timeout=240
        )

    def report(self, directory: str = "reports") -> dict[str, Any]:
        return json.loads((self.path / directory / "gate-report.json").read_text())


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    return Project(pytester)


def test_passing_gates_exit_zero_with_summary_reports_and_readable_ids(project: Project) -> None:
    result = project.run("-v")

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*ragate gates (env: ci)*",
            "*latency.max_p95*<=*500*140*PASS*",
            "*latency.max_unscored_share*PASS*",
            "*cases 3: generated 3 (cached 0)*",
            "*ragate verdict: PASS*",
        ]
    )
    out = result.stdout.str()
    for case_id in ("qa-1", "qa-2", "qa-3"):
        assert f"test_latency.py::test_case[{case_id}] PASSED" in out
    assert "test_latency.py::test_gate PASSED" in out
    assert project.calls() == 3

    report = project.report()
    assert {"env", "passed", "missing", "profile", "thresholds", "stats", "gates", "cases"} <= set(report)
    assert report["env"] == "ci"
    assert report["passed"] is True
    assert report["missing"] == []
    assert report["thresholds"] == {"latency": 1000}
    gates = {g["name"]: g for g in report["gates"]}
    assert set(gates) == {"latency.max_p95", "latency.max_unscored_share"}
    p95 = gates["latency.max_p95"]
    assert p95["rule"] == "max_p95" and p95["threshold"] == 500 and p95["passed"] is True
    assert 130 < p95["observed"] < 140
    assert (p95["n_scored"], p95["n_unscored"]) == (3, 0)
    assert p95["interval"][0] <= p95["interval"][1]
    assert [c["id"] for c in report["cases"]] == ["qa-1", "qa-2", "qa-3"]
    assert [c["scores"]["latency"] for c in report["cases"]] == [100.0, 120.0, 140.0]
    markdown = (project.path / "reports" / "gate-report.md").read_text()
    assert "ragate gates: PASS (env `ci`)" in markdown
    assert "| latency | 95th percentile <= | 500 |" in markdown


def test_violated_threshold_exits_one_and_explains_the_failing_case(project: Project) -> None:
    project.settings(answers={"qa-3": {"latency_ms": 5000.0}})

    result = project.run("--gate-report", "out")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*latency for case qa-3: 5000.000 (needs <= 1000)*",
            "*question: How long do deleted files stay in the trash?*",
            "*reason:   5000 ms*",
        ]
    )
    result.stdout.fnmatch_lines(["*latency.max_p95*FAIL*", "*ragate verdict: FAIL: 1 of 2 gates failed*"])
    result.assert_outcomes(passed=2, failed=2)
    report = project.report("out")
    assert report["passed"] is False
    assert not (project.path / "reports").exists()


def test_a_run_whose_gate_item_is_deselected_fails_closed(project: Project) -> None:
    # Every selected item passes, but no gate decided anything: the run is not a pass.
    result = project.run("-k", "not test_gate")

    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ragate verdict: FAIL: no gate ran*"])
    assert project.report()["passed"] is False


def test_collect_only_lists_the_gates_and_decides_nothing(project: Project) -> None:
    result = project.run("--collect-only", "-q")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_latency.py::test_case[[]qa-1[]]", "*4 tests collected*"])
    assert "ragate verdict" not in result.stdout.str()
    assert not (project.path / "reports").exists()
    assert project.calls() == 0


def test_cache_spares_the_chain_until_bypassed(project: Project) -> None:
    first = project.run()
    assert first.ret == pytest.ExitCode.OK
    assert project.calls() == 3
    # Progress is shown as it happens, not swallowed by the capture of the first item.
    first.stdout.fnmatch_lines(
        ["ragate: generating 3 answers (0 cached)", "ragate: scoring latency: 3 cases*"]
    )

    again = project.run()
    assert again.ret == pytest.ExitCode.OK
    assert project.calls() == 3, "a warm run must not call the chain"
    again.stdout.fnmatch_lines(["*generated 0 (cached 3), judged 0 (cached 3)*"])

    # Changing only a threshold re-decides the gates from the cache.
    project.profile({"latency": {"threshold": 1000, "rules": {"max_p95": 110}}})
    stricter = project.run()
    assert stricter.ret == pytest.ExitCode.TESTS_FAILED
    stricter.stdout.fnmatch_lines(["*latency.max_p95*110*FAIL*"])
    assert project.calls() == 3

    bypass = project.run("--gate-no-cache")
    assert bypass.ret == pytest.ExitCode.TESTS_FAILED
    assert project.calls() == 6


def test_a_new_chain_version_misses_the_cache(project: Project) -> None:
    assert project.run().ret == pytest.ExitCode.OK
    project.settings(model="m2")
    assert project.run().ret == pytest.ExitCode.OK
    assert project.calls() == 6


def test_a_failing_chain_leaves_cases_unscored_and_fails_closed(project: Project) -> None:
    # Even a rule that tolerates any unscored share fails when nothing at all was scored.
    project.profile({"latency": {"threshold": 1000, "rules": {"max_p95": 500, "max_unscored_share": 1.0}}})
    project.settings(raise_=True)

    result = project.run()

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*latency.max_p95*n/a*0*3*FAIL*",
            "*latency.max_unscored_share*FAIL*",
            "*ragate verdict: FAIL*",
        ]
    )
    result.stdout.fnmatch_lines(["*generation failed: RuntimeError: the model crashed*"])
    report = project.report()
    assert report["passed"] is False
    assert all((g["n_scored"], g["n_unscored"]) == (0, 3) for g in report["gates"])
    assert [c["scores"]["latency"] for c in report["cases"]] == [None, None, None]
    assert all("the model crashed" in c["error"] for c in report["cases"])

    # Errors are not cached: once the chain works, the next run asks it again.
    project.settings()
    assert project.run().ret == pytest.ExitCode.OK
    assert project.calls() == 6


def test_faithfulness_suite_passes_and_tolerates_a_case_within_the_rules(project: Project) -> None:
    project.copy_suite("test_faithfulness.py")
    project.profile(
        {
            "faithfulness": {"threshold": 0.5, "rules": {"min_pass_rate": 0.6}},
            "latency": {"threshold": 1000, "rules": {"max_p95": 500}},
        }
    )
    project.settings(answers={"qa-3": {"answer": "Deleted files stay in the trash for 90 days."}})

    result = project.run("-rx", suites=("test_faithfulness.py", "test_latency.py"))

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=7, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*faithfulness.min_pass_rate*0.6*0.6667*PASS*",
            "*latency.max_p95*PASS*",
            "*ragate verdict: PASS: all 4 gates passed*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "XFAIL*qa-3*within the gate's rules: faithfulness for case qa-3: 0.* (needs >= 0.5)",
            "*answer:   Deleted files stay in the trash for 90 days.",
            "*reason:*number not in the contexts: 90*",
        ]
    )
    scores = {c["id"]: c["scores"]["faithfulness"] for c in project.report()["cases"]}
    assert scores["qa-1"] >= 0.5 and scores["qa-2"] >= 0.5 and scores["qa-3"] < 0.5


BAD_PROFILES = {
    "unknown metric": (
        {"latency": {"threshold": 1000}, "coherence": {"threshold": 0.5}},
        {},
        "metrics.coherence: unknown metric",
    ),
    "unknown key": (
        {"latency": {"threshold": 1000, "rules": {"max_p96": 500}}},
        {},
        "metrics.latency.rules.max_p96: unknown key",
    ),
    "threshold out of range": (
        {"faithfulness": {"threshold": 1.5}},
        {},
        "metrics.faithfulness.threshold: 1.5 is outside [0, 1]",
    ),
    "missing dataset file": (
        {"latency": {"threshold": 1000}},
        {"datasets": [{"name": "golden", "path": "data/nowhere.jsonl"}]},
        "datasets[0].path: dataset file * not found",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_PROFILES))
def test_a_bad_profile_is_a_usage_error_naming_file_and_key(project: Project, kind: str) -> None:
    metrics, extra, message = BAD_PROFILES[kind]
    project.profile(metrics, name="bad.yaml", **extra)

    result = project.run(profile="bad.yaml")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # fnmatch reads "[...]" as a character class: match brackets literally.
    literal = re.sub(r"([][])", r"[\1]", message)
    stderr = result.stderr.str()
    assert fnmatch.fnmatch(stderr, f"ERROR: bad.yaml: *{literal}*"), stderr
    assert project.calls() == 0


@pytest.mark.parametrize("via", ["option", "environment"])
def test_an_unknown_gate_env_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    if via == "option":
        result = pytester.runpytest_subprocess(*FAST, "--gate-env", "nope")
        expected = "*--gate-env: 'nope' is not one of ci, staging, prod*"
    else:
        monkeypatch.setenv("RAGATE_GATE_ENV", "nope")
        result = pytester.runpytest_subprocess(*FAST)
        expected = "*$RAGATE_GATE_ENV: 'nope' is not one of ci, staging, prod*"

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([expected])
