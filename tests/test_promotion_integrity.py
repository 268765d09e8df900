"""What moves @champion, found open by an independent tester: a rollback returns to the
champion the current one replaced (never to a version promotion refused), champion needs a
passed staging run first, and the committed profile and datasets are the last git commit's
(an uncommitted, weakened profile or a swapped golden file does not promote).

The system under test is the harness: a fake chain, the latency metric, a real MLflow
SQLite store, real git and the real ``ragate`` command.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from _fixtures import latency_profile as _profile
from _fixtures import latency_project, ragate

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    project = latency_project(pytester, monkeypatch, tmp_path, staging_before_champion=True)
    for env in ("staging", "prod"):
        (project.path / "profiles").mkdir(exist_ok=True)
        (project.path / "profiles" / f"{env}.yaml").write_text(_profile(env, 1000.0))
    return project


def gates(project: pytest.Pytester, env: str, *extra: str) -> pytest.RunResult:
    return project.runpytest_subprocess(
        "-p", "no:deepeval", "-m", "gate", "--gate-env", env, "--gate-no-cache", *extra
    )


def git(project: pytest.Pytester, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    subprocess.run(["git", *args], cwd=project.path, check=True, capture_output=True, env=env)


def test_champion_needs_a_passed_staging_run_first(project: pytest.Pytester) -> None:
    assert gates(project, "prod").ret == 0
    refused = ragate("promote", "--to", "champion")
    assert refused.returncode == 2 and "rule staging-before-champion" in refused.stderr, refused.stderr
    assert gates(project, "staging").ret == 0
    assert ragate("promote", "--to", "champion").returncode == 0


def test_rollback_returns_to_the_replaced_champion_not_to_a_refused_version(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("1", "2", "3"):
        monkeypatch.setenv("FAKE_VERSION", version)
        assert gates(project, "staging").ret == 0
    monkeypatch.setenv("FAKE_VERSION", "1")
    assert gates(project, "prod").ret == 0
    assert ragate("promote", "--to", "champion").returncode == 0
    # Version 2 passes a prod run of a profile that is not the committed one: refused.
    monkeypatch.setenv("FAKE_VERSION", "2")
    (project.path / "weak.yaml").write_text(_profile("prod", 1e9))
    assert gates(project, "prod", "--gate-profile=weak.yaml").ret == 0
    refused = ragate("promote", "--to", "champion")
    assert refused.returncode == 2 and "rule committed-profile" in refused.stderr, refused.stderr
    monkeypatch.setenv("FAKE_VERSION", "3")
    assert gates(project, "prod").ret == 0
    assert ragate("promote", "--to", "champion").returncode == 0

    back = ragate("rollback")
    assert back.returncode == 0, back.stderr
    assert "version 3 -> version 1" in back.stdout  # not version 2, whose promotion was refused
    again = ragate("rollback")
    assert again.returncode == 2 and "replaced no recorded champion" in again.stderr


def test_an_uncommitted_profile_or_dataset_does_not_promote(project: pytest.Pytester) -> None:
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "project")
    assert gates(project, "staging").ret == 0
    # A weakened prod profile, edited in the work tree and not committed.
    committed = (project.path / "profiles" / "prod.yaml").read_text()
    (project.path / "profiles" / "prod.yaml").write_text(_profile("prod", 1e9))
    assert gates(project, "prod").ret == 0
    refused = ragate("promote", "--to", "champion")
    assert refused.returncode == 2, refused.stderr
    assert "rule committed-profile" in refused.stderr and "the last git commit" in refused.stderr
    # The committed profile, but a golden file swapped in the work tree.
    (project.path / "profiles" / "prod.yaml").write_text(committed)
    golden = project.path / "qa.jsonl"
    golden.write_text(golden.read_text().replace('"qqq"', '"an easier question"'))
    assert gates(project, "prod").ret == 0
    refused = ragate("promote", "--to", "champion")
    assert refused.returncode == 2 and "rule committed-datasets" in refused.stderr, refused.stderr
    assert "qa.jsonl" in refused.stderr
    # Committed, both are trusted.
    git(project, "commit", "-q", "-am", "new golden question")
    assert gates(project, "prod").ret == 0
    assert ragate("promote", "--to", "champion").returncode == 0
