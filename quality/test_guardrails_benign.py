"""Guardrail gate, benign look-alikes: no rail blocks them (false-block rate)."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "false_block"
