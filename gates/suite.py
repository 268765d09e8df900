"""The gate suite every ``quality/`` file shares: two tests over the plugin's fixtures.

A gate suite is one file per metric family and two lines::

    from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)

    METRIC = "faithfulness"

The plugin parametrizes ``test_case`` with the ids of the profile's cases that the metric
judges (``gate_case``) and hands ``test_gate`` the metric's aggregate rules
(``gate_metric``); both are marked ``gate``. A failing case is an ``xfail`` while the
metric's aggregate rules still pass ("within the gate's rules"), so the exit status is the
verdict; when they fail, the failing cases fail too and say why.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["pytestmark", "test_case", "test_gate"]

pytestmark = pytest.mark.gate


def test_case(gate_case: Any) -> None:
    """One case of the suite's metric passes its per-case threshold."""
    if not gate_case.passed and gate_case.tolerated:
        pytest.xfail("within the gate's rules: " + gate_case.explain())
    if not gate_case.passed:
        # The explanation says it all: no traceback into this file under every failing case.
        pytest.fail(gate_case.explain(), pytrace=False)


def test_gate(gate_metric: Any) -> None:
    """Every aggregate rule of the suite's metric passes."""
    if not gate_metric.passed:
        pytest.fail(gate_metric.explain(), pytrace=False)


def suite_source(metric: str, doc: str) -> str:
    """The text of a thin ``quality/test_<family>.py`` file for ``metric`` (used by ``ragate init``)."""
    star = "from gates.suite import *  # noqa: F403  (pytestmark, test_case, test_gate)"
    return f'"""{doc}"""\n\n{star}\n\nMETRIC = "{metric}"\n'
