"""MLflow: every gate run tracked, the chain registered, promotion and rollback by alias.

The gate is the only door to the ``staging`` and ``champion`` aliases: a chain version
(the hash of its configuration, prompt, model file and corpus) is registered once as a
model version, tagged with the gate runs that judged it, and an alias moves only onto a
version whose gate run of the matching profile passed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from gates.results import CaseRecord, ChampionBaseline, GateReport
from ragate_core.errors import UsageError

REGISTERED_MODEL = "ragate-chain"
EXPERIMENT = "ragate-gates"
# alias -> the profile whose gate run must have passed for this chain version
ALIASES = {"staging": "staging", "champion": "prod"}
# The default store's artifacts, under the project (re-resolved when the project moves).
ARTIFACTS_DIR = ".ragate/mlartifacts"
# Promotion needs at least this many scored cases per gated metric unless configured.
MIN_SCORED_CASES = 20
REQUIRED_METRICS = ("toxicity", "pii")


class TrackingError(Exception):
    """The tracking server or registry could not be used; the message says why."""


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` for a team server, else a SQLite store in the project."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    (root / ".ragate").mkdir(parents=True, exist_ok=True)
    return _default_uri(root)


def _default_uri(root: Path) -> str:
    return f"sqlite:///{root / '.ragate' / 'mlflow.db'}"


def version_id(chain_version: dict[str, str]) -> str:
    """One short id for everything that identifies a chain's answers."""
    return hashlib.sha256(json.dumps(chain_version, sort_keys=True).encode()).hexdigest()[:16]


# MLflow's own HTTP defaults retry a tracking server that does not answer for minutes (7
# retries, backoff factor 2, 120 s timeouts): a gate run waited 252 s for a server that was
# down before saying so. A user's own settings of these variables win.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def _client(root: Path) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _use_experiment(client: Any, root: Path) -> None:
    """Select the gate experiment; in the default store, its artifacts live in the project.

    MLflow stores an absolute artifact location when it creates an experiment (by default
    ``<cwd>/mlruns``), so a copied or moved project would keep writing into the original
    folder. Here the location is ``<root>/.ragate/mlartifacts``, and when the project has
    moved the store's locations are re-pointed at the copy (its artifacts moved with it).
    """
    import mlflow

    # (mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: compare, do not just test it.)
    if tracking_uri(root) != _default_uri(root):  # a team server decides where artifacts go
        mlflow.set_experiment(EXPERIMENT)
        return
    location = (root / ARTIFACTS_DIR).resolve().as_uri()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        client.create_experiment(EXPERIMENT, artifact_location=location)
    elif experiment.artifact_location.rstrip("/") != location:
        _relocate_artifacts(
            root, experiment.experiment_id, experiment.artifact_location.rstrip("/"), location
        )
    mlflow.set_experiment(EXPERIMENT)


def _relocate_artifacts(root: Path, experiment_id: str, old: str, new: str) -> None:
    """Point the default store's experiment, and the runs and models under it, at ``new``.

    Only locations that were this layout's (``.../.ragate/mlartifacts``) are rewritten for
    past runs: their files moved with the project. An older store's ``<cwd>/mlruns`` keeps
    its past runs where they are; new runs go under the project.
    """
    moved = old.endswith("/" + ARTIFACTS_DIR)
    db = sqlite3.connect(root / ".ragate" / "mlflow.db", timeout=60.0)
    try:
        with db:
            db.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                (new, int(experiment_id)),
            )
            if moved:
                for table, column in (
                    ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"),
                    ("model_versions", "storage_location"),
                    ("model_versions", "source"),
                ):
                    if not _has_column(db, table, column):
                        continue
                    db.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?)"
                        f" WHERE substr({column}, 1, ?) = ?",
                        (new, len(old) + 1, len(old), old),
                    )
    finally:
        db.close()


