"""The chain's second backend, for teams with a served model, against a real
OpenAI-compatible server: llama-cpp-python's, started on 127.0.0.1 by the conftest."""

from __future__ import annotations

import pytest

from rag.chain import RagChain


@pytest.mark.slow
def test_chain_answers_through_an_openai_compatible_server(corpus_index, llama_server, monkeypatch) -> None:
    config, store = corpus_index
    monkeypatch.setenv("RAGATE_TEST_KEY", "not-needed-on-loopback")
    served = config.model_copy(
        update={
            "backend": "openai",
            "openai_base_url": llama_server,
            "openai_model": "smollm2-135m-instruct",
            "openai_api_key_env": "RAGATE_TEST_KEY",
            "guardrails": False,
        }
    )
    chain = RagChain(served, store=store)
    assert chain.version()["model_sha256"] == f"openai:{llama_server}:smollm2-135m-instruct"

    result = chain.invoke("How much does the Pro plan cost per user per month?")

    assert result.answer.strip()
    assert "plans-and-pricing" in result.sources
    assert result.prompt_tokens > 100  # the filled prompt, with its retrieved context, went over HTTP
    assert result.completion_tokens > 0
    assert result.latency_ms > 0
    assert "$" in result.answer  # a price: the served model answered this question (a tiny model
    # may get the figure wrong: catching that is the gates' job, not this test's)
