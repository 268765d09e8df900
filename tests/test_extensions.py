"""Extending ragate without changing it: rules, metrics and reporters from other code.

The end-to-end test installs a throwaway distribution (a ``.dist-info`` folder with an
``entry_points.txt`` on ``PYTHONPATH``) that adds a metric, a rule and a reporter, and gates
a tiny chain on them with pytest, as a team would.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from gates.metrics.base import MetricCase, _code_hash, dependency_files, judgment_key
from gates.profile import GateRules, load_profile
from gates.verdict import RULES, Observation, evaluate_metric, rule, rule_names
from ragate_core.errors import UsageError

pytest_plugins = ["pytester"]

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


@pytest.fixture
def median_rule():
    """A rule defined the way a team would: one decorated function."""

    @rule("max_median", reads="median", op="<=", bounds=(0.0, 1.0))
    def median(o: Observation) -> tuple[float, tuple[float, float] | None]:
        return float(np.median(o.scored)), None

    yield "max_median"
    RULES.pop("max_median", None)


def test_a_decorated_rule_is_decided_like_a_built_in(median_rule: str) -> None:
    values = [0.1, 0.2, 0.9, None]

    gates = evaluate_metric("m", values, lambda v: v <= 0.5, {"max_median": 0.3, "max_mean": 0.5}, 200)

    by_rule = {g.rule: g for g in gates}
    assert by_rule["max_median"].observed == pytest.approx(0.2)
    assert by_rule["max_median"].passed is True
    assert (by_rule["max_median"].n_scored, by_rule["max_median"].n_unscored) == (3, 1)
    assert "FAIL" not in by_rule["max_median"].describe()
    assert "median 0.2 <= 0.3" in by_rule["max_median"].describe()
    # Fail closed with nothing scored, like every built-in rule.
    nothing = evaluate_metric("m", [None], lambda v: True, {"max_median": 0.3}, 200)
    assert [(g.passed, g.note) for g in nothing] == [(False, "nothing scored")]


def test_a_profile_accepts_a_registered_rule_and_names_the_known_ones_otherwise(
    tmp_path: Path, median_rule: str
) -> None:
    (tmp_path / "qa.jsonl").write_text('{"id": "q1", "question": "Why?", "ground_truth": "Because."}\n')

    def profile(rules: dict) -> Path:
        path = tmp_path / "p.yaml"
        data = {
            "env": "ci",
            "datasets": [{"name": "golden", "path": "qa.jsonl"}],
            "metrics": {"faithfulness": {"threshold": 0.5, "rules": rules}},
        }
        path.write_text(yaml.safe_dump(data))
        return path

    loaded = load_profile(str(profile({"max_median": 0.4})), tmp_path)
    assert loaded.metrics["faithfulness"].rules.active() == {"max_median": 0.4, "max_unscored_share": 0.0}

    with pytest.raises(UsageError, match=r"rules\.max_medain: unknown key; known rules: .*max_median"):
        load_profile(str(profile({"max_medain": 0.4})), tmp_path)
    with pytest.raises(UsageError, match=r"rules\.max_median: rule 'max_median': 2 is outside \[0.0, 1.0\]"):
        load_profile(str(profile({"max_median": 2})), tmp_path)


def test_paired_rules_are_left_to_the_regression_gate() -> None:
    assert RULES["max_regression"].paired
    assert "max_regression" not in GateRules(max_regression=0.1).active()
    assert set(GateRules.model_fields) <= set(rule_names())


class _Words:
    name = "words"
    version = "1"
    direction = "lower_is_better"
    default_threshold = 0.5

    def __init__(self, depends_on: tuple[str, ...]) -> None:
        self.depends_on = depends_on

    def reads(self, case: MetricCase) -> dict:
        return {"answer": case.answer}


def test_depends_on_joins_the_judgment_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "wordrules"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "limits.py").write_text("MAX_WORDS = 20\n")
    (package / "data" / "stop.txt").write_text("the\na\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    case = MetricCase(id="c1", question="q", answer="a b c")

    def key(depends_on: tuple[str, ...]) -> str:
        _code_hash.cache_clear()
        return judgment_key(_Words(depends_on), case)

    plain = key(())
    with_code = key(("wordrules.limits",))
    with_data = key(("wordrules/data/*.txt",))
    assert len({plain, with_code, with_data}) == 3
    assert key(("wordrules.limits",)) == with_code  # stable
    (package / "limits.py").write_text("MAX_WORDS = 25\n")
    assert key(("wordrules.limits",)) != with_code  # edited rules: no stale judgment
    (package / "data" / "stop.txt").write_text("the\na\nan\n")
    assert key(("wordrules/data/*.txt",)) != with_data
    # A whole package: every .py file in it.
    assert [p.name for p in dependency_files("wordrules")] == ["__init__.py", "limits.py"]
    _code_hash.cache_clear()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("no_such_module_xyz", "no module named 'no_such_module_xyz'"),
        ("json/*.nothing", "names no file"),
        ("json.decoder/data/*", "is a module, not a package"),
    ],
)
def test_a_depends_on_entry_that_names_nothing_is_an_error(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dependency_files(entry)


# --- a throwaway distribution, installed by putting its dist-info on PYTHONPATH ---------

PLUGIN = '''
"""ragate-wordcount: a metric, a rule and a reporter for ragate, from outside ragate."""

import numpy as np

from gates.metrics.base import score_each
from gates.verdict import rule


class AnswerWords:
    """Answer length as a share of the limit (lower is better)."""

    name = "answer_words"
    version = "1"
    direction = "lower_is_better"
    default_threshold = 0.5
    depends_on = ("ragate_wordcount.limits",)

    def reads(self, case):
        return {"answer": case.answer}

    def score_batch(self, cases):
        from ragate_wordcount.limits import MAX_WORDS

        def one(case):
            words = len(case.answer.split())
            return min(1.0, words / MAX_WORDS), f"{words} words (limit {MAX_WORDS})", {}

        return score_each(self, cases, one)


@rule("max_median", reads="median", op="<=")
def median(o):
    return float(np.median(o.scored)), None


class CsvReporter:
    name = "csv"
    filename = "gate-report.csv"

    def render(self, report):
        return "gate,passed\\n" + "".join(f"{g.name},{g.passed}\\n" for g in report.gates)
'''

TINY_CHAIN = """
ANSWERS = {
    "How much is Pro?": "Pro costs $29 per month.",
    "How long is the trial?": (
        "The trial lasts fourteen days and needs no card at all, really, none whatsoever."
    ),
    "Can I export my data?": "Yes, as CSV.",
}


