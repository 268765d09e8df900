"""Retrieval gate (context precision): the retrieved chunks come from relevant sources (answerable cases)."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "context_precision"
