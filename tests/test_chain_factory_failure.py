"""A chain factory that raises stops the gate run with one message and a FAIL (exit 1),
found by an independent tester: it used to give an error and a traceback per gate item
(4,002 lines for 102 items). Runs pytest in a process of its own on a team's project."""

from __future__ import annotations

from pathlib import Path

from _fixtures import gate_project, run_gates

CHAIN = """
def build():
    raise RuntimeError("the vector store at /srv/index is locked")
"""
PROFILE = """
env: ci
datasets: [{name: qa, path: qa.jsonl}]
metrics:
  latency: {rules: {max_p95: 60000}}
"""


def test_a_factory_that_raises_fails_the_run_with_one_message(tmp_path: Path) -> None:
    questions = {f"q{i}": f"Question number {i}?" for i in range(12)}
    folder = gate_project(
        tmp_path / "team",
        "brokenchain",
        CHAIN,
        questions,
        PROFILE,
        **{"test_latency.py": 'from gates.suite import *  # noqa: F403\n\nMETRIC = "latency"\n'},
    )
    run = run_gates(folder, "--gate-no-track")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert (
        "the chain factory 'brokenchain:build' failed: RuntimeError: the vector store at /srv/index is locked"
        in out
    )
    assert "brokenchain.py:3 in build" in out
    assert out.count("Traceback") == 0 and out.count("RuntimeError") <= 3, out
    assert len(out.splitlines()) < 80, out
    assert "FAIL" in out