def _has_column(db: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _sha256(path: Path) -> str:
    return _digest(path.read_bytes() if path.is_file() else None)


def _digest(content: bytes | None) -> str:
    """The recorded form of a file's SHA-256: its first 16 hex digits, or "missing"."""
    return hashlib.sha256(content).hexdigest()[:16] if content is not None else "missing"


def committed_bytes(root: Path, path: Path) -> tuple[bytes | None, str]:
    """The committed content of ``path`` and where it came from.

    In a git work tree, a file git tracks is read as the last commit has it (``git show
    HEAD:<path>``): an edit not committed yet is not what the project reviewed. A file git
    does not track, or a project outside git, is read from disk. ``None`` when there is no
    such content (a file added but never committed, or no file).
    """
    path = path if path.is_absolute() else root / path
    try:
        relative = path.resolve().relative_to(root.resolve())
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(relative)], cwd=root, capture_output=True, timeout=10
        )
        if tracked.returncode == 0:
            shown = subprocess.run(
                ["git", "show", f"HEAD:{relative.as_posix()}"], cwd=root, capture_output=True, timeout=10
            )
            return (shown.stdout if shown.returncode == 0 else None), "the last git commit"
    except (OSError, ValueError, subprocess.SubprocessError):
        pass  # outside the project, or no git: the file as it is
    return (path.read_bytes() if path.is_file() else None), "the file"


@dataclass(frozen=True)
class TrackedRun:
    """Where a gate run went."""

    run_id: str
    model_version: str
    uri: str


def track_gate_run(
    root: Path, report: GateReport, report_paths: list[Path], params: dict[str, str] | None = None
) -> TrackedRun:
    """Log one gate run (params, metrics, artifacts, tags) and tag its chain's model version.

    Every file in ``report_paths`` (whatever the reporters wrote: JSON, Markdown, JUnit,
    HTML...) is logged as an artifact of the run; ``params`` default to :func:`run_params`
    (:class:`TrackingProcess` computes them in the run's process: its child may not know
    the metrics a project registered there)."""
    try:
        return _track(root, report, report_paths, params)
    except UsageError:
        raise
    except Exception as exc:  # a server that is down, a store that is locked, ...
        raise TrackingError(f"tracking to {tracking_uri(root)} failed: {type(exc).__name__}: {exc}") from exc


