"""The chain adapter fails closed (found by an independent tester): a chain's ``None`` or
empty answer is a generation failure, never the text "None" or an empty claim set that
faithfulness would pass, and a missing ``latency_ms`` is the measured wall time of the
call, never 0 ms. Fakes here are named as fakes: this tests the harness, not a model."""

from __future__ import annotations

import time

import pytest

from gates.chain import Answer, call_chain


class FakeSleepyChain:
    """Answers after ``seconds``, reporting whatever ``reply`` holds."""

    def __init__(self, reply: dict, seconds: float = 0.0) -> None:
        self.reply, self.seconds, self.calls = reply, seconds, []

    def invoke(self, question: str, **kwargs: object) -> dict:
        self.calls.append((question, kwargs))
        time.sleep(self.seconds)
        return self.reply


def test_none_answer_is_an_error_not_the_text_none() -> None:
    with pytest.raises(TypeError, match="answer None"):
        Answer.of({"answer": None, "contexts": []})


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_answer_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="empty answer"):
        Answer.of({"answer": text, "contexts": ["c"]})


def test_an_empty_blocked_answer_is_a_refusal() -> None:
    assert Answer.of({"answer": "", "blocked": True}).blocked


def test_missing_latency_is_the_measured_call_time() -> None:
    chain = FakeSleepyChain({"answer": "a", "contexts": []}, seconds=0.05)
    answer = call_chain(chain, "q")
    assert answer.latency_ms >= 50.0
    assert chain.calls == [("q", {})]


def test_reported_latency_wins_and_sampling_passes_seed_and_temperature() -> None:
    chain = FakeSleepyChain({"answer": "a", "contexts": [], "latency_ms": 7})
    answer = call_chain(chain, "q", repeat=2, temperature=0.7, sampled=True)
    assert answer.latency_ms == 7.0
    assert chain.calls == [("q", {"seed": 2, "temperature": 0.7})]
