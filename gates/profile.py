"""Threshold profiles: one YAML file per environment (``ci``, ``staging``, ``prod``).

A profile says which datasets (and which slice of them) run, how often each case is
sampled, and per metric the per-case threshold and the aggregate rules that gate
promotion. It is validated when pytest starts; every problem names the file and key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gates import ENVIRONMENTS
from ragate_core.errors import UsageError

PROFILES_DIR = Path(__file__).parent / "profiles"
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateRules(_Strict):
    """Aggregate rules over one metric's per-case values; each set rule is one gate.

    Rules registered in :mod:`gates.verdict` beyond these fields (``@rule(...)``, also from
    another package) are accepted as extra keys; :func:`load_profile` checks every extra
    key against that registry and names the known rules when it is not there."""

    model_config = ConfigDict(extra="allow", frozen=True)

    min_mean: float | None = None
    max_mean: float | None = None
    min_pass_rate: Fraction | None = None
    min_lower_bound: float | None = None
    max_upper_bound: float | None = None
    max_violations: Annotated[int, Field(ge=0)] | None = None
    max_p95: Annotated[float, Field(ge=0.0)] | None = None
    max_unscored_share: Fraction = 0.0
    # Largest allowed drop of the mean against the champion's scores on the same cases;
    # the gate fails when the paired drop is significant *and* larger than this.
    max_regression: Annotated[float, Field(ge=0.0)] | None = None

    def active(self) -> dict[str, float]:
        """The rules decided from this run's own scores (paired rules such as max_regression
        need the champion's)."""
        from gates.verdict import rule_spec

        return {
            k: v
            for k, v in self.model_dump().items()
            if v is not None and not getattr(rule_spec(k), "paired", False)
        }


class MetricGate(_Strict):
    """How one metric gates: a per-case threshold and aggregate rules."""

    threshold: float | None = None
    rules: GateRules = GateRules()
    # "llm": deepeval's LLM metric with the judge of [tool.ragate.judge] (gates.metrics.llm_metrics).
    judge: Literal["offline", "llm"] = "offline"


class Sample(_Strict):
    """Which cases of a dataset run: all, a stratified subset, or a tag filter."""

    per_tag: Annotated[int, Field(ge=1)] | None = None
    tags: list[str] | None = None
    limit: Annotated[int, Field(ge=1)] | None = None


class DatasetSpec(_Strict):
    """A dataset file, how to read it, and which metrics judge it."""

    name: str = Field(min_length=1)
    path: Path
    kind: Literal["golden", "adversarial"] = "golden"
    sample: Sample = Sample()
    metrics: list[str] | None = None


class Sampling(_Strict):
    """Repeated sampling: each case answered ``repeats`` times with different seeds."""

    repeats: Annotated[int, Field(ge=1, le=20)] = 1
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None


class Pricing(_Strict):
    """Prices per 1,000 tokens, for the ``cost`` metric (gates/metrics/cost.py)."""

    currency: str = Field(min_length=1)
    prompt_per_1k: Annotated[float, Field(ge=0.0)]
    completion_per_1k: Annotated[float, Field(ge=0.0)]


class GateProfile(_Strict):
    """One environment's gate definition."""

    # One of the known environments: promotion reads a gate run by its environment, so a
    # made-up one ("qa") would gate nothing anyone checks.
    env: Literal["ci", "staging", "prod"]
    description: str = ""
    datasets: list[DatasetSpec] = Field(min_length=1)
    sampling: Sampling = Sampling()
    concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    bootstrap_resamples: Annotated[int, Field(ge=100, le=100_000)] = 2000
    metrics: dict[str, MetricGate] = Field(min_length=1)
    # Which reporters write files (gates.reporters; default json, markdown, junit, html);
    # --gate-reports overrides it.
    reports: list[str] | None = None
    # Token prices for the cost metric (required when metrics has cost).
    pricing: Pricing | None = None
    # Filled by load_profile: where it came from and what it was.
    source: Path = Path("<memory>")
    sha256: str = ""

    @model_validator(mode="after")
    def _datasets_unique(self) -> GateProfile:
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"datasets: names must be unique, got {names}")
        return self

    def metrics_for(self, dataset: DatasetSpec) -> list[str]:
        return [m for m in self.metrics if dataset.metrics is None or m in dataset.metrics]


def profile_path(env_or_path: str, profiles_dir: Path | None = None) -> Path:
    """``ci``/``staging``/``prod`` name a shipped profile; anything else is a YAML path."""
    if env_or_path.endswith((".yaml", ".yml")):
        return Path(env_or_path)
    return (profiles_dir or PROFILES_DIR) / f"{env_or_path}.yaml"


def project_profiles_dir(root: Path) -> Path:
    """Where the project keeps its committed profiles: ``[tool.ragate.gates] profiles_dir``
    (relative to ``root``), default ``gates/profiles``."""
    from ragate_core.project import tool_table

    configured = tool_table(root).get("gates", {}).get("profiles_dir", "gates/profiles")
    folder = Path(str(configured))
    return folder if folder.is_absolute() else root / folder


