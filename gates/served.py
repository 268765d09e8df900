"""Generation through a served model at scale: an OpenAI-compatible endpoint, called with a
concurrency cap per process, retries with exponential backoff, and counts of both.

Calls go through the ``openai`` client: its retry loop retries 408/409/429/5xx answers,
timeouts and refused connections with exponential backoff and jitter (0.5 s doubling to
8 s, or the server's ``Retry-After``), ``max_retries`` times. :class:`ServedClient` adds
what a scaled-out run needs on top:

- a cap on calls in flight to one endpoint (base URL and model) from this **host**:
  ``max_concurrency`` slots shared by every process of the user on the machine. A Spark
  executor runs one Python worker per task slot, each a separate process, so a cap per
  process would let an executor send ``max_concurrency x spark.executor.cores`` calls;
  the slots are ``max_concurrency`` lock files in the temporary folder (``flock``), one
  held per call in flight, so the cap holds across the Python workers of an executor
  (and across pytest-xdist workers). Several executors on one host share it: never looser
  than per executor. A process that dies releases its slot with its file descriptors.
  Where ``fcntl`` is missing (Windows) the cap is per process;
- per-call counts: :class:`ServedReply.retries`, and :class:`ServedCallFailed` when the
  retries are spent. The gate engine adds them up into the report's ``stats``
  (``served_retries``, ``served_failures``); a failed call leaves its case unscored with
  the reason, never dropped.

A gate can put a served model under test directly with this module's chain
(``[tool.ragate.gates] chain = "gates.served:build_served_chain"``) configured by
``[tool.ragate.served]``:

```toml
[tool.ragate.served]
base_url = "http://127.0.0.1:8000/v1"
model = "local-model"
api_key_env = "OPENAI_API_KEY"   # the variable holding the key (none needed on loopback)
max_concurrency = 4              # calls in flight per host (all its processes)
max_retries = 4                  # after the first attempt
timeout_s = 60
system = "Answer the customer's question in one sentence."
```
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragate_core.errors import UsageError

FAILED_PREFIX = "ServedCallFailed"
RETRIES_KEY = "served_retries"

_SEMAPHORES: dict[tuple[str, str, int], threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()


class ServedCallFailed(RuntimeError):
    """A call that failed after every retry (or could not be retried: 4xx other than 408/409/429)."""


@dataclass(frozen=True)
class ServedSettings:
    """``[tool.ragate.served]``: where the model is served and how hard to push it."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 4
    max_retries: int = 4
    timeout_s: float = 60.0
    max_tokens: int = 128
    system: str = "Answer the customer's question in one sentence."

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], where: str) -> ServedSettings:
        """Settings from a TOML table; ``UsageError`` naming ``where`` and the key when wrong."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(table) - known)
        if unknown:
            raise UsageError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
            )
        for key in ("base_url", "model"):
            if not str(table.get(key, "")).strip():
                raise UsageError(f'{where}: {key} is required (e.g. base_url = "http://127.0.0.1:8000/v1")')
        for key, low in (("max_concurrency", 1), ("max_retries", 0), ("timeout_s", 0.001), ("max_tokens", 1)):
            value = table.get(key, getattr(cls, key))
            kinds = float | int if key == "timeout_s" else int  # counts are whole numbers
            if not isinstance(value, kinds) or isinstance(value, bool) or value < low:
                what = "a number" if key == "timeout_s" else "a whole number"
                raise UsageError(f"{where}: {key} = {value!r}; give {what} >= {low}")
        return cls(**dict(table))

    @classmethod
    def from_project(cls, root: Path) -> ServedSettings:
        from ragate_core.project import tool_table

        return cls.from_mapping(
            tool_table(root).get("served", {}), f"{root / 'pyproject.toml'} [tool.ragate.served]"
        )


@dataclass(frozen=True)
class ServedReply:
    """One completion: the text, token counts as the server reported them, how many retries
    it took and the wall time in milliseconds (waiting for the cap included)."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    retries: int
    latency_ms: float


def _semaphore(settings: ServedSettings) -> threading.BoundedSemaphore:
    key = (settings.base_url, settings.model, settings.max_concurrency)
    with _SEMAPHORES_LOCK:
        if key not in _SEMAPHORES:
            _SEMAPHORES[key] = threading.BoundedSemaphore(settings.max_concurrency)
        return _SEMAPHORES[key]


def slots_folder(settings: ServedSettings) -> Path:
    """Where the host's slot files for ``settings``' endpoint, model and cap live."""
    key = hashlib.sha256(
        f"{settings.base_url}\0{settings.model}\0{settings.max_concurrency}".encode()
    ).hexdigest()[:16]
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"ragate-served-{user}" / key


