"""Served-model generation (gates/served.py) against a real HTTP server on 127.0.0.1: a fake
OpenAI-compatible server (stdlib ``http.server``) that answers 429 and 500 before 200 for
some questions and 503 always for one; retries are counted, calls in flight are capped,
and a call that fails after its retries leaves its case unscored, counted in the report."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gates.cache import NoCache
from gates.engine import GateEngine
from gates.profile import DatasetSpec, GateProfile, MetricGate
from gates.served import ServedCallFailed, ServedChain, ServedClient, ServedSettings
from ragate_core.errors import UsageError


class FakeOpenAIServer:
    """A fake OpenAI-compatible chat endpoint with scripted failures, on a free loopback port.

    A question containing ``flaky`` gets 429 then 500 then 200; ``down`` gets 503 every time;
    anything else 200 at once (after ``delay`` seconds). It records the requests it saw and
    the most calls it had in flight at once.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                question = body["messages"][-1]["content"]
                with server.lock:
                    attempt = server.seen[question] = server.seen.get(question, 0) + 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    if "down" in question:
                        reply = 503, {"error": {"message": "overloaded"}}
                    elif "flaky" in question and attempt <= 2:
                        reply = 429 if attempt == 1 else 500, {"error": {"message": "try again"}}
                    else:
                        reply = 200, _completion(f"answer to: {question}")
                finally:
                    # A call ends before its reply is sent: once the client has the reply it
                    # may start the next call, which must not find this one still counted.
                    with server.lock:
                        server.in_flight -= 1
                self._send(*reply)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("retry-after-ms", "20")  # keeps the test's backoff short
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "fake-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15},
    }


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def _settings(url: str, **changes: Any) -> ServedSettings:
    return ServedSettings.from_mapping(
        {"base_url": url, "model": "fake-model", "max_retries": 3, "timeout_s": 10, **changes}, "test"
    )


def test_429_then_500_then_200_is_retried_and_counted(server: FakeOpenAIServer) -> None:
    client = ServedClient(_settings(server.url))
    reply = client.chat([{"role": "user", "content": "a flaky question"}])
    assert reply.text == "answer to: a flaky question"
    assert reply.retries == 2 and server.seen["a flaky question"] == 3
    assert (reply.prompt_tokens, reply.completion_tokens) == (11, 4)
    assert client.chat([{"role": "user", "content": "a calm question"}]).retries == 0


def test_a_call_that_keeps_failing_raises_after_its_retries(server: FakeOpenAIServer) -> None:
    client = ServedClient(_settings(server.url, max_retries=2))
    with pytest.raises(ServedCallFailed, match="HTTP 503 after 2 retries"):
        client.chat([{"role": "user", "content": "the model is down"}])
    assert server.seen["the model is down"] == 3  # the first attempt and two retries


def test_calls_in_flight_never_exceed_the_cap() -> None:
    with FakeOpenAIServer(delay=0.2) as slow:
        client = ServedClient(_settings(slow.url, max_concurrency=2))
        with ThreadPoolExecutor(max_workers=8) as pool:
            replies = list(pool.map(lambda i: client.chat([{"role": "user", "content": f"q{i}"}]), range(8)))
    assert len(replies) == 8
    assert slow.max_in_flight == 2


def test_gate_report_counts_retries_and_a_failed_call_is_unscored(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    questions = ["a flaky question", "the model is down", "a calm question"]
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"id": f"q{i}", "question": q, "ground_truth": "x", "source_ids": ["d"], "tags": ["t"]}
            )
            + "\n"
            for i, q in enumerate(questions)
        )
    )
    profile = GateProfile(
        env="ci",
        datasets=[DatasetSpec(name="golden", path=data)],
        metrics={"latency": MetricGate(threshold=10_000)},
    )
    settings = _settings(server.url, max_retries=2)
    engine = GateEngine(profile, tmp_path, lambda: ServedChain(settings), NoCache())
    run = engine.run()
    assert run.stats.served_retries == 2  # the flaky question's 429 and 500
    assert run.stats.served_failures == 1
    down = run.case("q1")
    assert down.answer is None
    assert down.scores["latency"].value is None  # unscored, not dropped
    assert (
        "ServedCallFailed" in down.scores["latency"].reason
        and "after 2 retries" in down.scores["latency"].reason
    )
    assert run.case("q0").scores["latency"].value is not None
    assert not run.verdict.passed  # an unscored case fails the gate (max_unscored_share 0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"model": "m"}, "base_url is required"),
        ({"base_url": "http://x/v1", "model": "m", "max_retries": -1}, "max_retries = -1"),
        ({"base_url": "http://x/v1", "model": "m", "max_concurrency": 2.5}, "give a whole number >= 1"),
        ({"base_url": "http://x/v1", "model": "m", "retries": 3}, "unknown key(s) retries"),
    ],
)
def test_bad_served_settings_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ServedSettings.from_mapping(table, "pyproject.toml [tool.ragate.served]")
