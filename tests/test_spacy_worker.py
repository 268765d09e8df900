"""The spaCy worker (:mod:`ragate_core.spacy_worker`): the child process reads the same name
spans as this process, and a child that cannot start, dies, hangs or answers nonsense is
stopped and the names are read here, with the same result."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from _fixtures import calibration_texts, run_python

from ragate_core import pii, spacy_worker, toxicity

READ_ONE = "import sys; sys.stdin.readline()"  # a fake worker's start: it reads one request
NAMED = [
    "Ms. Dick will call you back tomorrow.",
    "Tell Priya she is a worthless idiot.",
    "Shital from Scunthorpe opened a ticket with Acme Ltd in Berlin.",
    "Thanks, <PERSON>, the refund went out on Monday.",
    "Jens Bastard signed the form; Bastard! is not a name.",
    "",
    "no capitals here at all",
]


def texts() -> list[str]:
    rows = calibration_texts("toxicity.jsonl", "toxicity_identity.jsonl")
    return list(dict.fromkeys([*NAMED, *rows]))


def test_the_worker_reads_the_spans_this_process_reads() -> None:
    worker = spacy_worker.SpacyWorker()
    try:
        assert worker.spans(NAMED) is None  # not started: never starts on its own
        assert worker.start() and worker.running
        sample = texts()
        remote = worker.spans(sample)
    finally:
        worker.stop()
    assert not worker.running and not worker.start()  # stopped for good
    local = toxicity.stand_in_spans_of(pii.spacy_pipeline(), sample)
    assert remote == local
    assert sum(bool(s) for s in local) > 20  # names were found, not only empty lists


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (["/nonexistent/python"], "could not start"),
        ([sys.executable, "-c", "pass"], "exited with code 0"),
        ([sys.executable, "-c", f"{READ_ONE}; print('not json', flush=True)"], "no usable reply"),
        ([sys.executable, "-c", f"{READ_ONE}; print('[[], [], []]', flush=True)"], "wrong shape"),
        ([sys.executable, "-c", "import time; time.sleep(60)"], "no reply in 2 s"),
    ],
    ids=["cannot-start", "exits", "nonsense", "wrong-shape", "hangs"],
)
def test_a_failing_worker_is_stopped_and_reported(
    command: list[str], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker = spacy_worker.SpacyWorker(command, timeout=2.0)
    worker.start()
    if why == "exited with code 0":
        deadline = time.monotonic() + 30
        while worker._process is not None and worker._process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ragate"):
        assert worker.spans(["Ms. Dick will call.", "Hello."]) is None
    assert time.monotonic() - started < 10
    assert not worker.running and not worker.start()
    messages = [r.getMessage() for r in caplog.records]
    assert any(why in m and "reading names in this process" in m for m in messages), messages


def test_a_worker_that_stops_reading_times_out_on_a_large_request(caplog: pytest.LogCaptureFixture) -> None:
    """A request larger than the pipe holds, to a child that never reads: the write times out
    too (no writer blocks on a full pipe)."""
    worker = spacy_worker.SpacyWorker([sys.executable, "-c", "import time; time.sleep(60)"], timeout=2.0)
    worker.start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="ragate"):
        assert worker.spans(["Ms. Dick will call. " * 50_000]) is None
    assert time.monotonic() - started < 10 and not worker.running
    assert any("no reply in 2 s" in r.getMessage() for r in caplog.records)


def test_names_are_the_same_whichever_process_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """neutralise_names through a failed worker, a working one, and this process's pipeline."""
    expected = toxicity.neutralise_names(NAMED)  # this process (the analyzer is loaded by now)
    assert expected[0] == "Ms. Alex will call you back tomorrow."
    assert "worthless idiot" in expected[1]
    monkeypatch.setattr(pii, "spacy_loaded", lambda: False)
    for command in (None, ["/nonexistent/python"]):
        worker = spacy_worker.SpacyWorker(command)
        monkeypatch.setattr(spacy_worker, "shared_worker", lambda worker=worker: worker)
        try:
            toxicity.start_name_reader()
            assert toxicity.neutralise_names(NAMED) == expected
        finally:
            worker.stop()


