"""The spaCy pipeline in a child process, so that loading it overlaps the parent's own start-up.

The toxicity detector needs two model libraries before its first score: torch (MiniLM) and
spaCy (names, :func:`ragate_core.toxicity.neutralise_names`), ~1.3 and ~1.5 CPU-s to import
and load on the 2-core machine of issue 12. Imports hold the interpreter lock, so threads
cannot overlap them (measured: 4.9 s in two threads against 4.4 s one after the other); two
processes can. :class:`SpacyWorker` starts ``python -c "...spacy_worker.main()"`` (the same
``ragate_core`` as the parent's), which loads the same pipeline folder the PII analyzer
loads (``spacy.load(ragate_core.pii.spacy_model_path())``, as presidio does) while the
parent imports torch, and then answers requests: texts in, the name spans of each
(:func:`ragate_core.toxicity.stand_in_spans_of`) out. Same pipeline, same code, same
spans: ``tests/test_spacy_worker.py`` compares them with the in-process reading.

Protocol: one JSON line per request on the child's stdin (a list of texts), one JSON line
per reply on its stdout (a list, per text, of ``[start, end, stand_in]`` spans; ``null`` when
the pipeline raised on these texts: the parent then reads them itself, and gets the same
error). The child exits at end of input (the parent closed it or died). It runs with
``python -P``: the working directory is not on its import path.

Failure is never a wrong answer: a worker that cannot start, dies, or does not reply within
:data:`REPLY_TIMEOUT` seconds is stopped and reported once (logger ``ragate``), and the
caller reads the names in its own process (:meth:`SpacyWorker.spans` returns None). A
request interrupted by any exception (Ctrl-C in a notebook) stops the worker too, so that
no later request can read the interrupted one's reply.
``RAGATE_SPACY_WORKER=0`` turns the child off.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The first reply includes importing spaCy and loading the pipeline (~1.5 s on 2 cores); a
# request is at most one scoring batch (64 answers of up to 20,000 characters).
REPLY_TIMEOUT = 60.0
ENV_SWITCH = "RAGATE_SPACY_WORKER"
CHILD = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from ragate_core.spacy_worker import main; main()"

Spans = list[tuple[int, int, str]]

log = logging.getLogger("ragate")


def enabled() -> bool:
    """False when ``RAGATE_SPACY_WORKER`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in {"0", "false", "no", "off"}


class SpacyWorker:
    """One child process holding the spaCy pipeline; thread-safe, started on :meth:`start`."""

    def __init__(self, command: Sequence[str] | None = None, timeout: float = REPLY_TIMEOUT) -> None:
        """``command``: the child's argv (default: this interpreter running :func:`main`);
        ``timeout``: seconds to wait for any one reply."""
        # -P: the working directory is not on the child's sys.path (a json.py or spacy.py there
        # is not imported), as it is not on the ``ragate`` command's.
        self._command = list(command) if command is not None else [sys.executable, "-P", "-c", CHILD]
        self._timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether a child is up (started and not stopped)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> bool:
        """Start the child unless it runs or has failed; returns whether it runs. Never raises."""
        with self._lock:
            if self._process is None and not self._failed:
                try:
                    self._process = subprocess.Popen(
                        self._command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        bufsize=0,
                    )
                except OSError as exc:
                    self._fail(f"could not start ({exc})")
            return self.running

    def spans(self, texts: Sequence[str]) -> list[Spans] | None:
        """The name spans of each text, read by the child; None when no child runs (not
        started, stopped, or failed: a child that fails now is stopped). Waits for a child
        still loading; never starts one."""
        with self._lock:
            process = self._process
            if process is None or process.stdin is None or process.stdout is None:
                return None
            if process.poll() is not None:
                self._fail(f"exited with code {process.returncode}")
                return None
            try:
                deadline = time.monotonic() + self._timeout
                request = json.dumps(list(texts)).encode("utf-8") + b"\n"
                _write_all(process.stdin.fileno(), request, deadline)
                reply = json.loads(_read_line(process.stdout.fileno(), deadline))
            except TimeoutError:
                self._fail(f"gave no reply in {self._timeout:.0f} s")
                return None
            except (OSError, ValueError) as exc:
                self._fail(f"gave no usable reply ({exc})")
                return None
            except BaseException:
                # Interrupted (KeyboardInterrupt in a notebook) with a reply perhaps still on its
                # way: a later request would read it as its own. The worker is done.
                self._stop()
                raise
        if reply is None:  # the child could not read these texts (it says so, and keeps running)
            return None
        if not isinstance(reply, list) or len(reply) != len(texts):
            with self._lock:
                self._fail("gave a reply of the wrong shape")
            return None
        return [[(int(start), int(end), str(word)) for start, end, word in spans] for spans in reply]

    def stop(self) -> None:
        """Close the child's input (it exits) and reap it; later :meth:`start` calls start none."""
        with self._lock:
            self._stop()

    def _fail(self, why: str) -> None:
        # Called under the lock.
        log.warning("the spaCy worker %s; reading names in this process", why)
        self._stop()

    def _stop(self) -> None:
        """Stop the child for good (under the lock): no later :meth:`start` starts another."""
        self._failed = True
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # an idle child exits at end of input
        if process.poll() is None:
            process.terminate()  # a child still loading has nothing worth waiting for
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _wait(fd: int, event: int, deadline: float) -> None:
    """Wait until ``fd`` is ready for ``event`` (poll, not select: select fails on descriptors
    above 1023); TimeoutError at ``deadline`` (time.monotonic())."""
    poller = select.poll()
    poller.register(fd, event)
    left = deadline - time.monotonic()
    if left <= 0 or not poller.poll(left * 1000):
        raise TimeoutError("no reply in time")


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write ``data`` to the pipe ``fd`` by the deadline (a child that stopped reading times out
    rather than blocking the writer on a full pipe)."""
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline)
        view = view[os.write(fd, view[: 1 << 16]) :]


def _read_line(fd: int, deadline: float) -> bytes:
    """Bytes up to a newline from ``fd`` by the deadline; TimeoutError after it, OSError at end
    of file (the child exited)."""
    chunks: list[bytes] = []
    while True:
        _wait(fd, select.POLLIN, deadline)
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise OSError("the child exited")
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            return b"".join(chunks)


_shared: SpacyWorker | None = None
_shared_lock = threading.Lock()


def shared_worker() -> SpacyWorker:
    """The process's one worker (stopped at exit; a forked process gets its own)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SpacyWorker()
            atexit.register(_shared.stop)
        return _shared


def _forget_in_child() -> None:
    """After ``fork``: the parent's worker belongs to the parent. Close this process's copies
    of its pipes (two writers on one pipe would mix requests) and start afresh if needed."""
    global _shared, _shared_lock
    _shared_lock = threading.Lock()
    worker, _shared = _shared, None
    process = worker._process if worker is not None else None
    if worker is None or process is None:
        return
    worker._process, worker._failed = None, True
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


os.register_at_fork(after_in_child=_forget_in_child)


def main() -> None:
    """The child: load the pipeline, then answer one JSON line per JSON line until end of input."""
    from ragate_core.pii import spacy_model_path, without_optional_ml_imports
    from ragate_core.toxicity import stand_in_spans_of

    with without_optional_ml_imports():  # as the analyzer loads it: thinc need not import torch
        import spacy

        nlp = spacy.load(spacy_model_path())
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            reply: Any = stand_in_spans_of(nlp, json.loads(line))
        except Exception:  # e.g. spaCy refuses a lone surrogate: the parent reads these texts itself
            reply = None
        out.write(json.dumps(reply).encode("utf-8") + b"\n")
        out.flush()


__all__ = ["ENV_SWITCH", "REPLY_TIMEOUT", "SpacyWorker", "enabled", "main", "shared_worker"]
