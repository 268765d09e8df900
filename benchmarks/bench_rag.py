"""Foundation benchmark: ingest documents/s, `ask` latency p50/p95, tokens/s, peak memory.

    python benchmarks/bench_rag.py [--questions 20]

Writes benchmarks/results/rag.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import ROOT, peak_rss_mb, percentile, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()

    from rag.chain import RagChain
    from rag.config import load_config
    from rag.ingest import ingest, load_corpus, open_store
    from ragate_core.embeddings import default_embeddings

    default_embeddings().encode(["warm up"])  # model load is not ingest throughput
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(ROOT, index_dir=Path(tmp) / "index")
        docs = load_corpus(config.path(config.corpus_dir))
        store = open_store(config)
        start = time.perf_counter()
        stats = ingest(config, store=store)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        again = ingest(config, store=store)
        warm = time.perf_counter() - start

        chain = RagChain(config, store=store)
        rows = [json.loads(line) for line in (ROOT / "datasets/golden/qa.jsonl").read_text().splitlines()]
        questions = [r["question"] for r in rows[: args.questions]]
        start = time.perf_counter()
        chain.invoke("warm up: what plans are there?")
        model_load = time.perf_counter() - start
        latencies, completion, generation_s = [], 0, 0.0
        for q in questions:
            result = chain.invoke(q)
            latencies.append(result.latency_ms)
            completion += result.completion_tokens
            generation_s += result.latency_ms / 1000.0
    write_result(
        "rag",
        {
            "model": config.model,
            "prompt": config.prompt,
            "ingest": {
                "documents": len(docs),
                "chunks": stats.chunks_embedded,
                "cold_seconds": round(cold, 3),
                "documents_per_second": round(len(docs) / cold, 2),
                "chunks_per_second": round(stats.chunks_embedded / cold, 2),
                "unchanged_reingest_seconds": round(warm, 3),
                "unchanged_reingest_embedded": again.chunks_embedded,
            },
            "ask": {
                "questions": len(questions),
                "first_call_seconds_with_model_load": round(model_load, 3),
                "latency_ms_p50": round(percentile(latencies, 50), 1),
                "latency_ms_p95": round(percentile(latencies, 95), 1),
                "completion_tokens_per_second": round(completion / generation_s, 1) if generation_s else None,
            },
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
    )


if __name__ == "__main__":
    main()
