"""A team's own chain through tracking and promotion, and the promotion policy (issue 9
item 2, issue 11 item 2).

The chain is defined here and imports nothing of ``rag/``: what MLflow records must be
*its* version (and its factory's import string), never ragate's demo chain or its config.
A promotion needs a passed run of the environment's committed profile (same content hash)
that scored enough cases; a refusal names the rule that refused.

All tests share one SQLite store (its migrations cost seconds); each uses its own chain
version, so their registry entries never mix. MLflow is read in a subprocess, as in
``tests/test_tracking.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from _fixtures import ragate, tracked_project

pytest_plugins = ["pytester"]

TEAM_CHAIN = '''
import os
import sys
from pathlib import Path


class HelpdeskChain:
    """The team's chain: a version() method, a prepare() and no mlflow_model()."""

    def version(self):
        return {"team": "helpdesk", "model": os.environ.get("TEAM_MODEL", "m-1")}

    def prepare(self):
        return "kb-7"

    def invoke(self, question, **kw):
        # Proof that the gates reach it without ragate's demo chain being imported.
        Path("rag-imported.txt").write_text(str("rag" in sys.modules or "rag.chain" in sys.modules))
        return {"answer": "See the docs.", "contexts": ["See the docs."], "latency_ms": 50.0 + len(question)}


def build():
    return HelpdeskChain()