def committed_profile(root: Path, env: str) -> Path:
    """The profile file that ``--gate-env <env>`` gates with and that promotion trusts:
    the project's own ``<profiles_dir>/<env>.yaml`` when it has one, else the shipped one."""
    own = project_profiles_dir(root) / f"{env}.yaml"
    return own if own.is_file() else PROFILES_DIR / f"{env}.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key written twice in one mapping is an error
    (plain YAML keeps the last silently: a doubled ``threshold`` would hide a typo)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} written twice (line {seen[key]} and line {line}); keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_profile(env_or_path: str, root: Path, profiles_dir: Path | None = None) -> GateProfile:
    """Load and validate a profile; dataset paths resolve against the project ``root``."""
    from gates.metrics.base import get_metric, metric_names

    if profiles_dir is None and not env_or_path.endswith((".yaml", ".yml")):
        path = committed_profile(root, env_or_path)
    else:
        path = profile_path(env_or_path, profiles_dir)
    if not path.is_file():
        raise UsageError(
            f"{path}: no such gate profile; use --gate-env {{{','.join(ENVIRONMENTS)}}} or a .yaml path"
        )
    raw = path.read_bytes()
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with keys env, datasets, metrics")
    try:
        profile = GateProfile.model_validate(
            data | {"source": path, "sha256": hashlib.sha256(raw).hexdigest()}
        )
    except ValidationError as exc:
        raise UsageError(f"{path}: invalid gate profile:\n  " + "\n  ".join(_describe(exc))) from exc

    known = metric_names()
    for name, gate in profile.metrics.items():
        if name not in known:
            raise UsageError(f"{path}: metrics.{name}: unknown metric; known metrics: {', '.join(known)}")
        # Every metric but latency (which has a unit, ms) scores in [0, 1].
        if getattr(get_metric(name), "unit", None) is None:
            _check_ranges(path, name, gate)
        else:
            _check_non_negative(path, name, gate)
    _check_rules(path, profile)
    if "cost" in profile.metrics and profile.pricing is None:
        raise UsageError(
            f"{path}: metrics.cost: needs a pricing: section "
            "(currency, prompt_per_1k, completion_per_1k: prices per 1,000 tokens)"
        )
    if profile.reports is not None:
        from gates.reporters import parse_reporters

        try:
            parse_reporters(",".join(profile.reports))
        except UsageError as exc:
            raise UsageError(f"{path}: reports: {exc}") from exc
    for i, dataset in enumerate(profile.datasets):
        target = dataset.path if dataset.path.is_absolute() else root / dataset.path
        if not target.is_file():
            raise UsageError(f"{path}: datasets[{i}].path: dataset file {target} not found")
        for name in dataset.metrics or []:
            if name not in profile.metrics:
                raise UsageError(
                    f"{path}: datasets[{i}].metrics: {name!r} has no entry under metrics "
                    f"(defined: {', '.join(profile.metrics)})"
                )
    return profile


def _check_ranges(path: Path, name: str, gate: MetricGate) -> None:
    if gate.threshold is not None and not 0.0 <= gate.threshold <= 1.0:
        raise UsageError(f"{path}: metrics.{name}.threshold: {gate.threshold} is outside [0, 1]")
    for key in ("min_mean", "max_mean", "min_lower_bound", "max_upper_bound"):
        value = getattr(gate.rules, key)
        if value is not None and not 0.0 <= value <= 1.0:
            raise UsageError(f"{path}: metrics.{name}.rules.{key}: {value} is outside [0, 1]")


def _check_non_negative(path: Path, name: str, gate: MetricGate) -> None:
    # A metric with a unit (milliseconds) is never negative: a negative bound is a typo.
    if gate.threshold is not None and gate.threshold < 0:
        raise UsageError(f"{path}: metrics.{name}.threshold: {gate.threshold} is negative; give a value >= 0")
    for key in ("min_mean", "max_mean", "min_lower_bound", "max_upper_bound"):
        value = getattr(gate.rules, key)
        if value is not None and value < 0:
            raise UsageError(f"{path}: metrics.{name}.rules.{key}: {value} is negative; give a value >= 0")


def _check_rules(path: Path, profile: GateProfile) -> None:
    """Extra rule keys must name a registered rule (gates.verdict.RULES) with a valid value."""
    from gates.verdict import check_rule_value, rule_names

    for name, gate in profile.metrics.items():
        for key, value in (gate.rules.model_extra or {}).items():
            if key not in rule_names():
                raise UsageError(
                    f"{path}: metrics.{name}.rules.{key}: unknown key; known rules: {', '.join(rule_names())}"
                )
            try:
                check_rule_value(key, value)
            except ValueError as exc:
                raise UsageError(f"{path}: metrics.{name}.rules.{key}: {exc}") from exc


def _describe(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
        elif err["type"] == "missing":
            lines.append(f"{key}: missing key")
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return lines
