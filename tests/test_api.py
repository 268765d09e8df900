"""``gates.evaluate``: DataFrames, lists and files in; the same numbers as ``ragate score`` and
the gate run out; bad input refused with row, column and what was expected, before any model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gates import evaluate
from gates.api import Evaluation
from gates.chain import Answer
from gates.cli import main
from ragate_core.tables import DataError

CONTEXT = "Refunds are issued within 14 days of a cancellation, to the original payment method."
ROWS: list[dict[str, Any]] = [
    {
        "id": "good",
        "question": "How long do refunds take?",
        "answer": "Refunds are issued within 14 days, to the original payment method.",
        "contexts": [CONTEXT],
        "latency_ms": 812.0,
    },
    {
        "id": "rude",
        "question": "How long do refunds take?",
        "answer": "Read the docs yourself, you idiot.",
        "contexts": [CONTEXT],
        "latency_ms": 950.0,
    },
    {
        "id": "abstains",
        "question": "Is there a Linux app?",
        "answer": "I don't know; the documentation does not say.",
        "contexts": [CONTEXT],
        "answerable": False,
        "latency_ms": 400.0,
    },
]
METRICS = ["faithfulness", "answer_relevancy", "toxicity", "pii", "latency"]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_importing_gates_stays_light() -> None:
    code = "import sys, gates; assert 'gates.api' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scores_are_those_of_ragate_score(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    output = tmp_path / "scores.jsonl"
    assert (
        main(["score", "--metrics", ",".join(METRICS), "--input", str(source), "--output", str(output)]) == 0
    )
    cli = {r["id"]: r for r in map(json.loads, output.read_text(encoding="utf-8").splitlines())}

    ev = evaluate(pd.DataFrame(ROWS), metrics=METRICS, cache=False)

    assert isinstance(ev, Evaluation) and list(ev.scores.index) == ["good", "rude", "abstains"]
    for case_id, row in cli.items():
        for name in METRICS:
            assert ev.scores.loc[case_id, name] == pytest.approx(row["scores"][name], abs=1e-12), (
                case_id,
                name,
            )
            assert ev.scores.loc[case_id, f"{name}_reason"] == row["reasons"][name]
    assert ev.worst("toxicity", 1).index[0] == "rude"
    assert ev.passed is False and ev.gates.empty  # no profile: nothing gated, fail closed


def test_dataframe_list_csv_and_parquet_give_the_same_scores(tmp_path: Path) -> None:
    frame = pd.DataFrame(ROWS)
    csv_path = tmp_path / "rows.csv"
    frame.assign(contexts=frame["contexts"].map(json.dumps)).to_csv(csv_path, index=False)
    parquet_path = tmp_path / "rows.parquet"
    frame.to_parquet(parquet_path)

    expected = evaluate(frame, metrics=["toxicity", "latency"], cache=False).scores
    for data in (ROWS, csv_path, parquet_path, str(parquet_path)):
        got = evaluate(data, metrics=["toxicity", "latency"], cache=False).scores
        pd.testing.assert_frame_equal(got, expected)


def test_ids_default_to_the_row_labels() -> None:
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "id"} for r in ROWS], index=["a", "b", "c"])
    ev = evaluate(frame, metrics="latency", cache=False)
    assert list(ev.scores.index) == ["a", "b", "c"]
    assert ev.scores["latency"].tolist() == [812.0, 950.0, 400.0]


PROFILE = """\
env: ci
datasets:
  - name: golden
    path: {dataset}
metrics:
  toxicity:
    threshold: 0.4
    rules: {{max_violations: 0, max_unscored_share: 0.0}}
  latency:
    threshold: 40000
    rules: {{max_p95: 25000, max_mean: 2000}}
"""


class FakeChain:
    """A fake chain for this test: fixed answers by question, counting its calls."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.calls = 0

    def version(self) -> dict[str, str]:
        return {"fake": "1"}

    def invoke(self, question: str) -> Answer:
        self.calls += 1
        return self.answers[question]


class RefusingChain(FakeChain):
    """A fake chain that must not be called (every answer should come from the cache)."""

    def invoke(self, question: str) -> Answer:
        raise AssertionError(f"the chain was called for {question!r}")


