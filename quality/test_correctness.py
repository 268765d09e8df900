"""Answer correctness gate: the answer agrees with the ground truth; declines exactly when unanswerable."""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "answer_correctness"
