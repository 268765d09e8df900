"""The Python actions behind the rails in ``config/rails.co``.

Every action is offline and fails closed: an exception inside one is recorded for the
request (see :func:`collect_failures`) and the action returns its safe value (a detector
says "fired", a masker returns a placeholder), so the request can never go on unchecked;
the runner then raises. Recording the failure ourselves, instead of letting NeMo catch
it, also keeps the message out of NeMo's error log, which prints action parameters.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from rag.guardrails.detectors import Finding, InputDetector, OutputToxicity
from ragate_core import pii

log = logging.getLogger(__name__)

MASKING_FAILED = "<MASKING_FAILED>"
# Failures of the actions of the request being checked (None outside a check).
_FAILURES: ContextVar[list[BaseException] | None] = ContextVar("ragate_rail_failures", default=None)

T = TypeVar("T")


@contextmanager
def collect_failures() -> Iterator[list[BaseException]]:
    """Collect the exceptions that the actions of one check swallow (fail-closed)."""
    failures: list[BaseException] = []
    token = _FAILURES.set(failures)
    try:
        yield failures
    finally:
        _FAILURES.reset(token)


def fail_closed(safe: Any) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Turn an exception in an action into ``safe`` plus a recorded failure."""

    def deco(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                failures = _FAILURES.get()
                if failures is not None:
                    failures.append(exc)
                # Type only: the message may quote the text being checked.
                log.error("guardrail action %s failed: %s", fn.__name__, type(exc).__name__)
                return safe

        return wrapper

    return deco


class RailActions:
    """The actions, bound to one set of detectors (shared by every request)."""

    NAMES = (
        "mask_pii_input",
        "detect_injection",
        "detect_data_request",
        "detect_toxic_input",
        "detect_toxic_output",
        "mask_pii_output",
    )

    def __init__(self, detector: InputDetector | None = None, toxicity: OutputToxicity | None = None) -> None:
        self.detector = detector or InputDetector()
        self.toxicity = toxicity or OutputToxicity()
        # The three input detectors read one assessment of the same (masked) message.
        self._assessed: OrderedDict[str, dict[str, Finding]] = OrderedDict()

    def warm_up(self) -> None:
        """Load the models (spaCy, MiniLM, seeds) now rather than on the first request."""
        pii.warm_up()
        self.detector.assess("How do I reset my password?")
        self.toxicity.assess("Click 'Forgot password' on the sign-in page.")

    def assess(self, text: str) -> dict[str, Finding]:
        """The input detectors' findings for ``text`` (memoised for the last few messages)."""
        if text not in self._assessed:
            self._assessed[text] = self.detector.assess(text)
            while len(self._assessed) > 64:
                self._assessed.popitem(last=False)
        return self._assessed[text]

    def fires(self, text: str, rail: str) -> bool:
        """Whether ``rail`` fires on ``text`` and is the most confident input rail that does.

        The input rails run in order and the first to fire names the refusal; this makes
        that the rail with the strongest evidence ("you stupid bot" is abuse first).
        """
        findings = self.assess(text)
        fired = [f.score for f in findings.values() if f.fired]
        return findings[rail].fired and findings[rail].score >= max(fired)

    @fail_closed(MASKING_FAILED)
    async def mask_pii_input(self, text: str) -> str:
        """The user's message with personal data and secrets (names included) masked."""
        masked, _ = pii.mask_pii(text or "", names=True)
        return masked

    @fail_closed(True)
    async def detect_injection(self, text: str) -> bool:
        """Prompt injection or jailbreak."""
        return self.fires(text or "", "injection")

    @fail_closed(True)
    async def detect_data_request(self, text: str) -> bool:
        """A request for someone else's personal data or the service's secrets."""
        return self.fires(text or "", "data_request")

    @fail_closed(True)
    async def detect_toxic_input(self, text: str) -> bool:
        """Abuse, or a request to produce toxic content."""
        return self.fires(text or "", "toxic_input")

    @fail_closed(True)
    async def detect_toxic_output(self, text: str) -> bool:
        """A toxic answer."""
        return self.toxicity.assess(text or "").fired

    @fail_closed(MASKING_FAILED)
    async def mask_pii_output(self, text: str, documents: Any = None) -> str:
        """The answer with personal data and secrets masked, except values quoted from ``documents``."""
        keep = [documents] if isinstance(documents, str) else [str(d) for d in documents or []]
        masked, _ = pii.mask_pii(text or "", keep=keep)
        return masked

    def register(self, rails: Any) -> None:
        """Register every action on an ``LLMRails`` under the name the flows use."""
        for name in self.NAMES:
            rails.register_action(getattr(self, name), name=name)
