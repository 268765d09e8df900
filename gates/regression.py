"""The regression gate: is the candidate significantly worse than the champion?

Paired on the same cases: for each case both chains answered, the champion's recorded
score minus the candidate's (sign-adjusted so that positive is worse). The gate fails
when the lower bound of the 95% paired-bootstrap interval of the mean drop is above zero
(the drop is significant) *and* the mean drop is larger than the allowed delta.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gates.verdict import GateResult, _mean, bootstrap


def champion_scores(root: Path, env: str) -> dict[str, dict[str, float | None]] | None:
    """Per-case scores of the champion's gate run (``None`` when there is no champion).

    The champion's run of the same profile is preferred; else its prod run. Raises
    :class:`~gates.tracking.TrackingError` when the store cannot be read.
    """
    from gates.tracking import REGISTERED_MODEL, TrackingError, _client

    try:
        client = _client(root)
        try:
            version = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
        except Exception:
            return None  # no registered model or no champion yet
        run_id = version.tags.get(f"gate.{env}.run_id") or version.tags.get("gate.prod.run_id")
        if not run_id:
            return {}
        import mlflow

        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="cases.json")
        cases = json.loads(Path(local).read_text(encoding="utf-8"))["cases"]
    except Exception as exc:
        raise TrackingError(f"cannot read the champion's scores: {type(exc).__name__}: {exc}") from exc
    return {c["id"]: c["scores"] for c in cases}


def regression_gate(
    metric: str,
    higher_is_better: bool,
    candidate: Mapping[str, float | None],
    champion: Mapping[str, Mapping[str, Any]] | None,
    allowed_drop: float,
    resamples: int,
) -> GateResult:
    """Decide ``max_regression`` for one metric from paired per-case scores."""
    if champion is None:
        return GateResult(metric, "max_regression", allowed_drop, None, None, 0, 0, True, "no champion yet")
    pairs = [
        (champion[case_id][metric], value)
        for case_id, value in candidate.items()
        if value is not None and case_id in champion and champion[case_id].get(metric) is not None
    ]
    unpaired = len(candidate) - len(pairs)
    if not pairs:
        # A champion exists but nothing can be compared: fail closed.
        return GateResult(
            metric, "max_regression", allowed_drop, None, None, 0, unpaired, False, "no case scored by both"
        )
    old, new = np.array(pairs, dtype=float).T
    drops = old - new if higher_is_better else new - old
    interval = bootstrap(drops, _mean, resamples)
    mean_drop = float(drops.mean())
    significant = interval[0] > 0.0
    passed = not (significant and mean_drop > allowed_drop)
    note = "significant drop" if significant else "no significant drop"
    return GateResult(
        metric, "max_regression", allowed_drop, mean_drop, interval, len(pairs), unpaired, passed, note
    )
