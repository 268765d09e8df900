"""databricks.yml, validated offline: every target resolves to a job that the databricks-bundles
models accept (they reject unknown and mistyped keys), runs the gates of its environment on a
cluster with the ragate wheel, and the cd workflows deploy it only behind repository secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"dev": "ci", "staging": "staging", "prod": "prod"}


def bundle() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "databricks.yml").read_text())


def resolve(value: Any, variables: dict[str, Any], target: str, name: str) -> Any:
    """Substitute ``${var.x}``, ``${bundle.target}`` and ``${bundle.name}`` as the CLI does
    (a value that is one whole reference keeps the variable's type)."""
    if isinstance(value, dict):
        return {k: resolve(v, variables, target, name) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables, target, name) for v in value]
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\$\{var\.(\w+)\}", value)
    if whole:
        return variables[whole.group(1)]

    def one(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref == "bundle.target":
            return target
        if ref == "bundle.name":
            return name
        if ref.startswith("var."):
            return str(variables[ref[4:]])
        raise AssertionError(f"unknown reference ${{{ref}}}")

    return re.sub(r"\$\{([\w.]+)\}", one, value)


def target_variables(data: dict[str, Any], target: str) -> dict[str, Any]:
    variables = {k: v["default"] for k, v in data["variables"].items()}
    variables.update(data["targets"][target].get("variables", {}))
    return variables


def test_bundle_has_the_three_targets_and_dev_is_default() -> None:
    data = bundle()
    assert data["bundle"]["name"] == "ragate"
    assert set(data["targets"]) == set(TARGETS)
    assert data["targets"]["dev"].get("default") is True
    assert data["targets"]["prod"]["mode"] == "production"
    for name, spec in data["variables"].items():
        assert "default" in spec and spec.get("description"), name


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_each_target_is_a_valid_job_that_runs_its_gates(target: str) -> None:
    from databricks.bundles.jobs import Job

    data = bundle()
    variables = target_variables(data, target)
    assert variables["gate_env"] == TARGETS[target]
    jobs = data["resources"]["jobs"]
    assert list(jobs) == ["ragate_gates"]
    spec = resolve(jobs["ragate_gates"], variables, target, data["bundle"]["name"])
    job = Job.from_dict(spec)  # raises on an unknown or mistyped key
    assert job.name == f"ragate-gates-{target}"
    (task,) = job.tasks
    params = task.spark_python_task.parameters
    assert params[params.index("--gate-env") + 1] == TARGETS[target]
    assert (ROOT / task.spark_python_task.python_file).is_file()
    assert [lib.whl for lib in task.libraries] == ["./dist/*.whl"]
    assert task.new_cluster.num_workers >= 1
    assert task.new_cluster.spark_env_vars["HF_HUB_OFFLINE"] == "1"


def test_the_wheel_artifact_builds_this_project() -> None:
    artifact = bundle()["artifacts"]["ragate_wheel"]
    assert artifact["type"] == "whl" and artifact["path"] == "."
    assert "--wheel-dir dist" in artifact["build"]


def test_the_job_script_runs_the_gates_with_pytest(monkeypatch, tmp_path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("databricks_gate", ROOT / "scripts/databricks_gate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen: list[list[str]] = []
    monkeypatch.setattr("pytest.main", lambda args: seen.append(args) or 0)
    monkeypatch.chdir(tmp_path)
    assert module.main(["--gate-env", "staging"]) == 0
    assert seen == [["-m", "gate", "-p", "no:cacheprovider", "--gate-env", "staging"]]
    assert Path.cwd() == ROOT


@pytest.mark.parametrize(("workflow", "target"), [("cd-staging.yml", "staging"), ("cd-prod.yml", "prod")])
def test_cd_workflows_deploy_only_behind_secrets(workflow: str, target: str) -> None:
    data = yaml.safe_load((ROOT / ".github/workflows" / workflow).read_text())
    (job,) = data["jobs"].values()
    assert job["env"]["DATABRICKS_HOST"] == "${{ secrets.DATABRICKS_HOST }}"
    assert job["env"]["DATABRICKS_TOKEN"] == "${{ secrets.DATABRICKS_TOKEN }}"
    runs = [s for s in job["steps"] if "databricks bundle" in s.get("run", "")]
    assert [s["run"] for s in runs] == [
        f"databricks bundle validate -t {target}",
        f"databricks bundle deploy -t {target}",
    ]
    assert all(s["if"] == "env.DATABRICKS_HOST != ''" for s in runs)
    text = (ROOT / "databricks.yml").read_text().lower()
    assert "token:" not in text and "dapi" not in text  # no credential in the bundle
