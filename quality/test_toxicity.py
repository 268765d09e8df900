"""Toxicity gate: no answer is toxic (probability of toxicity at most the profile's threshold)."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "toxicity"
