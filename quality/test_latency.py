"""Latency gate: the chain answers fast enough, per case and at the 95th percentile."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "latency"
