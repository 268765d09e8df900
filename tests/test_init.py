"""``ragate init``: adds the gate setup to a team's folder, never overwriting a file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gates.cli import main
from gates.init import SUITES, init_project
from gates.profile import committed_profile, load_profile, vacuous_metrics
from ragate_core.errors import UsageError

pytest_plugins = ["pytester"]

EXPECTED = [
    "ragate/profiles/ci.yaml",
    "ragate/profiles/staging.yaml",
    "ragate/profiles/prod.yaml",
    *(f"quality/{name}" for name in SUITES),
    "datasets/golden/qa.jsonl",
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_init_in_an_empty_folder_writes_everything_the_gates_need(tmp_path: Path) -> None:
    result = init_project(tmp_path, chain="bot.chain:build")

    assert list(result.created) == ["pyproject.toml", *EXPECTED]
    assert result.appended == () and result.kept == ()
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert data["tool"]["ragate"]["gates"]["chain"] == "bot.chain:build"
    # The profiles `--gate-env` reads and promotion trusts are the ones init wrote.
    assert data["tool"]["ragate"]["gates"]["profiles_dir"] == "ragate/profiles"
    assert committed_profile(tmp_path, "staging") == tmp_path / "ragate/profiles/staging.yaml"
    for env in ("ci", "staging", "prod"):  # each starter profile is valid as written
        # and promotable: it gates toxicity and pii, each metric with a rule a score can fail
        assert {"toxicity", "pii"} <= set(load_profile(env, tmp_path).metrics) or env == "ci"
        assert vacuous_metrics(load_profile(env, tmp_path)) == []
        profile = load_profile(str(tmp_path / f"ragate/profiles/{env}.yaml"), tmp_path)
        assert profile.env == env
        assert set(profile.metrics) == {metric for metric, _ in SUITES.values()}
    suite = (tmp_path / "quality" / "test_faithfulness.py").read_text()
    assert 'METRIC = "faithfulness"' in suite and "from gates.suite import *" in suite
    row = json.loads((tmp_path / "datasets/golden/qa.jsonl").read_text())
    assert {"id", "question", "ground_truth", "source_ids", "tags"} <= set(row)


def test_init_appends_to_an_existing_pyproject_without_rewriting_it(tmp_path: Path) -> None:
    original = '[project]\nname = "bot"  # keep this comment\nversion = "1"'  # no final newline
    (tmp_path / "pyproject.toml").write_text(original)

    result = init_project(tmp_path)

    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(original + "\n")
    assert result.appended == ("pyproject.toml",)
    data = tomllib.loads(text)
    assert data["project"]["name"] == "bot"
    assert data["tool"]["ragate"]["cache_dir"] == ".ragate/cache"
    assert "point [tool.ragate.gates] chain" in result.next_steps[0]


def test_init_adds_only_the_table_the_pyproject_lacks(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ragate]\ncache_dir = "elsewhere"\n')

    result = init_project(tmp_path, chain="bot.chain:build")

    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    gates = {"chain": "bot.chain:build", "profiles_dir": "ragate/profiles"}
    assert data["tool"]["ragate"] == {"cache_dir": "elsewhere", "gates": gates}
    assert result.kept == ("[tool.ragate]",)


def test_init_leaves_a_pyproject_that_has_both_tables_alone(tmp_path: Path) -> None:
    original = (
        '[tool.ragate]\ncache_dir = "c"\n\n[tool.ragate.gates]\nchain = "mine:build"\n\n'
        '[tool.pytest.ini_options]\naddopts = "-q"\n'
    )
    (tmp_path / "pyproject.toml").write_text(original)

    result = init_project(tmp_path, chain="other:build")

    assert (tmp_path / "pyproject.toml").read_text() == original
    assert result.kept == ("[tool.ragate]", "[tool.ragate.gates]", "[tool.pytest.ini_options]")
    assert any('pythonpath = ["."]' in step for step in result.next_steps)


def test_init_adds_a_pytest_table_that_imports_the_team_package(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "bot"\n')

    init_project(tmp_path, chain="bot.chain:build")

    ini = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert ini["pythonpath"] == ["."]
    assert "-p no:deepeval" in ini["addopts"]


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "bot"\n')
    (tmp_path / "quality").mkdir()
    (tmp_path / "quality" / "test_pii.py").write_text("# the team's own\n")
    before = snapshot(tmp_path)

    with pytest.raises(UsageError, match=r"would overwrite quality/test_pii\.py in .*nothing was written"):
        init_project(tmp_path)

    assert snapshot(tmp_path) == before


def test_init_refuses_a_pyproject_that_is_not_toml_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = 1\n")
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=r"pyproject.toml: not valid TOML"):
        init_project(tmp_path)
    assert snapshot(tmp_path) == before


def test_the_cli_exits_2_naming_the_file_it_would_overwrite(tmp_path: Path, capsys) -> None:
    assert main(["init", "--dir", str(tmp_path), "--chain", "bot.chain:build"]) == 0
    out = capsys.readouterr().out
    assert "created  ragate/profiles/ci.yaml" in out
    assert "pytest -m gate --gate-profile ragate/profiles/ci.yaml" in out
    before = snapshot(tmp_path)

    assert main(["init", "--dir", str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert err.startswith("ragate init: error: would overwrite datasets/golden/qa.jsonl, quality/")
    assert "ragate/profiles/ci.yaml" in err
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_a_folder_named_like_a_ragate_package_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["init", "--dir", str(tmp_path), "--profiles-dir", "gates/profiles"]) == 2
    assert "would shadow ragate's own 'gates' package" in capsys.readouterr().err
    assert snapshot(tmp_path) == {}


def test_a_bad_chain_option_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["init", "--dir", str(tmp_path), "--chain", "no-colon"])
    assert exc.value.code == 2
    assert "is not 'module:factory'" in capsys.readouterr().err


TINY_CHAIN = """
TEXT = "Customers have 30 days from delivery to return an item."


class Bot:
    def version(self):
        return {"bot": "v1"}

    def invoke(self, question):
        return {"answer": TEXT, "contexts": [TEXT], "latency_ms": 5.0}


def build():
    return Bot()
"""


def test_after_init_the_gates_run_on_the_teams_chain(pytester: pytest.Pytester) -> None:
    root = pytester.path
    (root / "pyproject.toml").write_text('[project]\nname = "bot"\nversion = "0.1"\n')
    pytester.makepyfile(bot_chain=TINY_CHAIN)
    init_project(root, chain="bot_chain:build")

    result = pytester.runpytest_subprocess(
        "-p", "no:deepeval", "-p", "no:cacheprovider", "--gate-no-track",
        "-m", "gate", "--gate-profile=ragate/profiles/ci.yaml",
        timeout=600,
    )  # fmt: skip

    result.stdout.fnmatch_lines(
        ["*ragate gates (env: ci)*", "*latency.max_p95*PASS*", "*ragate verdict: PASS*"]
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    report = json.loads((root / "reports" / "gate-report.json").read_text())
    assert report["chain_version"]["bot"] == "v1"
    assert [c["id"] for c in report["cases"]] == ["example-1"]
    assert {g["metric"] for g in report["gates"]} == {metric for metric, _ in SUITES.values()}
    assert (root / "reports" / "gate-report.html").is_file()