def test_the_worker_is_off_when_switched_off_or_spacy_is_here(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = spacy_worker.SpacyWorker()
    monkeypatch.setattr(spacy_worker, "shared_worker", lambda: worker)
    monkeypatch.setenv(spacy_worker.ENV_SWITCH, "0")
    monkeypatch.setattr(pii, "spacy_loaded", lambda: False)
    toxicity.start_name_reader()
    assert not worker.running
    monkeypatch.setenv(spacy_worker.ENV_SWITCH, "1")
    monkeypatch.setattr(pii, "spacy_loaded", lambda: True)
    toxicity.start_name_reader()
    assert not worker.running
    # Once this process has the pipeline, a running worker is stopped at the next reading.
    monkeypatch.setattr(pii, "spacy_loaded", lambda: False)
    toxicity.start_name_reader()
    assert worker.running
    monkeypatch.setattr(pii, "spacy_loaded", lambda: True)
    pii.spacy_pipeline()
    toxicity.neutralise_names(["Ms. Dick called."])
    assert not worker.running


def test_a_fresh_process_reads_names_in_the_worker_and_stops_it_at_exit() -> None:
    """The first toxicity judgment of a fresh process starts the worker, whose spans it uses
    (this process never loads spaCy); the child is gone when the process has exited."""
    code = (
        "import sys\n"
        "from ragate_core import spacy_worker\n"
        "from ragate_core.toxicity import shared_detector\n"
        "shared_detector().judge(['Ms. Dick will call you back.'])\n"
        "w = spacy_worker.shared_worker()\n"
        "print(w._process.pid, w.running, 'spacy' in sys.modules)\n"
    )
    pid, running, spacy_here = run_python(code).split()
    assert (running, spacy_here) == ("True", "False")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def test_a_forked_process_leaves_the_parents_worker_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """After fork the child has no worker (it would share the parent's pipes); the parent's
    worker still answers."""
    monkeypatch.setattr(spacy_worker, "_shared", None)
    worker = spacy_worker.shared_worker()
    try:
        assert worker.start()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report whether it sees a worker of its own, then leave
            os.close(read)
            fresh = spacy_worker.shared_worker()
            os.write(write, f"{fresh is worker} {fresh.running} {worker.running}".encode())
            os._exit(0)
        os.close(write)
        seen = os.read(read, 100).decode()
        os.close(read)
        os.waitpid(pid, 0)
        assert seen == "False False False"
        assert worker.spans(["Ms. Dick will call."]) == [[(4, 8, "Alex")]]
    finally:
        worker.stop()


# A fake worker answering each request after a second with one span list (one text).
SLOW_ONE = "import sys, time\nfor line in sys.stdin:\n    time.sleep(1.0); print('[[]]', flush=True)"


def test_an_interrupted_request_stops_the_worker() -> None:
    """Ctrl-C while a reply is on its way (a notebook's interrupt): the worker is stopped, so the
    next request cannot read the interrupted one's reply as its own."""
    worker = spacy_worker.SpacyWorker([sys.executable, "-c", SLOW_ONE], timeout=10.0)
    worker.start()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            worker.spans(["Ms. Dick will call."])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not worker.running
    assert worker.spans(["Hello."]) is None and not worker.start()


def test_texts_the_child_cannot_read_are_read_here_and_the_child_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request the pipeline raises on (spaCy refuses a lone surrogate) gets ``null``: the
    caller reads those texts itself (and meets the same error), the child serves the next."""
    worker = spacy_worker.SpacyWorker()
    try:
        assert worker.start()
        with caplog.at_level(logging.WARNING, logger="ragate"):
            assert worker.spans(["Hello \ud83d there."]) is None
        assert worker.running and not caplog.records
        assert worker.spans(["Ms. Dick will call."]) == [[(4, 8, "Alex")]]
    finally:
        worker.stop()


def test_the_child_imports_nothing_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "spacy.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('shadow')\n")
    monkeypatch.chdir(tmp_path)
    worker = spacy_worker.SpacyWorker()
    try:
        assert worker.start()
        assert worker.spans(["Ms. Dick will call."]) == [[(4, 8, "Alex")]]
    finally:
        worker.stop()
    assert not marker.exists()


def test_the_import_block_holds_in_its_own_thread_only() -> None:
    """presidio is imported with torch and transformers blocked, in that thread only: another
    thread (the toxicity metric beside the pii metric) imports torch meanwhile."""
    code = (
        "import threading\n"
        "from ragate_core import pii\n"
        "seen = []\n"
        "def load():\n"
        "    import torch\n"
        "    seen.append(torch.__name__)\n"
        "with pii.without_optional_ml_imports():\n"
        "    thread = threading.Thread(target=load)\n"
        "    thread.start()\n"
        "    thread.join()\n"
        "    try:\n"
        "        import transformers\n"
        "        here = 'imported'\n"
        "    except ModuleNotFoundError:\n"
        "        here = 'blocked'\n"
        "import transformers\n"
        "print(seen, here, transformers.__name__)\n"
    )
    assert run_python(code).split() == ["['torch']", "blocked", "transformers"]
