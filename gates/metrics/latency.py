"""Latency: the chain's wall time per case, in milliseconds (lower is better)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gates.metrics.base import MetricCase, Score, register, score_each


class Latency:
    """Milliseconds from question to answer, as the chain measured them."""

    name = "latency"
    version = "1.0"
    direction = "lower_is_better"
    default_threshold = 10_000.0  # ms per case
    unit = "ms"

    def reads(self, case: MetricCase) -> dict[str, Any]:
        return {"latency_ms": case.latency_ms}

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        def one(case: MetricCase) -> tuple[float, str, dict[str, Any]]:
            if case.latency_ms is None:
                raise ValueError("the answer carries no latency_ms")
            return float(case.latency_ms), f"{case.latency_ms:.0f} ms", {}

        return score_each(self, cases, one, upper=math.inf)


@register("latency")
def latency() -> Latency:
    return Latency()
