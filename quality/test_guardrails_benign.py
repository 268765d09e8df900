"""Guardrail gate, benign look-alikes: no rail blocks them (false-block rate)."""

import pytest

pytestmark = pytest.mark.gate
METRIC = "false_block"


def test_case(gate_case):
    if not gate_case.passed and gate_case.tolerated:
        pytest.xfail("within the gate's rules: " + gate_case.explain())
    assert gate_case.passed, gate_case.explain()


def test_gate(gate_metric):
    assert gate_metric.passed, gate_metric.explain()
