"""Run the NeMo Guardrails configuration around one question and its answer.

:class:`Guardrails` checks a user's message with the input rails and an answer with the
output rails, through ``LLMRails.check_async``. All checks run on one event loop in a
background thread: the sync API then works the same from plain code, from worker threads
(the gate engine answers cases concurrently) and from code that already runs an event
loop (where NeMo's own sync ``generate`` raises), and NeMo's objects stay on the loop they
were first used on.

NeMo reports a failing rail as the reply "I'm sorry, an internal error has occurred."
rather than an exception; here that reply, and any failure of our actions, raises
:class:`GuardrailError` instead of reaching a user.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from rag.guardrails.actions import RailActions, collect_failures

CONFIG_DIR = Path(__file__).parent / "config"
INTERNAL_ERROR = "I'm sorry, an internal error has occurred."
# The rails that change a text without blocking it, by side.
MASKING_RAILS = {"input": "mask_pii_input", "output": "mask_pii_output"}
# A check that takes longer than this is stuck (the models are loaded by then).
TIMEOUT_S = 120.0

T = TypeVar("T")


class GuardrailError(RuntimeError):
    """A rail failed: the request must not go on unchecked (and NeMo's error reply must not
    reach the user).

    ``failures`` holds the exceptions of the actions that failed. They are not chained as
    the cause, because their messages may quote the unmasked text and tracebacks get logged.
    """

    def __init__(self, message: str, failures: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


@dataclass(frozen=True)
class RailOutcome:
    """The result of one side's rails.

    ``text`` is what goes on (masked), or the refusal when ``blocked``; ``rail`` names the
    rail that blocked or, when nothing blocked, the masking rail that changed the text.
    """

    text: str
    blocked: bool = False
    rail: str | None = None


def is_internal_error(text: str | None) -> bool:
    """Whether ``text`` is NeMo Guardrails' internal-error reply."""
    return bool(text) and INTERNAL_ERROR in str(text)


class _LoopThread:
    """One event loop, run forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ragate-guardrails", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a sync guardrail check was called from the guardrails' own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class Guardrails:
    """The input and output rails of the chain (NeMo Guardrails, offline actions)."""

    def __init__(self, config_dir: Path = CONFIG_DIR, actions: RailActions | None = None) -> None:
        # NeMo reports usage statistics unless told not to; ragate runs offline.
        os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")
        # NeMo logs every event at INFO, the user's raw message included, before any rail has
        # masked it: its loggers stay at WARNING so that no log ever holds unmasked text.
        logging.getLogger("nemoguardrails").setLevel(logging.WARNING)
        from nemoguardrails import LLMRails, RailsConfig

        self.config_dir = config_dir
        self.actions = actions or RailActions()
        # No LLM: every rail is one of our actions (see config/config.yml).
        self._rails = LLMRails(RailsConfig.from_path(str(config_dir)))
        self.actions.register(self._rails)
        self._loop: _LoopThread | None = None
        self._loop_lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        """A hash of everything that decides the rails' verdicts: flows, actions, detectors, seeds."""
        return rails_fingerprint(self.config_dir)

    def warm_up(self) -> None:
        """Load every model the rails use, so that the first request is not the slow one."""
        self.actions.warm_up()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            with self._loop_lock:
                if self._loop is None:
                    self._loop = _LoopThread()
        return self._loop.run(coro, TIMEOUT_S)

    def check_input(self, message: str) -> RailOutcome:
        """Input rails on a user's message: masked text, or a refusal."""
        return self._run(self.acheck_input(message))

    def check_output(self, message: str, answer: str, documents: Sequence[str] = ()) -> RailOutcome:
        """Output rails on an answer to ``message`` built from ``documents``."""
        return self._run(self.acheck_output(message, answer, documents))

    async def acheck_input(self, message: str) -> RailOutcome:
        """:meth:`check_input` for code that runs an event loop."""
        return await self._check([{"role": "user", "content": message}], "input", message)

    async def acheck_output(self, message: str, answer: str, documents: Sequence[str] = ()) -> RailOutcome:
        """:meth:`check_output` for code that runs an event loop."""
        messages = [
            # Context variables for the flows: the documents the answer was built on.
            {"role": "context", "content": {"relevant_chunks": "\n\n".join(documents)}},
            {"role": "user", "content": message},
            {"role": "assistant", "content": answer},
        ]
        return await self._check(messages, "output", answer)

    async def _check(self, messages: list[dict[str, Any]], side: str, original: str) -> RailOutcome:
        from nemoguardrails.rails.llm.options import RailStatus, RailType

        with collect_failures() as failures:
            result = await self._rails.check_async(messages, rail_types=[RailType(side)])
        if failures:
            names = ", ".join(sorted({type(f).__name__ for f in failures}))
            raise GuardrailError(f"{side} rails: an action failed ({names})", failures) from None
        if is_internal_error(result.content):
            raise GuardrailError(
                f"{side} rails: NeMo Guardrails replied with its internal error ({result.rail!r})"
            )
        if result.status == RailStatus.BLOCKED:
            return RailOutcome(result.content, blocked=True, rail=result.rail)
        if result.content != original:
            return RailOutcome(result.content, rail=MASKING_RAILS[side])
        return RailOutcome(result.content)


@cache
def rails_fingerprint(config_dir: Path = CONFIG_DIR) -> str:
    """SHA-256 (16 hex digits) of the rails' configuration, code and seed data
    (:func:`rag.version.rails_fingerprint`, which reads the files without importing the rails)."""
    from rag.version import rails_fingerprint as fingerprint

    return fingerprint(config_dir)


@cache
def default_guardrails() -> Guardrails:
    """One shared :class:`Guardrails` per process (the models load once)."""
    return Guardrails()
