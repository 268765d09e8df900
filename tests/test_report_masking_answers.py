"""What reports hold of an answer: a chain that leaks a customer's data in its answer gets it
masked in the answer and in every reason that quotes it (issue 11: "everything ragate writes
holds the masked text"; a new-user tester found the faithfulness reason quoting the raw
answer). Real presidio/spaCy masker; the people and numbers are fictional."""

from __future__ import annotations

import json
import os
import stat

from gates.chain import Answer
from gates.engine import Case, CaseResult, masked_answer_and_reasons
from gates.metrics.base import Score
from ragate_core.jsonl import write_text

LEAK = "Please call Lars Oberholzer at +49 170 5551234 or write to lars.oberholzer@example.org."
RAW = ("Lars Oberholzer", "5551234", "lars.oberholzer@example.org")


def _result(answer: str, contexts: tuple[str, ...] = ("Refunds take 5 days.",)) -> CaseResult:
    case = Case(
        id="c1", base_id="c1", dataset="d", question="How do I reach billing?", metrics=("faithfulness",)
    )
    score = Score("faithfulness", "1", 0.2, f"weakest claim '{answer[:60]}'")
    return CaseResult(case, Answer(answer, contexts=contexts), scores={"faithfulness": score})


def test_a_leaking_answer_and_the_reason_quoting_it_are_masked() -> None:
    shown = json.dumps(_result(LEAK).to_dict(), ensure_ascii=False)
    assert not [raw for raw in RAW if raw in shown], shown
    assert "<EMAIL_ADDRESS>" in shown and "<PERSON>" in shown


def test_values_quoted_from_the_contexts_stay() -> None:
    context = "Billing questions: write to billing@example.com."
    answer, reasons = masked_answer_and_reasons(
        "Write to billing@example.com.", (context,), {"faithfulness": "supported 'billing@example.com'"}
    )
    assert answer == "Write to billing@example.com."
    assert reasons == {"faithfulness": "supported 'billing@example.com'"}


def test_written_files_get_the_usual_mode_not_mkstemps_0600(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.txt"
        write_text(fresh, "x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o640)
        write_text(kept, "new")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "new"
    finally:
        os.umask(old)
