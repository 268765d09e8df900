"""A dataset that gives no case says why (found by an independent tester: a tag filter that
matched nothing, or an empty file, failed the run with "nothing scored" and no reason)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.engine import load_cases
from gates.profile import GateProfile
from ragate_core.errors import UsageError

ROWS = [
    {
        "id": "a",
        "question": "How do I reset it?",
        "ground_truth": "Hold 5 s.",
        "source_ids": ["d"],
        "tags": ["how-to"],
    },
    {
        "id": "b",
        "question": "What does it cost?",
        "ground_truth": "10 EUR.",
        "source_ids": ["d"],
        "tags": ["billing"],
    },
]


def _profile(tmp_path: Path, rows: list[dict], **dataset: object) -> GateProfile:
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return GateProfile(
        env="ci",
        datasets=[{"name": "qa", "path": "qa.jsonl", **dataset}],
        metrics={"answer_relevancy": {"rules": {"min_mean": 0.5}}},
    )


def test_a_tag_filter_matching_nothing_names_the_key_and_the_tags_there_are(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_cases(_profile(tmp_path, ROWS, sample={"tags": ["shipping"]}), tmp_path)
    assert "datasets[0].sample.tags: no case of" in str(info.value)
    assert "its tags: billing, how-to" in str(info.value)


def test_an_empty_dataset_is_a_usage_error_unless_optional(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"datasets\[0\]\.path: .* holds no case"):
        load_cases(_profile(tmp_path, []), tmp_path)
    assert load_cases(_profile(tmp_path, [], optional=True), tmp_path) == []


def test_a_matching_filter_selects(tmp_path: Path) -> None:
    assert [c.id for c in load_cases(_profile(tmp_path, ROWS, sample={"tags": ["billing"]}), tmp_path)] == [
        "b"
    ]


def test_a_sample_that_leaves_cases_out_says_how_many_it_gates(tmp_path: Path) -> None:
    # An independent tester's golden set of 30 untagged rows was gated on 2 cases (per_tag: 2,
    # one group) with nothing said: the run now says so, and how to gate more.
    untagged = [{**ROWS[0], "id": f"u{i}", "tags": []} for i in range(5)]
    sampled: list[str] = []
    profile = _profile(tmp_path, [*ROWS, *untagged], sample={"per_tag": 1})
    cases = load_cases(profile, tmp_path, sampled=sampled)
    assert len(cases) == 3
    assert sampled == [
        "qa: gating 3 of 7 cases (sample: per_tag 1 over 3 group(s) by first tag; "
        "its 5 untagged cases are one group: tag them to gate more)"
    ]
    everything: list[str] = []
    load_cases(_profile(tmp_path, ROWS, sample={"per_tag": 1}), tmp_path, sampled=everything)
    assert everything == []  # nothing left out, nothing said
