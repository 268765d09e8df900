"""Retrieval gate (context recall): the relevant sources were retrieved (answerable cases)."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "context_recall"
