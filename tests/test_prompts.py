"""Versioned prompt templates: loading, validation, and filling that never re-reads braces."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.prompts import PROMPTS_DIR, load_prompt
from ragate_core.errors import UsageError


def test_shipped_prompts_load():
    names = sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml"))
    assert "answer-v1" in names
    for name in names:
        prompt = load_prompt(name)
        assert prompt.name == name
        assert prompt.version == name  # the version is named after its file
        assert prompt.style in ("chat", "completion")


def test_chat_prompt_puts_context_in_system_and_question_in_user():
    prompt = load_prompt("answer-v1")
    messages = prompt.messages("Refunds take 5 days.", "How long do refunds take?")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Refunds take 5 days." in messages[0]["content"]
    assert "{context}" not in messages[0]["content"]
    assert messages[1]["content"] == "How long do refunds take?"


def test_completion_prompt_is_one_text_with_both_slots_filled():
    prompt = load_prompt("answer-completion-v1")
    assert prompt.style == "completion"
    text = prompt.text("Exports expire after 3 days.", "When do exports expire?")
    assert [m["role"] for m in prompt.messages("c", "q")] == ["user"]  # empty system is dropped
    assert text.rstrip().endswith(
        "Context: Exports expire after 3 days.\nQuestion: When do exports expire?\nAnswer:"
    )
    assert "{question}" not in text and "{context}" not in text


def test_sha256_is_the_hash_of_the_file():
    prompt = load_prompt("answer-v1")
    assert prompt.sha256 == hashlib.sha256((PROMPTS_DIR / "answer-v1.yaml").read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "context",
    ["Use {question} as a literal", 'JSON: {"a": {"b": 1}}', "format {0} {} {{x}}", r"regex \1 \g<0> $1"],
)
def test_braces_and_backslashes_in_context_are_kept_verbatim(context):
    prompt = load_prompt("answer-v1")
    system, user = prompt.messages(context, "Q?")
    assert context in system["content"]
    assert user["content"] == "Q?"  # "{question}" inside the context was not filled


@given(context=st.text(max_size=200), question=st.text(min_size=1, max_size=100))
def test_filling_is_verbatim_for_any_text(context, question):
    prompt = load_prompt("answer-v1")
    system_template = prompt.system
    before, after = system_template.split("{context}")
    system, user = prompt.messages(context, question)
    assert system["content"] == before + context + after
    assert user["content"] == question


def test_load_prompt_from_a_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "version: mine-2\nstyle: chat\nsystem: 'Ctx: {context}'\nuser: '{question}'\n", encoding="utf-8"
    )
    prompt = load_prompt(str(path))
    assert (prompt.name, prompt.version) == ("mine", "mine-2")
    assert prompt.messages("C", "Q") == [
        {"role": "system", "content": "Ctx: C"},
        {"role": "user", "content": "Q"},
    ]


def test_unknown_prompt_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"prompt 'nope': .*known prompts: .*answer-v1"):
        load_prompt("nope")


@pytest.mark.parametrize(
    "body,problem",
    [
        ("version: x\nstyle: chat\nuser: '{question}'\n", "no {context} slot"),
        ("version: x\nstyle: chat\nsystem: '{context}'\nuser: 'hi'\n", "no {question} slot"),
        ("version: x\nstyle: poem\nuser: '{context} {question}'\n", "not a valid prompt file"),
        (
            "version: x\nstyle: chat\nuser: '{context} {question}'\ntemperature: 1\n",
            "not a valid prompt file",
        ),
        ("version: [unclosed\n", "not a valid prompt file"),
        ("", "not a valid prompt file"),
    ],
)
def test_invalid_prompt_files_name_the_file(tmp_path, body, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(UsageError) as info:
        load_prompt(str(path))
    assert str(path) in str(info.value)
    assert problem in str(info.value)
