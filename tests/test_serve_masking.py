"""The service's masker (gates/serve.py): every string of a span's inputs and outputs masked
in one call, in a child process when ``ragate serve`` runs one, with the same result as
masking in-process; a failed child falls back to in-process masking, never to raw text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gates import serve

EMAIL = "m.vollenweider@example.org"
NAME = "Margarethe Vollenweider"


@pytest.fixture(scope="module")
def masker() -> Iterator[serve.MaskerProcess]:
    process = serve.MaskerProcess()
    try:
        yield process
    finally:
        process.close()


def test_the_child_process_masks_as_this_process_does(masker: serve.MaskerProcess) -> None:
    texts = [f"Mail {EMAIL} please, {NAME}.", "Refunds are paid within 14 days.", ""]
    assert masker.mask_texts(texts) == serve._mask_texts(texts)
    assert EMAIL not in masker.mask_texts(texts)[0] and not masker.failed


def test_mask_sends_every_new_string_at_once_and_keeps_the_shape(
    masker: serve.MaskerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    original = masker.mask_texts

    def counted(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        return original(texts)

    monkeypatch.setattr(masker, "mask_texts", counted)
    monkeypatch.setattr(serve, "_MASKER", masker)
    value = {"question": f"I am {NAME}", "contexts": (f"write to {EMAIL}", 3), "blocked": False}
    masked = serve.mask(value)
    assert len(calls) == 1 and sorted(calls[0]) == sorted([f"I am {NAME}", f"write to {EMAIL}"])
    expected = {"question": "I am <PERSON>", "contexts": ["write to <EMAIL_ADDRESS>", 3], "blocked": False}
    assert masked == expected
    # Its own output is known to be masked: the span processor's second pass costs nothing.
    assert serve.mask(masked) == masked and len(calls) == 1


def test_a_failed_child_falls_back_to_masking_here() -> None:
    broken = serve.MaskerProcess()
    broken.close()  # the child is gone: submitting fails
    assert broken.mask_texts([f"Mail {EMAIL}"]) == ["Mail <EMAIL_ADDRESS>"]
    assert broken.failed