class TinyChain:
    def version(self):
        return {"chain": "tiny", "answers": "v1"}

    def invoke(self, question):
        return {"answer": ANSWERS[question], "contexts": ["Pro costs $29."], "latency_ms": 3.0}


def build():
    return TinyChain()
"""


def install_throwaway_distribution(site: Path) -> None:
    package = site / "ragate_wordcount"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN)
    (package / "limits.py").write_text("MAX_WORDS = 20\n")
    info = site / "ragate_wordcount-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ragate-wordcount\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [ragate.metrics]
            answer_words = ragate_wordcount:AnswerWords

            [ragate.rules]
            wordcount = ragate_wordcount

            [ragate.reporters]
            csv = ragate_wordcount:CsvReporter
            """
        )
    )


def test_a_metric_rule_and_reporter_from_another_distribution_gate_a_chain(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = pytester.path / "site"
    install_throwaway_distribution(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    root = pytester.path
    pytester.makefile(
        ".toml",
        pyproject=f"""
        [tool.ragate]
        cache_dir = "{(root / "cache").as_posix()}"

        [tool.ragate.gates]
        chain = "tinychain:build"

        [tool.pytest.ini_options]
        asyncio_default_fixture_loop_scope = "function"
        """,
    )
    pytester.makepyfile(tinychain=TINY_CHAIN)
    questions = ["How much is Pro?", "How long is the trial?", "Can I export my data?"]
    (root / "qa.jsonl").write_text(
        "".join(
            json.dumps(
                {"id": f"qa-{i}", "question": q, "ground_truth": "x", "source_ids": ["doc"], "tags": ["t"]}
            )
            + "\n"
            for i, q in enumerate(questions, 1)
        )
    )
    profile = {
        "env": "ci",
        "datasets": [{"name": "golden", "path": "qa.jsonl"}],
        "metrics": {"answer_words": {"threshold": 0.5, "rules": {"max_median": 0.4, "max_violations": 1}}},
    }
    (root / "profile.yaml").write_text(yaml.safe_dump(profile))
    # The whole gate suite of the new metric: two lines, as in quality/.
    (root / "test_words.py").write_text(
        'from gates.suite import *  # noqa: F403\n\nMETRIC = "answer_words"\n'
    )

    result = pytester.runpytest_subprocess(
        *FAST, "-m", "gate", "--gate-profile", "profile.yaml", "--gate-reports", "json,csv,html", timeout=240
    )

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*answer_words.max_median*<=*0.4*0.25*PASS*",
            "*answer_words.max_violations*PASS*",
            "*ragate verdict: PASS*",
        ]
    )
    # qa-2 is too long: a tolerated per-case failure (xfail) within max_violations: 1.
    result.assert_outcomes(passed=3, xfailed=1)
    report = json.loads((root / "reports" / "gate-report.json").read_text())
    assert report["passed"] is True
    assert {c["id"]: c["scores"]["answer_words"] for c in report["cases"]} == {
        "qa-1": 0.25,
        "qa-2": 0.7,
        "qa-3": 0.15,
    }
    assert report["chain_version"]["chain"] == "tiny"
    csv = (root / "reports" / "gate-report.csv").read_text()
    assert "answer_words.max_median,True" in csv
    assert (root / "reports" / "gate-report.html").read_text().count("<svg") >= 1
    assert not (root / "reports" / "gate-report.md").exists()  # only the reporters asked for


def test_an_unknown_reporter_is_a_usage_error_naming_the_known_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*FAST, "--gate-reports", "json,pdf", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--gate-reports*unknown reporter(s) pdf; choose from*html*json*junit*markdown*"]
    )


def test_a_profile_chooses_its_reporters_and_names_an_unknown_one(tmp_path: Path) -> None:
    (tmp_path / "qa.jsonl").write_text(
        '{"id": "q1", "question": "Why?", "ground_truth": "x", "source_ids": []}\n'
    )
    data = {
        "env": "ci",
        "datasets": [{"name": "golden", "path": "qa.jsonl"}],
        "metrics": {"latency": {"threshold": 1000, "rules": {"max_p95": 500}}},
        "reports": ["json", "html"],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_profile(str(path), tmp_path).reports == ["json", "html"]

    path.write_text(yaml.safe_dump({**data, "reports": ["json", "pdf"]}))
    with pytest.raises(UsageError, match=r"p\.yaml: reports: unknown reporter\(s\) pdf; choose from"):
        load_profile(str(path), tmp_path)
