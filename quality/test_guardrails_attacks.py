"""Guardrail gate, adversarial prompts: a rail blocks them (attack block rate)."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "attack_blocked"