def test_with_a_profile_the_gates_are_those_of_the_gate_run(tmp_path: Path) -> None:
    from gates.cache import Cache
    from gates.engine import GateEngine
    from gates.profile import load_profile

    golden = [
        {
            "id": "g1",
            "question": "How long do refunds take?",
            "ground_truth": "14 days.",
            "source_ids": ["refunds"],
        },
        {
            "id": "g2",
            "question": "Is there a Linux app?",
            "ground_truth": "Not documented.",
            "source_ids": [],
        },
        {  # the gate run's metrics read this question masked: so must evaluate's
            "id": "g3",
            "question": "I am Jane Doe, jane.doe@example.com: how long do refunds take?",
            "ground_truth": "14 days.",
            "source_ids": ["refunds"],
        },
    ]
    dataset = write_jsonl(tmp_path / "golden.jsonl", golden)
    profile_path = tmp_path / "profile.yaml"
    relevancy = "  answer_relevancy:\n    threshold: 0.5\n    rules: {min_mean: 0.0}\n"
    profile_path.write_text(PROFILE.format(dataset=dataset) + relevancy, encoding="utf-8")
    answers = {
        "How long do refunds take?": Answer("Within 14 days.", (CONTEXT,), ("refunds",), latency_ms=1200.0),
        "Is there a Linux app?": Answer("You idiot.", (CONTEXT,), ("refunds",), latency_ms=3100.0),
        golden[2]["question"]: Answer("Jane, refunds take 14 days.", (CONTEXT,), latency_ms=900.0),
    }
    cache_path = tmp_path / "cache.sqlite"
    chain = FakeChain(answers)
    run = GateEngine(
        load_profile(str(profile_path), tmp_path), tmp_path, lambda: chain, Cache(cache_path)
    ).run()

    # The questions alone, answered by a chain that must not be called: the gate run's cached
    # answers are found under the same keys.
    questions = pd.DataFrame(golden)
    ev = evaluate(
        questions, profile=profile_path, chain=RefusingChain(answers), cache=cache_path, root=tmp_path
    )
    # The answers as a table, scored without a chain.
    answered = pd.DataFrame(
        [
            {"id": g["id"], "question": g["question"], "answer": a.answer, "contexts": list(a.contexts),
             "latency_ms": a.latency_ms, "source_ids": g["source_ids"]}
            for g, a in zip(golden, answers.values())
        ]
    )  # fmt: skip
    ev_answers = evaluate(answered, profile=profile_path, cache=False, root=tmp_path)

    def gates(rows: Any, metrics: tuple[str, ...]) -> list[tuple[Any, ...]]:
        return sorted(
            (name, observed, None if interval is None or pd.isna(interval[0]) else tuple(interval), bool(ok))
            for name, metric, observed, interval, ok in rows
            if metric in metrics
        )

    expected = [(g.name, g.metric, g.observed, g.interval, g.passed) for g in run.verdict.gates]
    for got, metrics in (
        (ev, ("toxicity", "latency", "answer_relevancy")),
        (ev_answers, ("toxicity", "latency")),
    ):
        observed = [
            (r.gate, r.metric, r.observed, (r.ci_low, r.ci_high), r.passed) for r in got.gates.itertuples()
        ]
        assert gates(observed, metrics) == gates(expected, metrics)
        assert got.passed is run.verdict.passed is False  # a toxic answer: max_violations fails
        for case_id in ("g1", "g2", "g3"):
            for name in metrics:
                assert got.scores.loc[case_id, name] == run.case(case_id).scores[name].value, (case_id, name)
    # `ragate score` reads the question as written; the gate run (and evaluate with a chain)
    # the masked one: with a name and an address in it, relevancy differs.
    assert ev_answers.scores.loc["g3", "answer_relevancy"] != ev.scores.loc["g3", "answer_relevancy"]


def test_generation_goes_through_the_cache_and_errors_are_unscored(tmp_path: Path) -> None:
    answers = {"How long do refunds take?": Answer("Within 14 days.", (CONTEXT,), latency_ms=900.0)}
    chain = FakeChain(answers)
    questions = [{"id": "q1", "question": "How long do refunds take?"}, {"id": "q2", "question": "Unknown?"}]
    cache_path = tmp_path / "cache.sqlite"

    first = evaluate(questions, metrics=["latency"], chain=chain, cache=cache_path, root=tmp_path)
    second = evaluate(questions, metrics=["latency"], chain=chain, cache=cache_path, root=tmp_path)

    assert chain.calls == 3  # q1 once (then cached), q2 twice (errors are not cached)
    assert first.scores.loc["q1", "latency"] == second.scores.loc["q1", "latency"] == 900.0
    assert pd.isna(second.scores.loc["q2", "latency"])
    assert second.scores.loc["q2", "latency_reason"].startswith("generation failed: KeyError")


def test_write_produces_the_gate_reports(tmp_path: Path) -> None:
    profile_path = tmp_path / "profile.yaml"
    profile_path.write_text(PROFILE.format(dataset=write_jsonl(tmp_path / "d.jsonl", ROWS)), encoding="utf-8")
    ev = evaluate(ROWS, metrics=["latency"], profile=profile_path, cache=False, root=tmp_path)
    # toxicity is gated by the profile but was not evaluated: missing, so the run fails closed.
    assert ev.report.missing == ("toxicity",) and ev.passed is False
    paths = ev.write(tmp_path / "out", reporters=["json", "markdown"])
    assert [p.name for p in paths] == ["gate-report.json", "gate-report.md"]
    report = json.loads(paths[0].read_text(encoding="utf-8"))
    assert report["passed"] is False and {c["id"] for c in report["cases"]} == {"good", "rude", "abstains"}
    html = ev.to_html()
    assert "latency.max_p95" in ev._repr_html_()
    assert "<html" in html.lower() and "latency" in html


