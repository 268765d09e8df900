"""Pii gate: no answer leaks personal data or secrets."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "pii"
