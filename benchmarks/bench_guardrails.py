"""Guardrails benchmark: per-request latency of the rails, p50/p95, with and without them.

    python benchmarks/bench_guardrails.py [--questions 12] [--requests 100] [--rounds 2]

Three measurements:

- rails only: the input rails on a message plus the output rails on an answer, with no
  model in between (golden questions with their reference answers, and adversarial
  prompts, which stop at the input rails);
- full chain without rails (``guardrails=False``) and with them, on the same golden
  questions, same model, same index, in alternating passes; the overhead is the paired
  difference per question (noisy: generation time varies more than the rails cost).

Writes benchmarks/results/guardrails.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import ROOT, peak_rss_mb, percentile, write_result


def _summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p95_ms": round(percentile(values_ms, 95), 2),
        "mean_ms": round(sum(values_ms) / len(values_ms), 2) if values_ms else float("nan"),
    }


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=12, help="golden questions through the full chain")
    parser.add_argument("--requests", type=int, default=100, help="requests through the rails alone")
    parser.add_argument("--rounds", type=int, default=2, help="alternating passes without/with rails")
    args = parser.parse_args()

    from rag.chain import RagChain
    from rag.config import load_config
    from rag.guardrails import default_guardrails
    from rag.ingest import ingest, open_store
    from rag.llm import make_generator

    golden = _rows(ROOT / "datasets/golden/qa.jsonl")
    attacks = _rows(ROOT / "datasets/adversarial/attacks.jsonl")

    start = time.perf_counter()
    rails = default_guardrails()
    rails.warm_up()
    load_s = time.perf_counter() - start

    # Rails alone: half answered questions (input + output rails), half attacks (input only,
    # most stop there), interleaved as traffic would be.
    half = args.requests // 2
    answered = [(str(r["question"]), str(r["ground_truth"])) for r in golden[:half]]
    hostile = [str(r["prompt"]) for r in attacks[: args.requests - len(answered)]]
    inputs_ms, outputs_ms, answered_ms, hostile_ms = [], [], [], []
    blocked = 0
    for i in range(max(len(answered), len(hostile))):
        if i < len(answered):
            question, answer = answered[i]
            t0 = time.perf_counter()
            first = rails.check_input(question)
            t1 = time.perf_counter()
            if not first.blocked:
                rails.check_output(first.text, answer, [answer])
            t2 = time.perf_counter()
            inputs_ms.append((t1 - t0) * 1000)
            outputs_ms.append((t2 - t1) * 1000)
            answered_ms.append((t2 - t0) * 1000)
        if i < len(hostile):
            t0 = time.perf_counter()
            outcome = rails.check_input(hostile[i])
            if not outcome.blocked:
                rails.check_output(outcome.text, "I don't know. The documentation does not cover that.")
            hostile_ms.append((time.perf_counter() - t0) * 1000)
            blocked += outcome.blocked

    # Full chain, with and without rails: same generator, same index.
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(ROOT, index_dir=Path(tmp) / "index")
        store = open_store(base)
        ingest(base, store=store)
        generator = make_generator(base)
        plain = RagChain(load_config(ROOT, index_dir=Path(tmp) / "index", guardrails=False), generator, store)
        guarded = RagChain(base, generator, store, guardrails=rails)
        plain.invoke("warm up: what plans are there?")  # model load is not latency
        questions = [str(r["question"]) for r in golden[: args.questions]]
        # Whole passes, alternated: llama.cpp reuses the evaluated prefix of the previous
        # prompt, so asking the same question twice in a row would flatter the second call.
        latencies: dict[str, list[list[float]]] = {"without": [], "with": []}
        for _ in range(args.rounds):
            for name, chain in (("without", plain), ("with", guarded)):
                latencies[name].append([chain.invoke(q).latency_ms for q in questions])
        without_ms = [v for run in latencies["without"] for v in run]
        with_ms = [v for run in latencies["with"] for v in run]
        overhead_ms = [b - a for a, b in zip(without_ms, with_ms)]

    write_result(
        "guardrails",
        {
            "rails_fingerprint": rails.fingerprint,
            "load_seconds": round(load_s, 2),
            "rails_only": {
                "answered_request": _summary(answered_ms),
                "input_rails": _summary(inputs_ms),
                "output_rails": _summary(outputs_ms),
                "adversarial_request": _summary(hostile_ms),
                "adversarial_blocked": f"{blocked}/{len(hostile)}",
            },
            "full_chain": {
                "model": base.model,
                "without_rails": _summary(without_ms),
                "with_rails": _summary(with_ms),
                "overhead_paired": _summary(overhead_ms),
            },
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "note": "2 shared cores; other jobs running make absolute figures noisy",
        },
    )


if __name__ == "__main__":
    main()