class TrackingProcess:
    """Tracks a gate run from a child process that starts MLflow while the gates run.

    ``import mlflow`` and opening the SQLite store cost ~3 CPU seconds here (pandas,
    sqlalchemy, the schema check), twice what a warm re-run of the ci gates needs. The
    child started with the run pays that on another core; at the end :meth:`track` hands it
    the report and waits for the logged run. A child that cannot answer (it died, or gave
    no reply) leaves the run to be tracked in this process; an error it reports is raised
    as in :func:`track_gate_run` (``UsageError`` or ``TrackingError``).
    """

    def __init__(self, root: Path, timeout_s: float = 900.0) -> None:
        self.root = root
        self.timeout_s = timeout_s
        self._process: subprocess.Popen[str] | None = subprocess.Popen(
            [sys.executable, "-c", "from gates.tracking import _serve_one; _serve_one()", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def track(self, report: GateReport, report_paths: list[Path]) -> TrackedRun:
        """Log ``report`` (as :func:`track_gate_run`) through the child, else here."""
        params = run_params(self.root, report)  # here, where the project's metrics are known
        process, self._process = self._process, None
        reply: dict[str, Any] | None = None
        if process is not None and process.poll() is None:
            request = json.dumps(
                {"report": report.to_json(), "paths": [str(p) for p in report_paths], "params": params}
            )
            try:
                out, _ = process.communicate(request + "\n", timeout=self.timeout_s)
                lines = [line for line in out.splitlines() if line.startswith('{"ok"')]
                reply = json.loads(lines[-1]) if lines else None
            except (OSError, ValueError, subprocess.TimeoutExpired):
                reply = None
            finally:
                _stop(process)
        elif process is not None:
            _stop(process)
        if reply is None:
            return track_gate_run(self.root, report, report_paths, params)
        if reply["ok"]:
            return TrackedRun(**reply["run"])
        raise (UsageError if reply.get("kind") == "usage" else TrackingError)(str(reply.get("error")))

    def close(self) -> None:
        """Stop the child if the run ended without tracking (a usage error, an interrupt)."""
        process, self._process = self._process, None
        if process is not None:
            _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    with contextlib.suppress(Exception):
        process.communicate(timeout=10)


def _serve_one() -> None:
    """The child of :class:`TrackingProcess`: start MLflow, then track the one run asked for
    on stdin (nothing, when stdin closes first) and print the reply as one JSON line."""
    root = Path(sys.argv[1])
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow  # noqa: F401  (the start-up this process exists to pay early)
    from mlflow.tracking import MlflowClient  # noqa: F401

    if not os.environ.get("MLFLOW_TRACKING_URI") and (root / ".ragate" / "mlflow.db").is_file():
        with contextlib.suppress(Exception):  # an existing store: open it (read only) now
            _client(root).get_experiment_by_name(EXPERIMENT)
    line = sys.stdin.readline()
    if not line.strip():
        return
    request = json.loads(line)
    try:
        report = GateReport.from_json(request["report"])
        run = track_gate_run(root, report, [Path(p) for p in request["paths"]], request["params"])
        reply: dict[str, Any] = {"ok": True, "run": asdict(run)}
    except UsageError as exc:
        reply = {"ok": False, "kind": "usage", "error": str(exc)}
    except TrackingError as exc:
        reply = {"ok": False, "kind": "tracking", "error": str(exc)}
    sys.stdout.write("\n" + json.dumps(reply) + "\n")
    sys.stdout.flush()


def run_params(root: Path, report: GateReport) -> dict[str, str]:
    """The MLflow params of a gate run: environment, chain version and its parts, git commit,
    profile and its hash, each dataset's path and SHA-256, each metric's threshold and rules
    (values cut to MLflow's 500 characters). Reads the profile; imports no MLflow."""
    from gates.profile import load_profile

    chain_version = dict(report.chain_version)
    params: dict[str, Any] = {
        "env": report.env,
        "chain_version": version_id(chain_version),
        "git_commit": _git_commit(root),
        "profile": report.profile,
        "profile_sha256": (report.profile_sha256 or "")[:16],
    }
    # The configured chain's own version (its factory's import string included): what the
    # gates judged, whichever chain the project plugs in.
    params.update({f"chain.{k}": v for k, v in chain_version.items()})
    if report.profile:
        profile = load_profile(report.profile, root)
        for spec in profile.datasets:
            path = spec.path if spec.path.is_absolute() else root / spec.path
            params[f"dataset.{spec.name}.path"] = str(spec.path)
            # An optional dataset (the feedback regression set) may not exist yet.
            params[f"dataset.{spec.name}.sha256"] = _sha256(path) if path.is_file() else "missing"
        for name, gate in profile.metrics.items():
            params[f"threshold.{name}"] = report.thresholds.get(name)
            for rule, value in gate.rules.active().items():
                params[f"rule.{name}.{rule}"] = value
    return {k: str(v)[:500] for k, v in params.items()}


def _track(
    root: Path, report: GateReport, report_paths: list[Path], params: dict[str, str] | None = None
) -> TrackedRun:
    import mlflow

    client = _client(root)
    env = report.env
    chain_version = dict(report.chain_version)
    vid = version_id(chain_version)
    params = run_params(root, report) if params is None else params
    _use_experiment(client, root)
    verdict = "PASS" if report.passed else "FAIL"
    metrics: dict[str, float] = {}
    for gate in report.gates:
        name = gate.name
        if gate.observed is not None:
            metrics[f"{name}.observed"] = float(gate.observed)
        if gate.interval:
            metrics[f"{name}.ci_low"], metrics[f"{name}.ci_high"] = map(float, gate.interval)
        metrics[f"{name}.n_scored"] = float(gate.n_scored)
        metrics[f"{name}.n_unscored"] = float(gate.n_unscored)
    tags = {
        "ragate.env": env,
        "ragate.chain_version": vid,
        "ragate.verdict": verdict,
        **{f"ragate.gate.{g.name}": "PASS" if g.passed else "FAIL" for g in report.gates},
    }
    # The least MLflow work that records the run: tags with the run, params and metrics in
    # one batch, and the reports with cases.json in one artifact upload.
    with mlflow.start_run(run_name=f"gate-{env}-{vid[:8]}", tags=tags) as run:
        _log_batch(client, run.info.run_id, params, metrics)
        with tempfile.TemporaryDirectory(prefix="ragate-artifacts-") as folder:
            for path in report_paths:
                shutil.copyfile(path, Path(folder) / path.name)
            with (Path(folder) / "cases.json").open("w", encoding="utf-8") as handle:
                write_cases_json(report.cases, handle)
            client.log_artifacts(run.info.run_id, folder)
        if not chain_version:
            # The run stopped before the chain was known (a usage error, an interrupt): it is
            # recorded, but no model version is made for a chain nobody can name.
            return TrackedRun(run.info.run_id, "", tracking_uri(root))
        version = _model_version_for(client, root, vid, chain_version, run.info.run_id)
    failed = [g.name for g in report.failing] + [f"{m} (not run)" for m in report.missing]
    for key, value in {
        f"gate.{env}.run_id": run.info.run_id,
        f"gate.{env}.passed": str(report.passed).lower(),
        f"gate.{env}.failed": ", ".join(failed)[:4000],
        # What the promotion policy checks: which profile judged, and on how many cases.
        f"gate.{env}.profile": str(report.profile or ""),
        f"gate.{env}.profile_sha256": str(report.profile_sha256 or ""),
        f"gate.{env}.scored_cases": str(scored_cases(report)),
    }.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, key, value)
    return TrackedRun(run.info.run_id, version, tracking_uri(root))


def _log_batch(client: Any, run_id: str, params: dict[str, str], metrics: dict[str, float]) -> None:
    """Params and metrics in as few calls as MLflow's batch limits allow (usually one)."""
    import time

    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params_list = [Param(k, v) for k, v in params.items()]
    metrics_list = [Metric(k, v, now, 0) for k, v in metrics.items()]
    while params_list or metrics_list:
        batch_params, params_list = params_list[:100], params_list[100:]
        room = 1000 - len(batch_params)
        batch_metrics, metrics_list = metrics_list[:room], metrics_list[room:]
        client.log_batch(run_id, metrics=batch_metrics, params=batch_params)


def champion_baseline(root: Path, env: str) -> ChampionBaseline | None:
    """The champion's per-case scores from its gate run (``None`` when there is no champion).

    The champion's run of the same profile ``env`` is preferred; else its prod run. A
    champion with no recorded run gives an empty baseline (the regression gate then fails
    closed). Raises :class:`TrackingError` when the store cannot be read.
    """
    try:
        client = _client(root)
        try:
            version = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
        except Exception:
            return None  # no registered model or no champion yet
        run_id = version.tags.get(f"gate.{env}.run_id") or version.tags.get("gate.prod.run_id")
        if not run_id:
            return ChampionBaseline(str(version.version), None, {})
        import mlflow

        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="cases.json")
        cases = json.loads(Path(local).read_text(encoding="utf-8"))["cases"]
    except Exception as exc:
        raise TrackingError(f"cannot read the champion's scores: {type(exc).__name__}: {exc}") from exc
    return ChampionBaseline(str(version.version), run_id, {c["id"]: c["scores"] for c in cases})


