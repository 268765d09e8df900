"""Retrieval gate (MRR): the first chunk from a relevant source ranks high (answerable cases)."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "mrr"
