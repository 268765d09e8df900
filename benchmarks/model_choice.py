"""Which local model should the chain ship with? Runs the golden set through the chain
with each packaged model (and the prompt style that suits it) and scores the answers
with the offline metrics.

    python benchmarks/model_choice.py [--limit N]

Writes benchmarks/results/model_choice.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import ROOT, percentile, write_result

CANDIDATES = [
    ("smollm2-135m-instruct", "answer-v1"),  # instruction-tuned: chat template
    ("gemma3-270m", "answer-completion-v1"),  # base model: completion prompt with examples
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="first N golden cases (default: all)")
    args = parser.parse_args()

    from gates.metrics.base import MetricCase, get_metric
    from gates.metrics.text import abstains
    from rag.chain import RagChain
    from rag.config import load_config
    from rag.ingest import ingest, open_store

    rows = [json.loads(line) for line in (ROOT / "datasets/golden/qa.jsonl").read_text().splitlines()]
    rows = rows[: args.limit] if args.limit else rows
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model, prompt in CANDIDATES:
            config = load_config(ROOT, index_dir=Path(tmp) / "index", model=model, prompt=prompt)
            store = open_store(config)
            ingest(config, store=store)
            chain = RagChain(config, store=store)
            answers = [chain.invoke(r["question"]) for r in rows]
            cases = [
                MetricCase(
                    r["id"],
                    r["question"],
                    a.answer,
                    tuple(a.contexts),
                    r["ground_truth"],
                    bool(r["source_ids"]),
                )
                for r, a in zip(rows, answers, strict=True)
            ]
            scores = {m: get_metric(m).score_batch(cases) for m in ("faithfulness", "answer_relevancy")}
            unanswerable = [a for r, a in zip(rows, answers, strict=True) if not r["source_ids"]]
            answerable = [a for r, a in zip(rows, answers, strict=True) if r["source_ids"]]
            results[model] = {
                "prompt": prompt,
                "cases": len(rows),
                **{f"{m}_mean": round(sum(s.value or 0 for s in v) / len(v), 4) for m, v in scores.items()},
                **{
                    f"{m}_pass_rate": round(sum((s.value or 0) >= 0.5 for s in v) / len(v), 4)
                    for m, v in scores.items()
                },
                "abstains_when_unanswerable": round(
                    sum(abstains(a.answer) for a in unanswerable) / max(1, len(unanswerable)), 4
                ),
                "abstains_when_answerable": round(
                    sum(abstains(a.answer) for a in answerable) / max(1, len(answerable)), 4
                ),
                "latency_ms_p50": round(percentile([a.latency_ms for a in answers], 50), 1),
                "latency_ms_p95": round(percentile([a.latency_ms for a in answers], 95), 1),
                "examples": [
                    {"id": r["id"], "question": r["question"], "answer": a.answer}
                    for r, a in list(zip(rows, answers, strict=True))[:5]
                ],
            }
    write_result("model_choice", {"models": results})


if __name__ == "__main__":
    main()
