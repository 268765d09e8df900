"""The regression gate: is the candidate significantly worse than the champion?

Paired on the same cases: for each case both chains answered, the champion's recorded
score minus the candidate's (sign-adjusted so that positive is worse). The gate fails
when the lower bound of the 95% paired-bootstrap interval of the mean drop is above zero
(the drop is significant) *and* the mean drop is larger than the allowed delta.

The champion's scores arrive as a :class:`~gates.results.ChampionBaseline`, fetched from
the tracking store (:func:`gates.tracking.champion_baseline`) before the run is scored;
this module reads no store itself.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from gates.results import ChampionBaseline, GateResult
from gates.verdict import bootstrap, row_mean

RULE = "max_regression"


def regression_gate(
    metric: str,
    higher_is_better: bool,
    candidate: Mapping[str, float | None],
    champion: ChampionBaseline | Mapping[str, Mapping[str, float | None]] | None,
    allowed_drop: float,
    resamples: int,
) -> GateResult:
    """Decide ``max_regression`` for one metric from paired per-case scores.

    ``candidate`` maps case id -> this run's value; ``champion`` is the champion's
    baseline (or its ``scores`` mapping, case id -> metric -> value), ``None`` when there
    is no champion yet (the gate passes, and says so).
    """
    if champion is None:
        return GateResult(metric, RULE, allowed_drop, None, None, 0, 0, True, "no champion yet")
    scores = champion.scores if isinstance(champion, ChampionBaseline) else champion
    pairs = [
        (scores[case_id][metric], value)
        for case_id, value in candidate.items()
        if value is not None and case_id in scores and scores[case_id].get(metric) is not None
    ]
    unpaired = len(candidate) - len(pairs)
    if not pairs:
        # A champion exists but nothing can be compared: fail closed.
        return GateResult(
            metric, RULE, allowed_drop, None, None, 0, unpaired, False, "no case scored by both"
        )
    old, new = np.array(pairs, dtype=float).T
    drops = old - new if higher_is_better else new - old
    interval = bootstrap(drops, row_mean, resamples)
    mean_drop = float(drops.mean())
    significant = interval[0] > 0.0
    passed = not (significant and mean_drop > allowed_drop)
    note = "significant drop" if significant else "no significant drop"
    return GateResult(metric, RULE, allowed_drop, mean_drop, interval, len(pairs), unpaired, passed, note)


def unavailable(metric: str, allowed_drop: float, why: str) -> GateResult:
    """The regression gate when the champion's scores could not be read: it fails closed."""
    return GateResult(metric, RULE, allowed_drop, None, None, 0, 0, False, why)
