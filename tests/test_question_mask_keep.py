"""A question's mask spares the names its case's reference answer uses (found by an
independent tester: "When does the first ferry leave Port Ellery?" was scored as "... leave
<PERSON>?" and a correct answer got answer_relevancy 0.29). A name only the question holds
(a customer's) is still masked."""

from __future__ import annotations

import json
from pathlib import Path

from gates.engine import load_cases
from gates.profile import GateProfile


def test_names_of_the_reference_answer_stay_and_a_customers_name_is_masked(tmp_path: Path) -> None:
    rows = [
        {
            "id": "place",
            "question": "When does the first ferry leave Port Ellery?",
            "ground_truth": "The first ferry leaves Port Ellery at 06:40.",
            "source_ids": ["timetable"],
        },
        {
            "id": "customer",
            "question": "Hello, my name is Maria Jensen and I cannot log in.",
            "ground_truth": "Reset your password from the login page.",
            "source_ids": ["login"],
        },
    ]
    (tmp_path / "golden.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    profile = GateProfile(
        env="ci",
        datasets=[{"name": "golden", "path": "golden.jsonl"}],
        metrics={"answer_relevancy": {"rules": {"min_mean": 0.5}}},
    )
    questions = {c.id: c.question for c in load_cases(profile, tmp_path)}
    assert questions["place"] == "When does the first ferry leave Port Ellery?"
    assert "Maria Jensen" not in questions["customer"] and "<PERSON>" in questions["customer"]
