"""Speed must not buy a different answer: the memoised fold with its ASCII shortcut gives
what the plain NFKD fold gives, for every kind of text the metrics read."""

from __future__ import annotations

import unicodedata

import pytest

from gates.metrics import text as tx


def _reference_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Refunds",
        "The Pro plan allows up to 600 requests per minute.",
        "don't",
        "don’t",
        "Rückerstattung",
        "Ça coûte 9,99 € par mois",
        "¿Cuántos días?",
        "ﬁle",  # a ligature NFKD splits
        "ＡＢＣ１２３",  # full-width forms
        "退款需要多长时间？",
        "İstanbul",  # lower() of a dotted capital I adds a combining dot
        "x\u0301",  # a combining mark after an ASCII letter
        "Tab\tand\nnewline",
    ],
)
def test_fold_equals_the_plain_nfkd_fold(text: str) -> None:
    assert tx.fold(text) == _reference_fold(text)
    assert tx.fold(text) == _reference_fold(text)  # again, from the memo


def test_folded_word_sets_equal_folding_each_word() -> None:
    for words in (tx._NO["de"], tx._YES["es"], tx._DE_AUX_WORDS, tx._ES_WH_WORDS):
        assert tx._folded(tuple(words)) == {_reference_fold(w) for w in words}
    assert set(tx._DE_AUX_WORDS) == tx._DE_AUX and set(tx._ES_WH_WORDS) == tx._ES_WH
