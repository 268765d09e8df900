"""The team's data: the corpus and the golden set are valid, big enough and consistent."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gates.schema import UNANSWERABLE_TAG, AnswerRow, GoldenCase, QuestionRow
from rag.ingest import load_corpus
from ragate_core.jsonl import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "datasets" / "corpus"
GOLDEN = ROOT / "datasets" / "golden" / "qa.jsonl"


@pytest.fixture(scope="module")
def golden() -> list[GoldenCase]:
    return read_jsonl(GOLDEN, GoldenCase)


@pytest.fixture(scope="module")
def corpus_ids() -> set[str]:
    return {doc.doc_id for doc in load_corpus(CORPUS)}


def test_corpus_has_at_least_25_documents(corpus_ids):
    assert len(corpus_ids) >= 25
    assert "refund-policy" in corpus_ids


def test_corpus_documents_are_substantial():
    for doc in load_corpus(CORPUS):
        assert doc.text.lstrip().startswith("# "), f"{doc.path}: should open with a title"
        assert len(doc.text.split()) >= 60, f"{doc.path}: only {len(doc.text.split())} words"


def test_datasets_is_data_only():
    assert not (ROOT / "datasets" / "__init__.py").exists()


def test_golden_set_has_at_least_60_cases(golden):
    assert len(golden) >= 60
    assert len({case.id for case in golden}) == len(golden)
    assert len({case.question.lower() for case in golden}) == len(golden), "duplicate questions"


def test_at_least_ten_percent_unanswerable(golden):
    unanswerable = [case for case in golden if not case.answerable]
    assert len(unanswerable) >= 0.10 * len(golden)


def test_unanswerable_cases_are_tagged_and_say_so(golden):
    for case in golden:
        assert (UNANSWERABLE_TAG in case.tags) == (not case.answerable), case.id
        if not case.answerable:
            assert "not" in case.ground_truth.lower(), (
                f"{case.id}: the ground truth should say it does not know"
            )


def test_every_source_id_is_a_corpus_document(golden, corpus_ids):
    unknown = {(case.id, s) for case in golden for s in case.source_ids if s not in corpus_ids}
    assert not unknown


def test_answerable_cases_cover_many_documents(golden, corpus_ids):
    cited = {s for case in golden for s in case.source_ids}
    assert len(cited) >= 0.6 * len(corpus_ids)


def test_numbers_in_ground_truths_appear_in_their_sources(golden):
    import re

    texts = {doc.doc_id: doc.text for doc in load_corpus(CORPUS)}
    for case in golden:
        if not case.answerable:
            continue
        source_text = " ".join(texts[s] for s in case.source_ids)
        for number in re.findall(r"\d+(?:[.,]\d+)?", case.ground_truth):
            assert number in source_text, f"{case.id}: {number} is not in {case.source_ids}"


def test_golden_rows_are_valid_question_rows(golden):
    # `ragate ask --input datasets/golden/qa.jsonl` accepts golden rows as they are.
    questions = read_jsonl(GOLDEN, QuestionRow)
    assert [q.id for q in questions] == [case.id for case in golden]


# --- schema -----------------------------------------------------------------------------


def test_golden_case_rejects_unknown_and_missing_fields():
    with pytest.raises(ValidationError, match="extra"):
        GoldenCase(id="x", question="q?", ground_truth="a", source_ids=[], answer="typo")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="ground_truth"):
        GoldenCase(id="x", question="q?", source_ids=[])  # type: ignore[call-arg]


@pytest.mark.parametrize("field", ["id", "question", "ground_truth"])
def test_golden_case_rejects_blank_text(field):
    data = {"id": "x", "question": "q?", "ground_truth": "a", "source_ids": ["doc"], field: "  \n "}
    with pytest.raises(ValidationError, match=field):
        GoldenCase(**data)


def test_answerable_follows_source_ids():
    assert GoldenCase(id="a", question="q?", ground_truth="x", source_ids=["doc"]).answerable
    assert not GoldenCase(id="b", question="q?", ground_truth="x", source_ids=[]).answerable


def test_answer_row_accepts_ask_output():
    row = AnswerRow(
        id="1",
        question="q?",
        answer="a",
        contexts=["c"],
        sources=["doc"],
        latency_ms=1.5,
        prompt_tokens=3,
        completion_tokens=2,
        blocked=False,
        rail=None,
    )
    assert row.contexts == ["c"]
    with pytest.raises(ValidationError):
        AnswerRow(id="1", question="q?", answer="a", contexts="c")  # contexts must be a list


# --- property: rows round-trip through JSON and the schema ------------------------------

_text = st.text(min_size=1, max_size=60).filter(lambda s: s.strip())
_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=3, max_size=20)
golden_rows = st.builds(
    GoldenCase,
    id=_text,
    question=_text,
    ground_truth=_text,
    source_ids=st.lists(_ids, max_size=3),
    tags=st.lists(st.text(max_size=12), max_size=3),
)


@given(golden_rows)
def test_golden_rows_round_trip_through_json(case):
    again = GoldenCase.model_validate_json(case.model_dump_json())
    assert again == case
    assert again.answerable == case.answerable
    assert GoldenCase.model_validate(json.loads(json.dumps(case.model_dump()))) == case


@given(st.lists(golden_rows, min_size=1, max_size=5, unique_by=lambda c: c.id))
def test_golden_rows_round_trip_through_jsonl_files(tmp_path_factory, cases):
    path = tmp_path_factory.mktemp("golden") / "qa.jsonl"
    write_jsonl(path, [case.model_dump() for case in cases])
    assert read_jsonl(path, GoldenCase) == cases
