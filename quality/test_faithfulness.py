"""Faithfulness gate: every claim of the answer is supported by the retrieved contexts."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "faithfulness"
