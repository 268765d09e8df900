"""Retrieval gate (hit rate): some chunk from a relevant source was retrieved (answerable cases)."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "hit_rate"