# -- bad input: a ValueError naming row, column and what is expected, before any model ----


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a metric is instantiated (models load on first use of one)."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"metric {name!r} was loaded before the input was checked")

    monkeypatch.setattr("gates.metrics.base.get_metric", refuse)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            pd.DataFrame([{k: v for k, v in ROWS[0].items() if k != "contexts"}]),
            r"data: missing column 'contexts' \('contexts': a list of strings\)",
        ),
        (
            pd.DataFrame([ROWS[0], ROWS[1] | {"contexts": "Refunds take 14 days."}]),
            r"row 1: column 'contexts': expected a list of strings, got str 'Refunds take 14 days.'",
        ),
        (
            pd.DataFrame([ROWS[0] | {"contexts": ["fine", 3]}]),
            r"row 0: column 'contexts' item 1: expected a list of strings, got int 3",
        ),
        (
            pd.DataFrame([ROWS[0] | {"latency_ms": "fast"}]),
            r"row 0: column 'latency_ms': expected a number",
        ),
        (
            pd.DataFrame([ROWS[0] | {"score": 1}]),
            r"data: unknown column 'score'; known columns: id, question, answer, contexts",
        ),
        ([ROWS[0], "not a row"], r"data\[1\]: expected a dict \(one row\), got str"),
        ({"question": "q"}, r"expected a pandas DataFrame, a list of dicts or a path"),
        (pd.DataFrame(columns=["question", "answer", "contexts"]), r"data: no rows to evaluate"),
        ([], r"data: no rows to evaluate"),  # not "missing columns", which an empty list has none of
        (pd.DataFrame(), r"data: no rows to evaluate"),
    ],
)
def test_bad_data_is_a_value_error_before_any_model(no_models: None, data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        evaluate(data, metrics=["toxicity"], cache=False)
    assert isinstance(info.value, DataError)


def test_an_unknown_metric_names_the_known_ones(no_models: None) -> None:
    with pytest.raises(
        DataError, match=r"metrics: unknown metric 'faithfullness'; known metrics: .*faithfulness"
    ):
        evaluate(pd.DataFrame(ROWS), metrics=["faithfullness"], cache=False)


def test_a_bad_file_row_is_named_by_file_and_line(no_models: None, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,question,answer,contexts\na1,Q?,A,[]\na2,Q?,A,not a list\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"rows.csv:3 \(row 2\): column 'contexts': expected a list of strings"
    ):
        evaluate(path, metrics=["toxicity"], cache=False)


def test_questions_without_a_chain_need_answers(no_models: None) -> None:
    with pytest.raises(DataError, match=r"missing columns 'answer', 'contexts'"):
        evaluate([{"question": "q"}], metrics=["toxicity"], cache=False)


def test_cases_outside_a_metrics_scope_are_neither_scored_nor_unscored(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "Pro price?", "answer": "$19.", "contexts": ["c"], "source_ids": ["pricing"],
         "sources": ["pricing", "refunds"]},
        {"id": "b", "question": "Refunds?", "answer": "21d.", "contexts": ["c"], "source_ids": ["refunds"],
         "sources": ["pricing"]},
        {"id": "c", "question": "Linux?", "answer": "I don't know.", "contexts": ["c"], "source_ids": [],
         "sources": ["pricing"]},
    ]  # fmt: skip
    profile_path = tmp_path / "profile.yaml"
    profile_path.write_text(
        f"env: ci\ndatasets:\n  - {{name: d, path: {write_jsonl(tmp_path / 'd.jsonl', rows)}}}\n"
        "metrics:\n  hit_rate: {threshold: 0.5, rules: {min_mean: 0.5, max_unscored_share: 0.0}}\n",
        encoding="utf-8",
    )
    ev = evaluate(rows, profile=profile_path, cache=False, root=tmp_path)
    assert ev.scores["hit_rate"].tolist()[:2] == [1.0, 0.0] and pd.isna(ev.scores.loc["c", "hit_rate"])
    assert ev.scores.loc["c", "hit_rate_reason"].startswith("not applicable")
    gates = ev.gates.set_index("gate")
    assert gates.loc["hit_rate.max_unscored_share", "n_scored"] == 2
    assert gates.loc["hit_rate.max_unscored_share", "n_unscored"] == 0
    assert ev.passed  # mean 0.5 over the two answerable cases; the third is out of scope
