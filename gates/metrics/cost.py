"""Cost: what one answer cost, from the chain's token counts and the profile's prices.

``cost = prompt_tokens / 1000 * prompt_per_1k + completion_tokens / 1000 * completion_per_1k``
in the profile's currency (lower is better), with the prices from the profile's
``pricing:`` section::

    pricing:
      currency: USD
      prompt_per_1k: 0.0005
      completion_per_1k: 0.0015
    metrics:
      cost:
        threshold: 0.002       # per case
        rules:
          max_mean: 0.001
          max_p95: 0.002
          max_total: 0.5       # the run's budget (gates.verdict's max_total)
          max_unscored_share: 0.0

A case whose token counts are unknown (``None``: the chain did not report them) is
unscored, never free: ``max_unscored_share`` decides whether that may pass, and
``max_total`` sums scored cases only. A blocked request the chain reports as 0 tokens
costs 0. The judge's tokens (LLM tier) are not counted here.

The prices reach the metric through :meth:`Cost.configured` (the engine calls it with the
profile); they are part of every judgment's cache key, so new prices never reuse old costs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gates.metrics.base import MetricCase, Score, register, unscored


class Cost:
    """Money per answer in ``pricing.currency``; unscored without prices or token counts."""

    name = "cost"
    version = "1.0"
    direction = "lower_is_better"
    default_threshold = math.inf  # no per-case bound unless the profile sets one
    unit = "currency"

    def __init__(self, pricing: Any | None = None) -> None:
        self.pricing = pricing
        if pricing is not None:
            self.unit = pricing.currency

    def configured(self, profile: Any) -> Cost:
        """This metric with the prices of ``profile.pricing`` (a :class:`gates.profile.Pricing`)."""
        return Cost(getattr(profile, "pricing", None))

    def reads(self, case: MetricCase) -> dict[str, Any]:
        prices = None if self.pricing is None else self.pricing.model_dump()
        return {
            "prompt_tokens": case.prompt_tokens,
            "completion_tokens": case.completion_tokens,
            "pricing": prices,
        }

    def score_batch(self, cases: Sequence[MetricCase]) -> list[Score]:
        if self.pricing is None:
            return [unscored(self, "no prices: the profile has no pricing: section") for _ in cases]
        p = self.pricing

        out = []
        for case in cases:
            if case.prompt_tokens is None or case.completion_tokens is None:
                out.append(unscored(self, "the answer carries no token counts (unknown cost, not zero)"))
                continue
            if case.prompt_tokens < 0 or case.completion_tokens < 0:
                out.append(unscored(self, "error: negative token counts"))
                continue
            # Not rounded: a cost per case is often far below a cent.
            value = (
                case.prompt_tokens / 1000.0 * p.prompt_per_1k
                + case.completion_tokens / 1000.0 * p.completion_per_1k
            )
            details = {"prompt_tokens": case.prompt_tokens, "completion_tokens": case.completion_tokens}
            reason = (
                f"{value:.6g} {p.currency} ({case.prompt_tokens} prompt + "
                f"{case.completion_tokens} completion tokens)"
            )
            out.append(Score(self.name, self.version, float(value), reason, details))
        return out


@register("cost")
def cost() -> Cost:
    return Cost()
