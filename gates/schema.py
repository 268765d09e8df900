"""Rows that enter ragate from files: golden cases, questions to ask, answers to score.

Pydantic lives here, at the edge; unknown fields are errors (a typo must not pass).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _id_text(value: object) -> object:
    """A whole-number id is its decimal text (a Parquet or DataFrame column of integers, a
    JSON ``7``): ``7`` and ``"7"`` are one id. A float or a boolean is refused: ``1.0`` or
    ``true`` is not a name anyone meant, and a float column is often integers with a gap."""
    if isinstance(value, bool | float):
        raise PydanticCustomError(
            "case_id",
            'an id is text such as "q1" or a whole number such as 7, not a {kind}',
            {"kind": type(value).__name__},
        )
    return str(value) if isinstance(value, int) else value


# Every row's ``id``, whatever the file type or the path that reads it.
CaseId = Annotated[NonBlank, BeforeValidator(_id_text)]
UNANSWERABLE_TAG = "unanswerable"


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuestionRow(_Row):
    """A question for ``ragate ask --input``; golden rows are accepted as they are."""

    id: CaseId
    question: NonBlank
    ground_truth: str | None = None
    source_ids: list[str] | None = None
    tags: list[str] = Field(default_factory=list)


class GoldenCase(QuestionRow):
    """A row of ``datasets/golden/qa.jsonl``: a question with its reference answer.

    An empty ``source_ids`` means the corpus does not hold the answer: the chain
    should say it does not know.
    """

    ground_truth: NonBlank
    source_ids: list[str]

    # What an unknown field meant, for the message that refuses it.
    FIELD_HINTS: ClassVar[dict[str, str]] = {
        "answerable": "a golden row is unanswerable when its source_ids is empty ([])",
    }

    @property
    def answerable(self) -> bool:
        return bool(self.source_ids)


class RegressionRow(_Row):
    """A row of ``datasets/regression/*.jsonl`` (``ragate feedback export``): a question a
    user rated down, with the corrected answer as ``ground_truth`` when one was given.

    No ``source_ids``: feedback does not say which documents hold the answer, so the
    retrieval metrics do not apply to these rows (see ``kind: regression`` in
    :mod:`gates.profile`); a row without ``ground_truth`` is not judged for correctness.
    """

    id: CaseId
    question: NonBlank
    ground_truth: str | None = None
    tags: list[str] = Field(default_factory=list)


class AnswerRow(_Row):
    """An answer to score (``ragate score --input``); ``ragate ask`` output is accepted."""

    id: CaseId
    question: NonBlank
    answer: str
    contexts: list[str]
    ground_truth: str | None = None
    answerable: bool | None = None
    source_ids: list[str] | None = None
    tags: list[str] = Field(default_factory=list)
    sources: list[str] | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    blocked: bool | None = None
    rail: str | None = None
