"""Answer relevancy gate: the answer addresses the question.

A plain "I don't know" passes only for the unanswerable cases.
"""

from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

METRIC = "answer_relevancy"
