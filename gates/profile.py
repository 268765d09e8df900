"""Threshold profiles: one YAML file per environment (``ci``, ``staging``, ``prod``).

A profile says which datasets (and which slice of them) run, how often each case is
sampled, and per metric the per-case threshold and the aggregate rules that gate
promotion. It is validated when pytest starts; every problem names the file and key.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gates import ENVIRONMENTS
from ragate_core.errors import UsageError

PROFILES_DIR = Path(__file__).parent / "profiles"
# Numbers are strict: YAML's ``true`` or ``"0.5"`` is a type error, never read as 1.0 / 0.5.
Number = Annotated[float, Field(strict=True)]
NonNegative = Annotated[float, Field(ge=0.0, strict=True)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
Count = Annotated[int, Field(ge=0, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateRules(_Strict):
    """Aggregate rules over one metric's per-case values; each set rule is one gate.

    Rules registered in :mod:`gates.verdict` beyond these fields (``@rule(...)``, also from
    another package) are accepted as extra keys; :func:`load_profile` checks every extra
    key against that registry and names the known rules when it is not there."""

    model_config = ConfigDict(extra="allow", frozen=True)

    min_mean: Number | None = None
    max_mean: Number | None = None
    min_pass_rate: Fraction | None = None
    min_lower_bound: Number | None = None
    max_upper_bound: Number | None = None
    max_violations: Count | None = None
    max_p95: NonNegative | None = None
    max_unscored_share: Fraction = 0.0
    # Largest allowed drop of the mean against the champion's scores on the same cases;
    # the gate fails when the paired drop is significant *and* larger than this.
    max_regression: NonNegative | None = None

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
    """How one metric gates: a per-case threshold and aggregate rules.

    A metric listed without rules (no ``rules:`` key, an empty one, or only
    ``max_unscored_share``) gates as deepeval's ``assert_test`` does: every case must pass
    its threshold (``min_pass_rate: 1.0``). Listed and gating nothing, it would pass
    whatever the metric said."""

    threshold: Number | None = None
    rules: GateRules = GateRules(min_pass_rate=1.0)

    @field_validator("rules", mode="before")
    @classmethod
    def _every_case_by_default(cls, value: Any) -> Any:
        if value is None:
            return {"min_pass_rate": 1.0}
        if isinstance(value, dict) and not set(value) - {"max_unscored_share"}:
            return {**value, "min_pass_rate": 1.0}
        return value

    # "llm": deepeval's LLM metric with the judge of [tool.ragate.judge] (gates.metrics.llm_metrics).
    judge: Literal["offline", "llm"] = "offline"


class Sample(_Strict):
    """Which cases of a dataset run: all, a stratified subset, or a tag filter."""

    per_tag: Annotated[int, Field(ge=1)] | None = None
    tags: list[str] | None = None
    limit: Annotated[int, Field(ge=1)] | None = None


class DatasetSpec(_Strict):
    """A dataset file, how to read it, and which metrics judge it.

    ``kind``: ``golden`` (question, reference answer, source ids), ``adversarial``
    (prompts), or ``regression`` (questions from user feedback, ``ragate feedback
    export``: a corrected answer as ``ground_truth`` when given, never source ids, so
    metrics that read source ids are out of scope and may not be listed, and
    answer_correctness judges only the rows with a ground truth). ``optional: true``: a
    missing or empty file contributes no case instead of being an error (a regression set
    before any feedback arrived); the other datasets still gate.
    """

    name: str = Field(min_length=1)
    path: Path
    kind: Literal["golden", "adversarial", "regression"] = "golden"
    optional: bool = False
    sample: Sample = Sample()
    metrics: list[str] | None = None


class Sampling(_Strict):
    """Repeated sampling: each case answered ``repeats`` times with different seeds."""

    repeats: Annotated[int, Field(ge=1, le=20)] = 1
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None

    @property
    def active(self) -> bool:
        """Whether the chain is called as ``invoke(question, seed=..., temperature=...)``."""
        return self.repeats > 1 or self.temperature is not None


class Pricing(_Strict):
    """Prices per 1,000 tokens, for the ``cost`` metric (gates/metrics/cost.py)."""

    currency: str = Field(min_length=1)
    prompt_per_1k: Annotated[float, Field(ge=0.0)]
    completion_per_1k: Annotated[float, Field(ge=0.0)]


class MonitorRule(_Strict):
    """How ``ragate monitor`` watches one metric in production (gates/monitor.py).

    ``threshold``: the per-case threshold for the failing share (default: the profile's
    ``metrics.<name>.threshold``, else the metric's own). ``max_drop``: the tolerated
    worsening of the mean against the baseline (absolute for a score in [0, 1]; a fraction
    of the baseline mean for a metric with a unit, such as latency in ms); the monitor
    alerts when the mean got worse by more than this *and* the 95% bootstrap interval of
    the difference lies wholly on the worse side. ``max_failing_share``: alert when more
    than this share of the window's cases fails the per-case threshold (optional).
    """

    threshold: Number | None = None
    max_drop: NonNegative = 0.05
    max_failing_share: Fraction | None = None


class MonitorSpec(_Strict):
    """The ``monitor:`` section: which production answers ``ragate monitor`` scores and how
    each metric alerts. ``since`` and ``sample`` are defaults its options override."""

    since: str = "1d"
    sample: Annotated[int, Field(ge=1)] | None = None
    metrics: dict[str, MonitorRule] = Field(min_length=1)

    @field_validator("since")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not re.fullmatch(r"\s*[1-9]\d*\s*[dhm]\s*", value):
            raise ValueError("give a positive duration like 1d, 12h or 30m")
        return value.strip()


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
    # Rules for `ragate monitor` on production traces (prod profile).
    monitor: MonitorSpec | None = None
    # Filled by load_profile: where it came from and what it was.
    source: Path = Path("<memory>")
    sha256: str = ""

    @model_validator(mode="after")
    def _datasets_unique(self) -> GateProfile:
        first: dict[str, int] = {}
        for i, spec in enumerate(self.datasets):
            if spec.name in first:
                raise ValueError(
                    f"datasets[{i}].name: {spec.name!r} is already the name of "
                    f"datasets[{first[spec.name]}]; every dataset needs its own name"
                )
            first[spec.name] = i
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
        text = io.StringIO(raw.decode("utf-8"))
        text.name = str(path)  # PyYAML names the stream in its marks: the file, not "<unicode string>"
        data = yaml.load(text, Loader=_UniqueKeyLoader)
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
    if profile.monitor is not None:
        _check_monitor(path, profile)
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
        if target.is_dir():
            raise UsageError(f"{path}: datasets[{i}].path: {target} is a folder; give a JSONL file in it")
        if not target.is_file() and not (dataset.optional and not target.exists()):
            raise UsageError(
                f"{path}: datasets[{i}].path: dataset file {target} not found"
                + ("" if dataset.optional else " (optional: true lets a missing file contribute no case)")
            )
        for name in dataset.metrics or []:
            if name not in profile.metrics:
                raise UsageError(
                    f"{path}: datasets[{i}].metrics: {name!r} has no entry under metrics "
                    f"(defined: {', '.join(profile.metrics)})"
                )
            if dataset.kind == "regression" and name in known and needs_source_ids(get_metric(name)):
                raise UsageError(
                    f"{path}: datasets[{i}].metrics: {name!r} reads the cases' source_ids, which "
                    "regression cases (from feedback) do not have; leave it out of this dataset"
                )
    return profile


def needs_source_ids(metric: object) -> bool:
    """Whether a metric reads the cases' relevant source ids (the retrieval metrics): what
    its ``reads`` returns for a case says so."""
    from gates.metrics.base import MetricCase

    reads = getattr(metric, "reads", None)
    try:
        return callable(reads) and "source_ids" in reads(MetricCase(id="", question="", answer=""))
    except Exception:  # a metric that cannot describe a bare case: assume it does not
        return False


def _check_monitor(path: Path, profile: GateProfile) -> None:
    """``monitor.metrics.<name>``: a known metric; a threshold in the metric's range."""
    from gates.metrics.base import get_metric, metric_names

    assert profile.monitor is not None
    known = metric_names()
    for name, rule in profile.monitor.metrics.items():
        where = f"{path}: monitor.metrics.{name}"
        if name not in known:
            raise UsageError(f"{where}: unknown metric; known metrics: {', '.join(known)}")
        if name == "cost" and profile.pricing is None:
            raise UsageError(
                f"{where}: needs a pricing: section (currency, prompt_per_1k, completion_per_1k)"
            )
        if rule.threshold is None:
            continue
        if getattr(get_metric(name), "unit", None) is None and not 0.0 <= rule.threshold <= 1.0:
            raise UsageError(f"{where}.threshold: {rule.threshold} is outside [0, 1]")
        if rule.threshold < 0:
            raise UsageError(f"{where}.threshold: {rule.threshold} is negative; give a value >= 0")


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
        if not err["loc"] and err["type"] == "value_error":
            # A whole-profile rule (GateProfile's own validators) names its key itself.
            lines.append(str(err["ctx"]["error"]))
        elif err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key{_did_you_mean(str(err['loc'][-1]))}")
        elif err["type"] == "missing":
            lines.append(f"{key}: missing key")
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return lines


def _did_you_mean(word: str) -> str:
    """' (did you mean 'threshold'?)' for a key close to one a profile has, else ''."""
    import difflib

    models = (GateProfile, MetricGate, GateRules, DatasetSpec, Sample, Sampling, Pricing)
    known = sorted({name for model in (*models, MonitorSpec, MonitorRule) for name in model.model_fields})
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def vacuous_metrics(profile: GateProfile) -> list[str]:
    """The gated metrics of ``profile`` that no score could fail: every rule that judges
    quality is at the end of the metric's range (``min_mean: 0``, a per-case threshold of 0
    under ``max_violations``, ``max_mean`` at 1 ...). ``max_unscored_share`` and paired
    rules (``max_regression``) do not count: the first fails only when nothing is scored,
    the second only against a champion. Rules from other packages count as able to fail.
    Values lie in [0, 1] except for metrics with a ``unit`` (latency, cost: [0, inf))."""
    from gates.metrics.base import get_metric

    vacuous = []
    for name, gate in profile.metrics.items():
        metric = get_metric(name)
        top = float("inf") if getattr(metric, "unit", None) is not None else 1.0
        higher = metric.direction == "higher_is_better"
        threshold = gate.threshold if gate.threshold is not None else metric.default_threshold
        # Whether some value fails the per-case threshold.
        cases_can_fail = threshold > 0.0 if higher else threshold < top
        rules = {k: v for k, v in gate.rules.active().items() if k != "max_unscored_share"}
        if not any(_rule_can_fail(k, v, top, cases_can_fail) for k, v in rules.items()):
            vacuous.append(name)
    return vacuous


def _rule_can_fail(rule: str, value: float, top: float, cases_can_fail: bool) -> bool:
    if rule in ("min_mean", "min_lower_bound"):
        return value > 0.0
    if rule in ("max_mean", "max_upper_bound", "max_p95"):
        return value < top
    if rule == "min_pass_rate":
        return value > 0.0 and cases_can_fail
    if rule == "max_violations":
        return cases_can_fail
    return True  # a rule registered elsewhere: assume it can
