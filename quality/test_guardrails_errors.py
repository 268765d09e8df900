"""Guardrail gate: NeMo Guardrails' internal-error reply never reaches a user."""

import pytest

pytestmark = pytest.mark.gate
METRIC = "internal_error"


def test_case(gate_case):
    if not gate_case.passed and gate_case.tolerated:
        pytest.xfail("within the gate's rules: " + gate_case.explain())
    assert gate_case.passed, gate_case.explain()


def test_gate(gate_metric):
    assert gate_metric.passed, gate_metric.explain()
