"""What a chain returns is checked field by field (gates.chain.Answer.of): a wrong type is a
generation failure that names the field, never text scored one character at a time; a
factory that returns no chain is one error; a chain without a version is keyed by its code."""

from __future__ import annotations

import importlib
import sys

import pytest

from gates.chain import Answer, chain_version, check_sampling_support, code_hash
from ragate_core.errors import UsageError


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ({"answer": "ok", "contexts": "one retrieved text"}, "'contexts' as str; return a list of strings"),
        ({"answer": "ok", "contexts": [], "sources": "doc-1"}, "'sources' as str"),
        ({"answer": 42, "contexts": []}, "answer 42 (int); return the answer text (str)"),
        ({"answer": "ok", "contexts": [], "latency_ms": "fast"}, "'latency_ms' = 'fast'; give a number"),
        ({"answer": "ok", "contexts": [], "prompt_tokens": "many"}, "'prompt_tokens' = 'many'"),
    ],
)
def test_a_field_of_the_wrong_type_is_named(result: dict, words: str) -> None:
    with pytest.raises(TypeError) as caught:
        Answer.of(result, measured_ms=1.0)
    assert words in str(caught.value)


def test_good_fields_are_read() -> None:
    answer = Answer.of(
        {"answer": "ok", "contexts": ("a", "b"), "sources": ["d"], "latency_ms": "12.5", "prompt_tokens": 3}
    )
    assert answer.contexts == ("a", "b") and answer.latency_ms == 12.5 and answer.prompt_tokens == 3


def test_a_chain_cannot_report_itself_faster_than_its_call_took() -> None:
    result = {"answer": "ok", "contexts": [], "latency_ms": 226.0}
    assert Answer.of(result, measured_ms=30_000.0).latency_ms == 30_000.0  # timer started late
    assert Answer.of(result, measured_ms=3.0).latency_ms == 226.0  # a recorded latency counts
    assert Answer.of({"answer": "ok", "contexts": []}, measured_ms=41.0).latency_ms == 41.0


def test_a_factory_result_without_invoke_is_refused() -> None:
    with pytest.raises(TypeError, match="returned int, which has no invoke"):
        chain_version(123, "mod:build")


def test_a_chain_without_a_version_is_keyed_by_its_code(tmp_path, monkeypatch) -> None:
    module = tmp_path / "fake_versionless_chain.py"
    source = "class Chain:\n    def invoke(self, q):\n        return {'answer': 'a', 'contexts': []}\n"
    module.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    first = importlib.import_module("fake_versionless_chain")
    before = chain_version(first.Chain(), "fake_versionless_chain:Chain")
    assert before["code"] == code_hash(first.Chain(), "fake_versionless_chain:Chain")
    module.write_text(module.read_text().replace("'a'", "'b'"))
    second = importlib.reload(first)
    after = chain_version(second.Chain(), "fake_versionless_chain:Chain")
    sys.modules.pop("fake_versionless_chain", None)
    assert after["code"] != before["code"]  # an edited chain never reads the old one's answers


def test_a_chain_with_its_own_version_keeps_it() -> None:
    class Versioned:
        def invoke(self, question: str) -> str:
            return question

        def version(self) -> dict[str, str]:
            return {"model": "m1"}

    assert chain_version(Versioned(), "x:y") == {"model": "m1", "factory": "x:y"}


class _FakePlainChain:
    """A fake chain for a test: invoke(question) only."""

    def invoke(self, question):
        return {"answer": "a", "contexts": []}


class _FakeSeedOnlyChain:
    def invoke(self, question, seed=None):
        return {"answer": "a", "contexts": []}


class _FakeSamplingChain:
    def invoke(self, question, *, seed=None, temperature=None):
        return {"answer": "a", "contexts": []}


class _FakeKwargsChain:
    def invoke(self, question, **options):
        return {"answer": "a", "contexts": []}


def test_a_sampling_profile_needs_a_chain_that_takes_seed_and_temperature() -> None:
    with pytest.raises(UsageError) as caught:
        check_sampling_support(_FakePlainChain(), "riverside:build", 3, 0.7)
    message = str(caught.value)
    assert "sampling (repeats: 3, temperature: 0.7)" in message
    assert "riverside:build's _FakePlainChain.invoke(question) has no seed or temperature" in message
    assert "def invoke(self, question, seed=None, temperature=None)" in message
    with pytest.raises(UsageError, match="has no temperature"):
        check_sampling_support(_FakeSeedOnlyChain(), "m:f", 2, None)
    check_sampling_support(_FakeSamplingChain(), "m:f", 3, 0.7)
    check_sampling_support(_FakeKwargsChain(), "m:f", 3, None)
