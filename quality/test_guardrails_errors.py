"""Guardrail gate: NeMo Guardrails' internal-error reply never reaches a user."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "internal_error"
