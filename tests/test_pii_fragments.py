"""Personal data is never written in pieces: a metric's reason that quotes a masked value's
digit groups or a surname alone ("number not in the contexts: 171, 2345678") is masked with
the answer (ragate_core.pii.removed_fragments / mask_fragments)."""

from __future__ import annotations

from ragate_core.pii import FRAGMENT_PLACEHOLDER, mask_fragments, removed_fragments

ANSWER = "Call Lena Okafor on +49 171 2345678 or pay with 4111 1111 1111 1111; born 12.03.1985."
MASKED = "Call <PERSON> on <PHONE_NUMBER> or pay with <CREDIT_CARD>; born <DATE_TIME>."


def test_the_pieces_of_each_masked_span_are_found() -> None:
    assert removed_fragments(ANSWER, MASKED) == {
        "Lena", "Okafor", "49", "171", "2345678", "4111", "1111", "12", "03", "1985"
    }  # fmt: skip


def test_a_reason_quoting_pieces_is_masked() -> None:
    reason = "number not in the contexts: 1111, 12.03, 171, 2345678, 4111, 49; claim about Okafor"
    shown = mask_fragments(reason, removed_fragments(ANSWER, MASKED))
    for piece in ("1111", "12.03", "171", "2345678", "4111", "49", "Okafor"):
        assert piece not in shown
    assert shown.startswith("number not in the contexts: " + FRAGMENT_PLACEHOLDER)


def test_other_numbers_and_longer_runs_are_left() -> None:
    pieces = removed_fragments(ANSWER, MASKED)
    text = "claim 2 of 3 in 2024; 171000 users"
    assert mask_fragments(text, pieces) == text


def test_nothing_masked_means_no_pieces() -> None:
    assert removed_fragments("no personal data here", "no personal data here") == frozenset()


def test_texts_that_do_not_align_fall_back_to_every_missing_piece() -> None:
    assert removed_fragments("zz 1234 yy", "qq <X> yy") == {"1234"}


def test_reports_and_the_judgment_cache_mask_the_pieces(tmp_path) -> None:
    """The rule the reports, xdist shares and the judgment cache share (real masker)."""
    from gates.cache import Cache
    from gates.engine import masked_answer_and_reasons
    from gates.metrics.base import MetricCase, Score
    from gates.scoring import judgment_entries

    answer = "Sure, call Dr. Lena Okafor on +49 171 2345678."
    reason = "number not in the contexts: 171, 2345678, 49"
    shown, reasons = masked_answer_and_reasons(answer, ("Our desk opens at 9.",), {"faithfulness": reason})
    assert "2345678" not in shown and "Okafor" not in shown
    assert all(p not in reasons["faithfulness"] for p in ("171", "2345678", "49"))

    case = MetricCase(id="c", question="Who can I call?", answer=answer, contexts=("Our desk opens at 9.",))
    cache = Cache(tmp_path / "cache.sqlite")
    (entry,) = judgment_entries([case], [Score("faithfulness", "1", 0.2, reason)], [True], cache)
    assert entry["reason"] == reasons["faithfulness"]
    # No file of the cache holds the pieces: the mask entry of a reason masking leaves as it
    # is stores no copy of it (the tester's `mask` rows held "1111, 4111" raw).
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cache.sqlite*"))  # its -wal too
    assert all(p.encode() not in stored for p in ("2345678", "Okafor")), "raw pieces in the cache"


def test_reason_keys_in_lower_case_and_cut_are_masked_too() -> None:
    """A reason lists matching keys: lower case, cut to a stem ("jennif" for "Jennifer")."""
    pieces = removed_fragments("I called Jennifer Okafor.", "I called <PERSON>.")
    shown = mask_fragments("name not in the contexts: jennif, okafor, plan", pieces)
    assert shown == f"name not in the contexts: {FRAGMENT_PLACEHOLDER}, {FRAGMENT_PLACEHOLDER}, plan"
