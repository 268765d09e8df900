"""A gate run whose profile lets no score of a metric fail (``min_mean: 0``) says so under
its verdict: an independent tester's chain that declined every question passed such a
profile with nothing said. Runs pytest in a process of its own on a team's project."""

from __future__ import annotations

from pathlib import Path

from _fixtures import gate_project, run_gates

CHAIN = """
class Chain:
    def invoke(self, question):
        return {"answer": "The desk is open from 9 to 17.", "contexts": ["The desk is open from 9 to 17."]}


def build():
    return Chain()
"""
PROFILE = """
env: ci
datasets: [{name: qa, path: qa.jsonl}]
metrics:
  latency: {rules: {max_p95: 60000}}
  toxicity: {threshold: 1.0, rules: {max_violations: 0}}
"""


def test_a_vacuous_metric_is_named_under_the_verdict(tmp_path: Path) -> None:
    folder = gate_project(
        tmp_path / "team",
        "vacuouschain",
        CHAIN,
        {"q1": "When is the desk open?", "q2": "Is the desk open at noon?"},
        PROFILE,
        **{
            "test_latency.py": 'from gates.suite import *  # noqa: F403\n\nMETRIC = "latency"\n',
            "test_toxicity.py": 'from gates.suite import *  # noqa: F403\n\nMETRIC = "toxicity"\n',
        },
    )
    run = run_gates(folder, "--gate-no-track")
    out = run.stdout + run.stderr
    assert "ragate verdict: PASS" in out, out
    assert "ragate: toxicity: no rule of the profile can fail" in out, out
    assert "latency: no rule" not in out
