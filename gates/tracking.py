"""MLflow: every gate run tracked, the chain registered, promotion and rollback by alias.

The gate is the only door to the ``staging`` and ``champion`` aliases: a chain version
(the hash of its configuration, prompt, model file and corpus) is registered once as a
model version, tagged with the gate runs that judged it, and an alias moves only onto a
version whose gate run of the matching profile passed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import UsageError

REGISTERED_MODEL = "ragate-chain"
EXPERIMENT = "ragate-gates"
# alias -> the profile whose gate run must have passed for this chain version
ALIASES = {"staging": "staging", "champion": "prod"}


class TrackingError(Exception):
    """The tracking server or registry could not be used; the message says why."""


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` for a team server, else a SQLite store in the project."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    folder = root / ".ragate"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def version_id(chain_version: dict[str, str]) -> str:
    """One short id for everything that identifies a chain's answers."""
    return hashlib.sha256(json.dumps(chain_version, sort_keys=True).encode()).hexdigest()[:16]


def _client(root: Path) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "missing"


@dataclass(frozen=True)
class TrackedRun:
    """Where a gate run went."""

    run_id: str
    model_version: str
    uri: str


def track_gate_run(root: Path, report: dict[str, Any], report_paths: list[Path]) -> TrackedRun:
    """Log one gate run (params, metrics, artifacts, tags) and tag its chain's model version."""
    try:
        return _track(root, report, report_paths)
    except UsageError:
        raise
    except Exception as exc:  # a server that is down, a store that is locked, ...
        raise TrackingError(f"tracking to {tracking_uri(root)} failed: {type(exc).__name__}: {exc}") from exc


def _track(root: Path, report: dict[str, Any], report_paths: list[Path]) -> TrackedRun:
    import mlflow

    from gates.profile import load_profile

    client = _client(root)
    env = report["env"]
    chain_version = report.get("chain_version") or {}
    vid = version_id(chain_version)
    params: dict[str, Any] = {
        "env": env,
        "chain_version": vid,
        "git_commit": _git_commit(root),
        "profile": report.get("profile"),
        "profile_sha256": (report.get("profile_sha256") or "")[:16],
    }
    params.update({f"chain.{k}": v for k, v in chain_version.items()})
    from rag.config import load_config

    params.update({f"config.{k}": v for k, v in load_config(root).chain_fields().items()})
    if report.get("profile"):
        profile = load_profile(report["profile"], root)
        for spec in profile.datasets:
            path = spec.path if spec.path.is_absolute() else root / spec.path
            params[f"dataset.{spec.name}.path"] = str(spec.path)
            params[f"dataset.{spec.name}.sha256"] = _sha256(path)
        for name, gate in profile.metrics.items():
            params[f"threshold.{name}"] = report.get("thresholds", {}).get(name)
            for rule, value in gate.rules.active().items():
                params[f"rule.{name}.{rule}"] = value
    mlflow.set_experiment(EXPERIMENT)
    verdict = "PASS" if report["passed"] else "FAIL"
    with mlflow.start_run(run_name=f"gate-{env}-{vid[:8]}") as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        metrics: dict[str, float] = {}
        for gate in report["gates"]:
            name = gate["name"]
            if gate["observed"] is not None:
                metrics[f"{name}.observed"] = float(gate["observed"])
            if gate.get("interval"):
                metrics[f"{name}.ci_low"], metrics[f"{name}.ci_high"] = map(float, gate["interval"])
            metrics[f"{name}.n_scored"] = float(gate["n_scored"])
            metrics[f"{name}.n_unscored"] = float(gate["n_unscored"])
        mlflow.log_metrics(metrics)
        mlflow.set_tags(
            {
                "ragate.env": env,
                "ragate.chain_version": vid,
                "ragate.verdict": verdict,
                **{f"ragate.gate.{g['name']}": "PASS" if g["passed"] else "FAIL" for g in report["gates"]},
            }
        )
        for path in report_paths:
            mlflow.log_artifact(str(path))
        mlflow.log_dict({"cases": report["cases"]}, "cases.json")
        version = _model_version_for(client, vid, chain_version)
    failed = [g["name"] for g in report["gates"] if not g["passed"]] + [
        f"{m} (not run)" for m in report.get("missing", [])
    ]
    for key, value in {
        f"gate.{env}.run_id": run.info.run_id,
        f"gate.{env}.passed": str(report["passed"]).lower(),
        f"gate.{env}.failed": ", ".join(failed)[:4000],
    }.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, key, value)
    return TrackedRun(run.info.run_id, version, tracking_uri(root))