'''

PROFILE = """
env: {env}
datasets:
  - name: golden
    path: {dataset}
metrics:
  latency:
    threshold: 100000
    rules: {{max_p95: 100000, min_mean: 0}}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def team(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, store: str, request) -> pytest.Pytester:
    rows = [
        {"id": f"q{i}", "question": f"Question number {i}?", "ground_truth": "x", "source_ids": ["d"]}
        for i in range(8)
    ]
    tracked_project(
        pytester,
        monkeypatch,
        chain_module="teamchain",
        chain_source=TEAM_CHAIN,
        rows=rows,
        store=store,
        min_scored_cases=5,
    )
    (pytester.path / "small.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    (pytester.path / "profiles").mkdir()
    for env in ("staging", "prod"):
        (pytester.path / "profiles" / f"{env}.yaml").write_text(PROFILE.format(env=env, dataset="qa.jsonl"))
    # One chain version per test: the shared registry keeps them apart.
    monkeypatch.setenv("TEAM_MODEL", request.node.name)
    return pytester


def gate(team: pytest.Pytester, *args: str) -> pytest.RunResult:
    return team.runpytest_subprocess("-p", "no:deepeval", "-m", "gate", "--gate-no-cache", *args)


def mlflow_read(code: str) -> Any:
    """Run ``code`` (which prints JSON) with an MlflowClient ``client`` on the test's store."""
    script = "import json, os\nfrom mlflow.tracking import MlflowClient\n"
    script += "client = MlflowClient(os.environ['MLFLOW_TRACKING_URI'], os.environ['MLFLOW_TRACKING_URI'])\n"
    out = subprocess.run(
        [sys.executable, "-c", script + textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_team_chain_is_gated_tracked_and_promoted_as_itself(team: pytest.Pytester) -> None:
    result = gate(team, "--gate-env", "prod")
    assert result.ret == 0, result.stdout.str()
    assert (team.path / "rag-imported.txt").read_text() == "False"

    promoted = ragate("promote", "--to", "champion")
    assert promoted.returncode == 0, promoted.stderr
    assert "is now @champion" in promoted.stdout

    recorded = mlflow_read(
        """
        version = client.get_model_version_by_alias("ragate-chain", "champion")
        run = client.get_run(version.tags["gate.prod.run_id"])
        print(json.dumps({"tags": version.tags, "params": run.data.params, "source": version.source}))
        """
    )
    tags, params = recorded["tags"], recorded["params"]
    model = os.environ["TEAM_MODEL"]
    assert tags["chain.team"] == "helpdesk" and tags["chain.model"] == model
    assert tags["chain.factory"] == "teamchain:build" and tags["chain.index"] == "kb-7"
    assert params["chain.team"] == "helpdesk" and params["chain.factory"] == "teamchain:build"
    # Nothing of ragate's demo chain: no rag config logged, nothing of rag/ registered.
    assert not [k for k in params if k.startswith("config.")]
    assert "mlflow_model" not in recorded["source"]
    assert tags["gate.prod.profile"].endswith("profiles/prod.yaml")
    assert tags["gate.prod.scored_cases"] == "8"


def test_a_profile_that_is_not_the_committed_one_cannot_promote(team: pytest.Pytester) -> None:
    # Three cases, env: prod, a mean of 0 allowed: it passes and proves nothing.
    (team.path / "mine.yaml").write_text(PROFILE.format(env="prod", dataset="small.jsonl"))
    assert gate(team, "--gate-profile=mine.yaml").ret == 0

    refused = ragate("promote", "--to", "champion")

    assert refused.returncode == 2
    assert "rule committed-profile" in refused.stderr and "mine.yaml" in refused.stderr, refused.stderr

    # Trusted by its hash in the configuration, the same run passes that rule and is then
    # refused by the next one: three cases are fewer than the five configured.
    digest = hashlib.sha256((team.path / "mine.yaml").read_bytes()).hexdigest()
    pyproject = team.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\nallowed_profile_sha256 = ["{digest}"]\n')
    refused = ragate("promote", "--to", "champion")
    assert refused.returncode == 2
    assert "rule min-scored-cases" in refused.stderr and "scored 3 cases" in refused.stderr, refused.stderr


def test_a_committed_profile_too_small_to_prove_anything_cannot_promote(team: pytest.Pytester) -> None:
    (team.path / "profiles" / "staging.yaml").write_text(PROFILE.format(env="staging", dataset="small.jsonl"))
    assert gate(team, "--gate-env", "staging").ret == 0

    refused = ragate("promote", "--to", "staging")

    assert refused.returncode == 2
    assert "rule min-scored-cases" in refused.stderr, refused.stderr
    # An edited profile after the run is not the one that judged it.
    (team.path / "profiles" / "staging.yaml").write_text(PROFILE.format(env="staging", dataset="qa.jsonl"))
    refused = ragate("promote", "--to", "staging")
    assert refused.returncode == 2 and "rule committed-profile" in refused.stderr


VACUOUS = """
env: staging
datasets:
  - name: golden
    path: qa.jsonl
metrics:
  latency:
    rules: {min_mean: 0}
"""


def test_a_committed_profile_no_score_could_fail_cannot_promote(team: pytest.Pytester) -> None:
    # The team's own committed profile, weakened: it passes whatever the chain answers.
    (team.path / "profiles" / "staging.yaml").write_text(VACUOUS)
    assert gate(team, "--gate-env", "staging").ret == 0

    refused = ragate("promote", "--to", "staging")

    assert refused.returncode == 2
    assert "rule proving-profile" in refused.stderr and "latency" in refused.stderr, refused.stderr


def test_a_profile_without_the_required_metrics_cannot_promote(team: pytest.Pytester) -> None:
    assert gate(team, "--gate-env", "staging").ret == 0
    pyproject = team.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("required_metrics = []", 'required_metrics = ["pii"]'))

    refused = ragate("promote", "--to", "staging")

    assert refused.returncode == 2
    assert "rule required-metrics" in refused.stderr and "pii" in refused.stderr, refused.stderr


def test_toxicity_and_pii_are_required_unless_configured(tmp_path) -> None:
    from gates.tracking import PromotionPolicy

    (tmp_path / "pyproject.toml").write_text("[tool.ragate.promotion]\nmin_scored_cases = 3\n")
    assert PromotionPolicy.load(tmp_path).required_metrics == ("toxicity", "pii")