def write_cases_json(cases: Iterable[CaseRecord], handle: IO[str]) -> None:
    """Write ``cases.json`` (the champion's per-case scores, read by :func:`champion_baseline`)
    into ``handle`` one case at a time: exactly ``json.dumps({"cases": [c.to_dict() ...]},
    indent=2)``, without every case's dict (or the whole text) in memory. Each case is dumped
    on its own and indented to its depth (ASCII-escaped JSON has no newline inside a string)."""
    separator = '{\n  "cases": [\n    '
    for case in cases:
        handle.write(separator + json.dumps(case.to_dict(), indent=2).replace("\n", "\n    "))
        separator = ",\n    "
    handle.write('{\n  "cases": []\n}' if separator.startswith("{") else "\n  ]\n}")


def scored_cases(report: GateReport) -> int:
    """The fewest distinct cases any gated metric scored (repeated samples count once)."""
    counts = []
    for metric in report.thresholds:
        ids = {re.sub(r"#r\d+$", "", c.id) for c in report.cases if c.scores.get(metric) is not None}
        counts.append(len(ids))
    return min(counts, default=0)


def _model_version_for(client: Any, root: Path, vid: str, chain_version: dict[str, str], run_id: str) -> str:
    """The registered version of the configured chain, created the first time it is judged:
    the chain's ``mlflow_model()`` when it has one, else a version holding its tags only."""
    import mlflow

    found = _versions(client, f"tags.chain_version = '{vid}'")
    if found:
        return str(found[0].version)
    from gates.chain import configured_chain_factory

    # Built, not prepared: only its registration hook is read.
    model = getattr(configured_chain_factory(root)(), "mlflow_model", None)
    model = model() if callable(model) else None
    if model is not None:
        info = mlflow.pyfunc.log_model(
            name="chain",
            python_model=model,
            registered_model_name=REGISTERED_MODEL,
            pip_requirements=["ragate"],
        )
        version = str(info.registered_model_version)
    else:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # it exists already
            client.create_registered_model(REGISTERED_MODEL)
        version = str(
            client.create_model_version(
                REGISTERED_MODEL,
                source=mlflow.get_artifact_uri(),
                run_id=run_id,
                description="registered by ragate from the chain's version (the chain has no mlflow_model())",
            ).version
        )
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
    refusal = _policy_refusal(root, env, tags, client)
    if refusal:
        client.update_model_version(
            REGISTERED_MODEL, version.version, f"FAILURE: promotion to {alias} refused: {refusal}"
        )
        raise UsageError(f"refusing to promote version {version.version} to {alias}: {refusal}")
    if alias == "champion":
        # What a rollback returns to: the champion this version replaces.
        previous = _alias_version(client, "champion")
        if previous and previous != str(version.version):
            client.set_model_version_tag(REGISTERED_MODEL, version.version, "champion.previous", previous)
    client.set_registered_model_alias(REGISTERED_MODEL, alias, version.version)
    client.update_model_version(
        REGISTERED_MODEL, version.version, f"SUCCESS: promoted to {alias} after {summary}: all gates passed"
    )
    return f"{REGISTERED_MODEL} version {version.version} is now @{alias} ({summary} passed)"


