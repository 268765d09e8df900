"""The chain contract: what Answer.of accepts and the errors that name a missing field."""

from types import SimpleNamespace

import pytest

from gates.chain import Answer


def test_a_mapping_with_answer_and_contexts_is_accepted():
    answer = Answer.of({"answer": "Pro costs $29.", "contexts": ["Pro: $29 a month."], "latency_ms": 12})
    assert answer.contexts == ("Pro: $29 a month.",)
    assert answer.latency_ms == 12.0


def test_an_object_with_attributes_is_accepted():
    answer = Answer.of(SimpleNamespace(answer="Yes.", contexts=[], sources=["faq"]))
    assert answer.contexts == () and answer.sources == ("faq",)


@pytest.mark.parametrize(
    "result, field",
    [({"text": "no answer"}, "'answer'"), ({"answer": "Pro costs $29."}, "'contexts'")],
)
def test_a_missing_contract_field_is_named(result, field):
    with pytest.raises(TypeError, match=field):
        Answer.of(result)


def test_a_blocked_answer_may_omit_its_contexts():
    answer = Answer.of({"answer": "I can't help with that.", "blocked": True, "rail": "injection"})
    assert answer.blocked and answer.contexts == ()
