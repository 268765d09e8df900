"""Threshold profiles: the shipped ones load; every bad one names the file and the key."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates.metrics.base import metric_names
from gates.profile import (
    ENVIRONMENTS,
    PROFILES_DIR,
    GateProfile,
    load_profile,
    profile_path,
)
from ragate_core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_shipped_profiles_load_against_the_repo(env: str) -> None:
    profile = load_profile(env, ROOT)

    assert profile.env == env
    assert profile.source == PROFILES_DIR / f"{env}.yaml"
    assert profile.sha256 == hashlib.sha256(profile.source.read_bytes()).hexdigest()
    assert set(profile.metrics) <= set(metric_names())
    assert {"faithfulness", "answer_relevancy", "toxicity", "pii", "latency"} <= set(profile.metrics)
    for dataset in profile.datasets:
        assert (ROOT / dataset.path).is_file()
    for name, gate in profile.metrics.items():
        assert gate.rules.active(), f"{env}: {name} has no rule"


def test_the_profiles_grow_stricter_from_ci_to_prod() -> None:
    ci, staging, prod = (load_profile(env, ROOT) for env in ENVIRONMENTS)
    assert ci.datasets[0].sample.per_tag is not None  # a stratified subset
    assert staging.datasets[0].sample.per_tag is None  # the full golden set
    assert staging.metrics["faithfulness"].rules.min_lower_bound is not None
    assert prod.sampling.repeats > 1
    assert {d.kind for d in prod.datasets} == {"golden", "adversarial", "regression"}


def test_profile_path_names_a_shipped_profile_or_a_file() -> None:
    assert profile_path("staging") == PROFILES_DIR / "staging.yaml"
    assert profile_path("team/gates.yml") == Path("team/gates.yml")
    assert profile_path("ci", Path("elsewhere")) == Path("elsewhere/ci.yaml")


GOOD: dict[str, Any] = {
    "env": "ci",
    "datasets": [{"name": "golden", "path": "qa.jsonl"}],
    "metrics": {
        "faithfulness": {"threshold": 0.5, "rules": {"min_mean": 0.5}},
        "latency": {"threshold": 20000, "rules": {"max_p95": 15000}},
    },
}


def write(tmp_path: Path, data: Any, name: str = "team.yaml") -> Path:
    (tmp_path / "qa.jsonl").write_text("")
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def changed(**changes: Any) -> dict[str, Any]:
    """GOOD with ``changes`` applied; keys are dotted paths, ``None`` deletes."""
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return data


def test_a_good_custom_profile_loads(tmp_path: Path) -> None:
    profile = load_profile(str(write(tmp_path, GOOD)), tmp_path)
    assert isinstance(profile, GateProfile)
    assert profile.metrics_for(profile.datasets[0]) == ["faithfulness", "latency"]
    # Latency is in ms: its thresholds are not fractions.
    assert profile.metrics["latency"].threshold == 20000


BAD = {
    "unknown metric": (changed(metrics__coherence={"threshold": 0.5}), "metrics.coherence: unknown metric"),
    "unknown top-level key": (changed(enviroment="ci"), "enviroment: unknown key"),
    "unknown rule": (
        changed(metrics__faithfulness__rules={"min_meen": 0.5}),
        "metrics.faithfulness.rules.min_meen: unknown key",
    ),
    "threshold out of range": (
        changed(metrics__faithfulness__threshold=1.5),
        "metrics.faithfulness.threshold: 1.5 is outside [0, 1]",
    ),
    "rule out of range": (
        changed(metrics__faithfulness__rules={"min_mean": -0.1}),
        "metrics.faithfulness.rules.min_mean: -0.1 is outside [0, 1]",
    ),
    "fraction out of range": (
        changed(metrics__faithfulness__rules={"min_pass_rate": 2}),
        "metrics.faithfulness.rules.min_pass_rate: Input should be less than or equal to 1",
    ),
    "negative violation count": (
        changed(metrics__faithfulness__rules={"max_violations": -1}),
        "metrics.faithfulness.rules.max_violations: Input should be greater than or equal to 0",
    ),
    "missing dataset file": (
        changed(datasets=[{"name": "golden", "path": "nowhere.jsonl"}]),
        "datasets[0].path: dataset file",
    ),
    "dataset names an ungated metric": (
        changed(datasets=[{"name": "golden", "path": "qa.jsonl", "metrics": ["toxicity"]}]),
        "datasets[0].metrics: 'toxicity' has no entry under metrics",
    ),
    "duplicate dataset names": (
        changed(datasets=[{"name": "g", "path": "qa.jsonl"}, {"name": "g", "path": "qa.jsonl"}]),
        "datasets[1].name: 'g' is already the name of datasets[0]",
    ),
    "missing key": (changed(metrics=None), "metrics: missing key"),
    "wrong kind": (
        changed(datasets__0__kind="csv"),
        "datasets.0.kind: Input should be 'golden', 'adversarial' or 'regression'",
    ),
    "too many repeats": (changed(sampling={"repeats": 50}), "sampling.repeats: Input should be less than"),
    "an environment nobody gates": (changed(env="qa"), "env: Input should be 'ci', 'staging' or 'prod'"),
    "negative latency threshold": (
        changed(metrics__latency__threshold=-5),
        "metrics.latency.threshold: -5.0 is negative; give a value >= 0",
    ),
    "negative latency bound": (
        changed(metrics__latency__rules={"max_mean": -1}),
        "metrics.latency.rules.max_mean: -1.0 is negative",
    ),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_profile_names_the_file_and_the_key(tmp_path: Path, kind: str) -> None:
    data, message = BAD[kind]
    path = write(tmp_path, data)

    with pytest.raises(UsageError) as excinfo:
        load_profile(str(path), tmp_path)

    text = str(excinfo.value)
    assert text.startswith(f"{path}: ")
    assert message in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("env: [ci\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping with keys env, datasets, metrics"),
        ("", "expected a mapping"),
    ],
)
def test_a_profile_that_is_not_a_mapping_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(UsageError, match=message) as excinfo:
        load_profile(str(path), tmp_path)
    assert str(excinfo.value).startswith(f"{path}: ")


def test_a_missing_profile_file_says_what_would_be_right(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as excinfo:
        load_profile(str(tmp_path / "absent.yaml"), tmp_path)
    assert str(excinfo.value).startswith(f"{tmp_path / 'absent.yaml'}: no such gate profile")
    assert "--gate-env {ci,staging,prod}" in str(excinfo.value)


def test_a_key_written_twice_is_refused_naming_the_key_and_both_lines(tmp_path: Path) -> None:
    # Plain YAML keeps the last value silently: here the stricter threshold would be lost.
    path = write(
        tmp_path,
        "env: ci\n"
        "datasets:\n"
        "  - {name: golden, path: qa.jsonl}\n"
        "metrics:\n"
        "  latency:\n"
        "    threshold: 2000\n"
        "    rules: {max_p95: 1500}\n"
        "    threshold: 90000\n",
    )
    with pytest.raises(UsageError) as excinfo:
        load_profile(str(path), tmp_path)
    text = str(excinfo.value)
    assert text.startswith(f"{path}: ")
    assert "key 'threshold' written twice (line 6 and line 8)" in text


def test_an_environment_name_reads_the_project_s_committed_profile(tmp_path: Path) -> None:
    from gates.profile import committed_profile

    (tmp_path / "pyproject.toml").write_text('[tool.ragate.gates]\nprofiles_dir = "team/profiles"\n')
    own = write(tmp_path, GOOD | {"env": "staging"}, name="team/profiles/staging.yaml")
    assert committed_profile(tmp_path, "staging") == own
    assert load_profile("staging", tmp_path).source == own
    # An environment the project has no file for falls back to the shipped profile.
    assert committed_profile(tmp_path, "prod") == PROFILES_DIR / "prod.yaml"


def test_bad_yaml_is_named_by_its_file(tmp_path: Path) -> None:
    path = tmp_path / "ci.yaml"
    path.write_text("env: ci\ndatasets: [\nmetrics: {}\n")
    with pytest.raises(UsageError) as caught:
        load_profile(str(path), tmp_path)
    assert f'in "{path}", line 2' in str(caught.value) and "<unicode string>" not in str(caught.value)