@contextmanager
def host_slot(settings: ServedSettings, poll_s: float = 0.005) -> Iterator[None]:
    """Hold one of the host's ``max_concurrency`` slots for ``settings``' endpoint.

    A slot is an exclusive ``flock`` on one of ``max_concurrency`` files in
    :func:`slots_folder`; a caller that finds every slot taken polls (5 ms doubling to
    50 ms). Locks belong to open file descriptions, so threads of one process exclude each
    other too, and a slot is freed when its holder ends, however it ends.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the process semaphore alone caps the calls
        yield
        return
    folder = slots_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"slot-{i}.lock" for i in range(settings.max_concurrency)]
    first = (os.getpid() + threading.get_ident()) % len(paths)  # spread the first tries
    wait = poll_s
    while True:
        for path in paths[first:] + paths[:first]:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        time.sleep(wait)
        wait = min(wait * 2, 0.05)


class ServedClient:
    """Chat completions from ``settings.base_url`` under the host's cap, with retries."""

    def __init__(self, settings: ServedSettings) -> None:
        from openai import OpenAI

        self.settings = settings
        api_key = os.environ.get(settings.api_key_env) or "not-needed"
        self._client = OpenAI(
            base_url=settings.base_url,
            api_key=api_key,
            max_retries=settings.max_retries,
            timeout=settings.timeout_s,
        )
        self._slots = _semaphore(settings)

    def chat(self, messages: list[dict[str, str]], **params: Any) -> ServedReply:
        """One chat completion. Raises :class:`ServedCallFailed` once the retries are spent."""
        import openai

        start = time.perf_counter()
        # The process's semaphore first, so its threads queue without polling the files.
        with self._slots, host_slot(self.settings):
            try:
                raw = self._client.chat.completions.with_raw_response.create(
                    model=self.settings.model,
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=params.pop("max_tokens", self.settings.max_tokens),
                    **params,
                )
                completion = raw.parse()
            except openai.APIStatusError as exc:
                retries = self.settings.max_retries if _retryable(exc.status_code) else 0
                raise ServedCallFailed(
                    f"{self.settings.base_url}: HTTP {exc.status_code} after {retries} retries"
                ) from exc
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                raise ServedCallFailed(
                    f"{self.settings.base_url}: {type(exc).__name__} "
                    f"after {self.settings.max_retries} retries"
                ) from exc
        usage = completion.usage
        return ServedReply(
            text=completion.choices[0].message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            retries=int(raw.retries_taken),
            latency_ms=(time.perf_counter() - start) * 1000.0,
        )


def _retryable(status: int) -> bool:
    """The statuses the openai client retries (``_should_retry``)."""
    return status in (408, 409, 429) or status >= 500


class ServedChain:
    """A chain that is a served model alone (no retrieval): the question in, one answer out.

    The answer's ``extra`` carries the call's retries (``served_retries``), which the gate
    engine adds up; a failed call raises :class:`ServedCallFailed` (its case is unscored).
    """

    def __init__(self, settings: ServedSettings) -> None:
        self.settings = settings
        self.client = ServedClient(settings)

    def version(self) -> dict[str, str]:
        return {
            "chain": "served",
            "model": f"openai:{self.settings.base_url}:{self.settings.model}",
            "system": self.settings.system,
        }

    def invoke(self, question: str, seed: int | None = None, temperature: float | None = None) -> Any:
        from gates.chain import Answer

        params: dict[str, Any] = {}
        if seed is not None:
            params["seed"] = seed
        if temperature is not None:
            params["temperature"] = temperature
        messages = [
            {"role": "system", "content": self.settings.system},
            {"role": "user", "content": question},
        ]
        reply = self.client.chat(messages, **params)
        return Answer(
            answer=reply.text.strip(),
            latency_ms=reply.latency_ms,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            extra={RETRIES_KEY: reply.retries},
        )


def build_served_chain() -> ServedChain:
    """The chain factory for ``[tool.ragate.gates] chain = "gates.served:build_served_chain"``."""
    from ragate_core.project import find_project_root

    return ServedChain(ServedSettings.from_project(find_project_root()))


def served_counts(results: list[Any]) -> tuple[int, int]:
    """(retries, failed calls) over a run's :class:`~gates.engine.CaseResult` list.

    Retries come from fresh answers' ``extra`` (cached answers made no call); failures are
    the cases whose generation ended in :class:`ServedCallFailed`.
    """
    retries = sum(int((r.answer.extra or {}).get(RETRIES_KEY, 0)) for r in results if r.answer is not None)
    failures = sum(1 for r in results if r.error and f"{FAILED_PREFIX}:" in r.error)
    return retries, failures