@dataclass(frozen=True)
class PromotionPolicy:
    """``[tool.ragate.promotion]``: what a passed gate run must also show to move an alias.

    ``min_scored_cases``: each gated metric scored at least this many distinct cases;
    ``allowed_profile_sha256``: SHA-256 digests of profile files trusted besides the
    committed ``<profiles_dir>/<env>.yaml``; ``required_metrics``: metrics the run's profile
    must gate (default toxicity and pii: a chatbot promoted without them proves nothing
    about the two harms users see first); ``staging_before_champion``: a version becomes
    champion only after its staging gate run passed too (default true: dev -> staging ->
    prod, never straight to prod).
    """

    min_scored_cases: int = MIN_SCORED_CASES
    allowed_profile_sha256: tuple[str, ...] = ()
    required_metrics: tuple[str, ...] = REQUIRED_METRICS
    staging_before_champion: bool = True

    @classmethod
    def load(cls, root: Path) -> PromotionPolicy:
        from ragate_core.project import tool_table

        table = tool_table(root).get("promotion", {})
        where = f"{root / 'pyproject.toml'} [tool.ragate.promotion]"
        if not isinstance(table, dict):
            raise UsageError(f"{where}: expected a table")
        known = ("min_scored_cases", "allowed_profile_sha256", "required_metrics", "staging_before_champion")
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        staging_first = table.get("staging_before_champion", True)
        if not isinstance(staging_first, bool):
            raise UsageError(f"{where}: staging_before_champion: {staging_first!r} is not true or false")
        required = table.get("required_metrics", list(REQUIRED_METRICS))
        if not isinstance(required, list) or not all(isinstance(m, str) for m in required):
            raise UsageError(f"{where}: required_metrics: expected a list of metric names")
        minimum = table.get("min_scored_cases", MIN_SCORED_CASES)
        if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
            raise UsageError(f"{where}: min_scored_cases: {minimum!r} is not a whole number >= 1")
        allowed = table.get("allowed_profile_sha256", [])
        if not isinstance(allowed, list) or not all(
            isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in allowed
        ):
            raise UsageError(
                f"{where}: allowed_profile_sha256: expected a list of 64-hex-digit SHA-256 digests"
            )
        return cls(minimum, tuple(allowed), tuple(required), staging_first)


def _changed_datasets(root: Path, client: Any, run_id: str | None) -> str:
    """The datasets a gate run read that differ from their committed content ('' if none):
    the run's ``dataset.<name>.sha256`` params against :func:`committed_bytes`."""
    if not run_id:
        return "no recorded run"
    try:
        params = client.get_run(run_id).data.params
    except Exception as exc:  # a store that lost the run: nothing to check it against
        return f"a run ({run_id}) the tracking store cannot show ({type(exc).__name__})"
    out = []
    for key, recorded in sorted(params.items()):
        if not (key.startswith("dataset.") and key.endswith(".path")):
            continue
        name = key[len("dataset.") : -len(".path")]
        content, source = committed_bytes(root, Path(recorded))
        expected = _digest(content)
        used = params.get(f"dataset.{name}.sha256", "")
        if used != expected:
            out.append(f"{recorded} with sha256 {used[:12]}, not {expected[:12]} ({source})")
    return "; ".join(out)