def _model_version_for(client: Any, vid: str, chain_version: dict[str, str]) -> str:
    """The registered version of this chain; logged from code the first time it is judged."""
    import mlflow

    import rag

    found = _versions(client, f"tags.chain_version = '{vid}'")
    if found:
        return str(found[0].version)
    info = mlflow.pyfunc.log_model(
        name="chain",
        python_model=str(Path(rag.__file__).parent / "mlflow_model.py"),
        registered_model_name=REGISTERED_MODEL,
        pip_requirements=["ragate"],
    )
    version = str(info.registered_model_version)
    client.set_model_version_tag(REGISTERED_MODEL, version, "chain_version", vid)
    for key, value in chain_version.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, f"chain.{key}", value)
    return version


def _versions(client: Any, extra: str = "") -> list[Any]:
    query = f"name = '{REGISTERED_MODEL}'" + (f" and {extra}" if extra else "")
    return sorted(client.search_model_versions(query), key=lambda v: int(v.version), reverse=True)


def _require_model(client: Any, root: Path) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(REGISTERED_MODEL)
    except MlflowException as exc:
        raise UsageError(
            f"no registered model {REGISTERED_MODEL!r} in {tracking_uri(root)}: run the gates first "
            "(pytest -m gate --gate-env staging)"
        ) from exc


def promote(root: Path, alias: str, chain_version: dict[str, str]) -> str:
    """Move ``alias`` to this chain's version if its gate run of the matching profile passed."""
    if alias not in ALIASES:
        raise UsageError(f"--to {alias!r}: choose one of {', '.join(ALIASES)}")
    env = ALIASES[alias]
    client = _guarded(root)
    _require_model(client, root)
    vid = version_id(chain_version)
    found = _versions(client, f"tags.chain_version = '{vid}'")
    if not found:
        raise UsageError(
            f"chain version {vid} has never been gated: run pytest -m gate --gate-env {env} before promoting"
        )
    version = found[0]
    tags = version.tags
    summary = f"gate run {tags.get(f'gate.{env}.run_id', 'none')} ({env})"
    if tags.get(f"gate.{env}.passed") != "true":
        why = (
            f"the {env} gates failed: {tags.get(f'gate.{env}.failed') or 'see the run'}"
            if f"gate.{env}.passed" in tags
            else f"no {env} gate run for this version"
        )
        client.update_model_version(
            REGISTERED_MODEL, version.version, f"FAILURE: promotion to {alias} refused: {why}"
        )
        raise UsageError(f"refusing to promote version {version.version} to {alias}: {why}")
    client.set_registered_model_alias(REGISTERED_MODEL, alias, version.version)
    client.update_model_version(
        REGISTERED_MODEL, version.version, f"SUCCESS: promoted to {alias} after {summary}: all gates passed"
    )
    return f"{REGISTERED_MODEL} version {version.version} is now @{alias} ({summary} passed)"


def rollback(root: Path) -> str:
    """Move ``champion`` back to the newest earlier version that passed the prod gates."""
    client = _guarded(root)
    _require_model(client, root)
    try:
        current = int(client.get_model_version_by_alias(REGISTERED_MODEL, "champion").version)
    except Exception as exc:
        raise UsageError(f"{REGISTERED_MODEL} has no @champion to roll back") from exc
    earlier = [v for v in _versions(client, "tags.`gate.prod.passed` = 'true'") if int(v.version) < current]
    if not earlier:
        raise UsageError(f"no version before {current} passed the prod gates: nothing to roll back to")
    target = earlier[0].version
    client.set_registered_model_alias(REGISTERED_MODEL, "champion", target)
    client.update_model_version(
        REGISTERED_MODEL, target, f"SUCCESS: champion again after rollback from version {current}"
    )
    return f"{REGISTERED_MODEL} @champion: version {current} -> version {target}"


def history(root: Path) -> list[dict[str, Any]]:
    """Every registered version with its aliases and gate verdicts, newest first."""
    client = _guarded(root)
    _require_model(client, root)
    model = client.get_registered_model(REGISTERED_MODEL)
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in _versions(client):
        rows.append(
            {
                "version": v.version,
                "aliases": sorted(aliases.get(str(v.version), [])),
                "chain_version": v.tags.get("chain_version"),
                "gates": {env: v.tags.get(f"gate.{env}.passed", "-") for env in ("ci", "staging", "prod")},
                "description": v.description or "",
            }
        )
    return rows


def _guarded(root: Path) -> Any:
    client = _client(root)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:
        raise TrackingError(
            f"cannot reach the tracking store {tracking_uri(root)}: {type(exc).__name__}: {exc}"
        ) from exc
    return client