def _policy_refusal(root: Path, env: str, tags: dict[str, str], client: Any = None) -> str:
    """Why the promotion policy refuses this version's passed ``env`` run ("" if it does not).

    Rule ``committed-profile``: the run's profile is the project's committed profile of that
    environment (same content hash as in the last git commit, :func:`committed_bytes`) or one
    allowed by hash. Rule ``committed-datasets`` (with ``client``): every dataset the run read
    is its committed content. Rule ``min-scored-cases``: the
    run scored enough cases to prove something. Rule ``required-metrics``: the profile gates
    the policy's required metrics. Rule ``proving-profile``: every gated metric has a rule a
    score could fail (:func:`gates.profile.vacuous_metrics`).
    """
    from gates.profile import committed_profile, load_profile, vacuous_metrics

    policy = PromotionPolicy.load(root)
    if env == "prod" and policy.staging_before_champion and tags.get("gate.staging.passed") != "true":
        return (
            "rule staging-before-champion: this version has no passed staging gate run; run "
            "pytest -m gate --gate-env staging (and ragate promote --to staging) first "
            "([tool.ragate.promotion] staging_before_champion)"
        )
    committed = committed_profile(root, env)
    used, digest = tags.get(f"gate.{env}.profile") or "?", tags.get(f"gate.{env}.profile_sha256") or ""
    content, source = committed_bytes(root, committed)
    expected = hashlib.sha256(content).hexdigest() if content is not None else "missing"
    if digest != expected and digest not in policy.allowed_profile_sha256:
        return (
            f"rule committed-profile: the {env} gate run used {used} "
            f"(sha256 {digest[:12] or 'not recorded'}), "
            f"not the committed {committed} (sha256 {expected[:12]}, as in {source}) nor a profile "
            f"allowed by [tool.ragate.promotion] allowed_profile_sha256; commit the profile, or run "
            f"pytest -m gate --gate-env {env} with the committed one"
        )
    changed = _changed_datasets(root, client, tags.get(f"gate.{env}.run_id")) if client is not None else ""
    if changed:
        return (
            f"rule committed-datasets: the {env} gate run read {changed}; run the gates on the "
            "committed datasets"
        )
    scored = int(tags.get(f"gate.{env}.scored_cases") or 0)
    if scored < policy.min_scored_cases:
        return (
            f"rule min-scored-cases: the {env} gate run scored {scored} cases on its weakest metric, "
            f"fewer than {policy.min_scored_cases} ([tool.ragate.promotion] min_scored_cases)"
        )
    trusted = committed if digest == expected else root / used  # an absolute `used` stays
    try:
        if hashlib.sha256(trusted.read_bytes()).hexdigest() != digest:
            raise OSError("changed since the run")
        profile = load_profile(str(trusted), root)
    except (OSError, UsageError) as exc:
        return f"rule proving-profile: cannot read the {env} gate run's profile {trusted} to check it: {exc}"
    missing = [m for m in policy.required_metrics if m not in profile.metrics]
    if missing:
        return (
            f"rule required-metrics: the {env} gate run's profile {trusted} does not gate "
            f"{', '.join(missing)} ([tool.ragate.promotion] required_metrics)"
        )
    vacuous = vacuous_metrics(profile)
    if vacuous:
        return (
            f"rule proving-profile: in {trusted}, no score could fail the rules of "
            f"{', '.join(vacuous)} (e.g. min_mean 0, or a per-case threshold of 0 under "
            "max_violations); give each gated metric a rule a bad answer can fail"
        )
    return ""


def _alias_version(client: Any, alias: str) -> str:
    """The version ``alias`` points at ('' when it points nowhere)."""
    try:
        return str(client.get_model_version_by_alias(REGISTERED_MODEL, alias).version)
    except Exception:
        return ""


def rollback(root: Path) -> str:
    """Move ``champion`` back to the champion it replaced (its ``champion.previous`` tag, set
    by :func:`promote`): a version that was champion before, never one that was refused or
    never promoted. ``UsageError`` when no earlier champion is recorded."""
    client = _guarded(root)
    _require_model(client, root)
    current = _alias_version(client, "champion")
    if not current:
        raise UsageError(f"{REGISTERED_MODEL} has no @champion to roll back")
    tags = client.get_model_version(REGISTERED_MODEL, current).tags
    target = tags.get("champion.previous", "")
    if not target:
        raise UsageError(
            f"version {current} replaced no recorded champion: nothing to roll back to "
            "(move @champion with ragate promote --to champion)"
        )
    if client.get_model_version(REGISTERED_MODEL, target).tags.get("gate.prod.passed") != "true":
        raise UsageError(f"the previous champion, version {target}, has no passed prod gate run now")
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
