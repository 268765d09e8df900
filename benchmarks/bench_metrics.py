"""Offline metric speed (issue 12), written to benchmarks/results/metrics.json.

For every offline metric (faithfulness, answer_relevancy, answer_correctness, toxicity,
pii), on golden-shaped cases (``_common.golden_shaped_rows``: a golden question, three
~100-word corpus passages, an answer of 1-3 sentences):

- **start-up**: a fresh process's import of the metric plus its first score (one case),
  wall and CPU seconds;
- **time to the first score** of ``ragate score --metrics <metric>`` on ``--small`` rows:
  from starting the process to its first batch scored (``_common.time_to_first_score``);
- **marginal throughput**: case-metrics per second between a ``--small``-case and a
  ``--cases``-case run, each in a fresh process after its start-up
  (``(large - small) / (t_large - t_small)``), so start-up is excluded; from wall seconds
  and from the worker's CPU seconds (on a shared machine the wall time measures the others);
- medians of ``--repeats`` runs and their spread (min, max), with the load average, since
  the 2 cores are shared.

Side by side in the same run (``side_by_side`` of each metric: ragate's marginal rate over
the naive one), the nearest offline equivalent a user would otherwise pick, one case at a
time: the same all-MiniLM-L6-v2 through sentence-transformers (answer against each context,
question against answer, answer against reference); for toxicity alt-profanity-check's
``predict_prob``; for pii presidio's ``AnalyzerEngine`` with its default recognizers on the
same spaCy model; and deepeval's non-LLM ``Scorer`` functions where they run offline (exact
match; its SummaC faithfulness and cross-encoder relevancy download models at run time and
cannot run here). The LLM-judge tier's per-case time is quoted from ``results/llm_judge.json``.

    python benchmarks/bench_metrics.py [--cases 1000] [--small 100] [--repeats 3]

``--first-score-only`` measures just the time to the first score (and the import floors
under it: the interpreter, torch) and writes ``results/first_score.json``; about 1-2 minutes
on a quiet 2-core machine with ``--repeats 3``:

    python benchmarks/bench_metrics.py --first-score-only [--repeats 3] [--metrics faithfulness,...]

Run time on a quiet 2-core machine: about 10-12 minutes with the defaults (per metric and
repeat: two workers, one naive worker, one ``ragate score`` process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT, bytecode_env, time_to_first_score, write_result

METRICS = ("faithfulness", "answer_relevancy", "answer_correctness", "toxicity", "pii")
_ST = "sentence-transformers all-MiniLM-L6-v2"
# The naive equivalent of each metric, one case at a time (for MiniLM: which texts it compares).
NAIVE = {
    "faithfulness": f"{_ST}, answer vs each context, one encode call per case",
    "answer_relevancy": f"{_ST}, question vs answer, one encode call per case",
    "answer_correctness": f"{_ST}, answer vs reference, one encode call per case",
    "toxicity": "alt-profanity-check predict_prob, one answer per call",
    "pii": "presidio AnalyzerEngine (default recognizers, the same spaCy model), one answer per analyze call",
}


def _worker(metric_name: str, n: int) -> dict[str, float]:
    """Run inside a fresh process: start-up (import + first score), then ``n`` cases."""
    start = time.perf_counter()
    from _common import golden_shaped_rows

    from gates.metrics.base import get_metric
    from gates.scoring import metric_case, score_batches

    metric = get_metric(metric_name)
    first = metric_case(golden_shaped_rows(1, seed=99)[0])
    score_batches(metric, [first])
    startup = time.perf_counter() - start
    startup_cpu = time.process_time()
    cases = [metric_case(r) for r in golden_shaped_rows(n)]
    start, cpu = time.perf_counter(), time.process_time()
    scores = score_batches(metric, cases)
    return {
        "startup_seconds": startup,
        "startup_cpu_seconds": startup_cpu,
        "run_seconds": time.perf_counter() - start,
        "run_cpu_seconds": time.process_time() - cpu,
        "unscored": sum(s.value is None for s in scores),
    }


def _naive_scorer(metric_name: str) -> Any:
    """The naive equivalent of ``metric_name`` (:data:`NAIVE`): a function of one row."""
    if metric_name == "toxicity":
        from profanity_check import predict_prob

        return lambda row: float(predict_prob([row["answer"]])[0])
    if metric_name == "pii":
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import SpacyNlpEngine

        from ragate_core.pii import spacy_model_path

        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": str(spacy_model_path())}])
        engine.load()
        analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
        return lambda row: float(bool(analyzer.analyze(text=row["answer"], language="en")))
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from ragate_core.embeddings import minilm_path

    model = SentenceTransformer(str(minilm_path()), device="cpu")

    def score(row: dict[str, Any]) -> float:
        if metric_name == "faithfulness":
            texts = [row["answer"], *row["contexts"]]
        elif metric_name == "answer_relevancy":
            texts = [row["question"], row["answer"]]
        else:
            texts = [row["answer"], row["ground_truth"]]
        v = model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return float(np.max(v[1:] @ v[0]))

    return score


def _naive_worker(metric_name: str, n: int) -> dict[str, float]:
    """The naive equivalent (:data:`NAIVE`) in a fresh process: start-up, then ``n`` cases."""
    start = time.perf_counter()
    from _common import golden_shaped_rows

    score = _naive_scorer(metric_name)
    score(golden_shaped_rows(1, seed=99)[0])
    startup = time.perf_counter() - start
    startup_cpu = time.process_time()
    rows = golden_shaped_rows(n)
    start, cpu = time.perf_counter(), time.process_time()
    for row in rows:
        score(row)
    return {
        "startup_seconds": startup,
        "startup_cpu_seconds": startup_cpu,
        "run_seconds": time.perf_counter() - start,
        "run_cpu_seconds": time.process_time() - cpu,
    }


def _deepeval_exact_match(n: int) -> dict[str, float]:
    from _common import golden_shaped_rows
    from deepeval.scorer import Scorer

    rows = golden_shaped_rows(n)
    start = time.perf_counter()
    for row in rows:
        Scorer.quasi_exact_match_score(row["ground_truth"], row["answer"])
    elapsed = time.perf_counter() - start
    return {"run_seconds": elapsed, "case_metrics_per_second": n / elapsed if elapsed else float("inf")}


def _onnx_texts(n: int) -> list[str]:
    """Distinct texts of the metrics' shapes: questions, answers, references and passages."""
    from _common import golden_shaped_rows

    texts: list[str] = []
    for row in golden_shaped_rows(n):
        texts += [row["question"], row["answer"], row["ground_truth"], *row["contexts"]]
    return list(dict.fromkeys(texts))


def _encoder_worker(kind: str, model: str, n: int, out: str) -> dict[str, float]:
    """A fresh process: start-up (import, load, first vector) and the vectors of ``n`` rows'
    texts, written to ``out`` (.npy). ``kind`` torch: ragate's encoder
    (``ragate_core.embeddings``); onnx: ``model`` (an ONNX MiniLM) through onnxruntime and
    the tokenizers package with the same tokenizer, no padding, mean pooling, L2 norm."""
    start = time.perf_counter()
    import numpy as np

    from ragate_core.embeddings import minilm_path

    if kind == "torch":
        from ragate_core.embeddings import MiniLMEncoder

        encoder = MiniLMEncoder()
        encode = encoder.encode
    else:
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(256)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

        def encode(texts: list[str]) -> np.ndarray:
            rows = []
            for encoding in tokenizer.encode_batch(texts):
                ids = np.array([encoding.ids], dtype=np.int64)
                hidden = session.run(
                    None,
                    {
                        "input_ids": ids,
                        "attention_mask": np.ones_like(ids),
                        "token_type_ids": np.zeros_like(ids),
                    },
                )[0][0]
                pooled = hidden.mean(axis=0)
                rows.append(pooled / np.linalg.norm(pooled))
            return np.stack(rows).astype(np.float32)

    encode(["How long is the free trial?"])
    startup = time.perf_counter() - start
    texts = _onnx_texts(n)
    start = time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - start
    np.save(out, vectors)
    return {"startup_seconds": startup, "texts": len(texts), "texts_per_second": len(texts) / seconds}


def onnx_candidate(model: str, n: int, repeats: int) -> dict[str, Any]:
    """ragate's torch encoder against an ONNX MiniLM: max abs difference of the vectors, and
    start-up (fresh processes, side by side, in turn) and texts per second."""
    import tempfile

    import numpy as np

    runs: dict[str, list[dict[str, float]]] = {"torch": [], "onnx": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for kind in runs:
                out = str(Path(tmp) / f"{kind}.npy")
                runs[kind].append(_spawn("--encoder", kind, model, str(n), out))
        a, b = np.load(Path(tmp) / "torch.npy"), np.load(Path(tmp) / "onnx.npy")
    diff = np.abs(a - b)
    cosine = (a * b).sum(axis=1)
    return {
        "model": model,
        "texts": int(a.shape[0]),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "min_cosine": float(cosine.min()),
        "identical_to_1e-6": bool(diff.max() <= 1e-6),
        **{
            kind: {
                "startup_seconds": _summary([r["startup_seconds"] for r in rs]),
                "texts_per_second": _summary([r["texts_per_second"] for r in rs], 1),
            }
            for kind, rs in runs.items()
        },
    }


IMPORT_FLOORS = {
    "python": "pass",
    "torch": "import torch",
    "sentence_transformers": "import sentence_transformers",
    "presidio_analyzer": "import presidio_analyzer",
    "onnxruntime+tokenizers": "import onnxruntime, tokenizers",
}


def import_floors(repeats: int) -> dict[str, Any]:
    """Seconds a fresh process takes to import each library alone (interpreter start
    included): the floor under any metric's start-up that needs it."""
    out: dict[str, list[float]] = {name: [] for name in IMPORT_FLOORS}
    for _ in range(repeats):
        for name, code in IMPORT_FLOORS.items():  # in turn, so the load hits each alike
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
            out[name].append(time.perf_counter() - start)
    return {name: _summary(values) for name, values in out.items()}


FIRST_SCORE_FLOORS = {
    "python": "pass",
    "torch": "import torch",
    "ragate score imports, no model": "import gates.cli, gates.scoring, gates.metrics.faithfulness",
}


def first_score_only(metrics: list[str], small: int, repeats: int) -> dict[str, Any]:
    """Time to the first score of ``ragate score`` for each metric (fresh processes, in turn,
    so load hits each alike), and the import floors under it."""
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in metrics}
    floors: dict[str, list[float]] = {name: [] for name in FIRST_SCORE_FLOORS}
    loads: list[float] = []
    env = bytecode_env()  # bytecode compiled, as an installed package has it
    for _ in range(repeats):
        for name in metrics:
            loads.append(os.getloadavg()[0])
            for key, value in time_to_first_score(name, small).items():
                runs[name].setdefault(key, []).append(value)
        for label, code in FIRST_SCORE_FLOORS.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
            floors[label].append(time.perf_counter() - start)
    return {
        "what": "wall seconds from starting `ragate score --metrics METRIC` on --small golden-shaped "
        "rows to its first batch (gates.scoring.batch_slices: FIRST_BATCH cases) scored "
        "(benchmarks/_common.py time_to_first_score), that process's CPU seconds by then, and the "
        "CPU seconds of its child processes by then (the spaCy worker that loads toxicity's "
        "name reader beside it: ragate_core/spacy_worker.py)",
        "small": small,
        "repeats": repeats,
        "load_average_1min_at_each_run": [round(v, 2) for v in loads],
        "metrics": {
            name: {key: _summary(values) for key, values in found.items()} for name, found in runs.items()
        },
        "import_seconds_fresh_process": {label: _summary(values) for label, values in floors.items()},
    }


def _appender(runs: dict[str, list[float]]) -> Any:
    def add(key: str, value: float) -> None:
        runs.setdefault(key, []).append(value)

    return add


def _spawn(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'benchmarks'}{os.pathsep}{ROOT}"}
    result = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _summary(values: list[float], digits: int = 3) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def _llm_judge_reference() -> dict[str, Any]:
    path = RESULTS / "llm_judge.json"
    if not path.is_file():
        return {"source": None}
    data = json.loads(path.read_text())
    return {
        "source": "benchmarks/results/llm_judge.json (benchmarks/bench_llm_judge.py, "
        f"created {data.get('created')}, {data.get('judge', {}).get('model')})",
        "seconds_per_case_p50": {k: v.get("seconds_per_case_p50") for k, v in data.get("llm", {}).items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument(
        "--name", default="metrics", help="results/<name>.json (another name for a trial run at small sizes)"
    )
    parser.add_argument(
        "--import-floors", action="store_true", help="also time importing torch, sentence-transformers, ..."
    )
    parser.add_argument("--worker", nargs=2, metavar=("METRIC", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--naive", nargs=2, metavar=("METRIC", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--exact-match", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--encoder", nargs=4, metavar=("KIND", "MODEL", "N", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--onnx-candidate",
        metavar="MODEL.onnx",
        help="only compare ragate's torch MiniLM with this ONNX MiniLM (vectors, start-up): "
        "writes results/onnx_minilm.json",
    )
    parser.add_argument(
        "--first-score-only",
        action="store_true",
        help="only the time to the first score of `ragate score` per metric (and the torch import "
        "floor): writes results/first_score.json",
    )
    args = parser.parse_args()
    if args.first_score_only:
        load_before = os.getloadavg()
        names = [m.strip() for m in args.metrics.split(",") if m.strip()]
        result = first_score_only(names, args.small, args.repeats)
        result["load_average_before"] = [round(v, 2) for v in load_before]
        result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        write_result("first_score" if args.name == "metrics" else args.name, result)
        return
    if args.encoder:
        kind, model, n, out = args.encoder
        print(json.dumps(_encoder_worker(kind, model, int(n), out)))
        return
    if args.onnx_candidate:
        load_before = os.getloadavg()
        result = onnx_candidate(args.onnx_candidate, 200, args.repeats)
        result["load_average_before"] = [round(v, 2) for v in load_before]
        result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        write_result("onnx_minilm", result)
        return
    if args.worker:
        print(json.dumps(_worker(args.worker[0], int(args.worker[1]))))
        return
    if args.naive:
        print(json.dumps(_naive_worker(args.naive[0], int(args.naive[1]))))
        return
    if args.exact_match:
        print(json.dumps(_deepeval_exact_match(args.exact_match)))
        return

    load_before = os.getloadavg()
    metrics: dict[str, Any] = {}
    for name in [m.strip() for m in args.metrics.split(",") if m.strip()]:
        runs: dict[str, list[float]] = {}
        add = _appender(runs)

        unscored = 0
        for _ in range(args.repeats):
            small = _spawn("--worker", name, str(args.small))
            large = _spawn("--worker", name, str(args.cases))
            for worker in (small, large):
                add("startup", worker["startup_seconds"])
                add("startup_cpu", worker["startup_cpu_seconds"])
            delta = large["run_seconds"] - small["run_seconds"]
            add("marginal", (args.cases - args.small) / delta if delta > 0 else float("inf"))
            cpu_delta = large["run_cpu_seconds"] - small["run_cpu_seconds"]
            add("marginal_cpu", (args.cases - args.small) / cpu_delta if cpu_delta > 0 else float("inf"))
            add("small_rate", args.small / small["run_seconds"])
            unscored += small["unscored"] + large["unscored"]
            first = time_to_first_score(name, args.small)
            add("first_score", first["first_score_seconds"])
            add("first_score_cpu", first["first_score_cpu_seconds"])
            # Side by side, in the same run: the naive equivalent on the same rows.
            naive = _spawn("--naive", name, str(args.small))
            add("naive_rate", args.small / naive["run_seconds"])
            add("naive_rate_cpu", args.small / naive["run_cpu_seconds"] if naive["run_cpu_seconds"] else 0.0)
            add("naive_startup", naive["startup_seconds"])
        median = {key: statistics.median(values) for key, values in runs.items()}
        entry: dict[str, Any] = {
            "startup_seconds": _summary(runs["startup"]),
            "startup_cpu_seconds": _summary(runs["startup_cpu"]),
            "ragate_score_first_score_seconds": _summary(runs["first_score"]),
            "ragate_score_first_score_cpu_seconds": _summary(runs["first_score_cpu"]),
            "marginal_case_metrics_per_second": _summary(runs["marginal"], 1),
            "marginal_case_metrics_per_cpu_second": _summary(runs["marginal_cpu"], 1),
            f"first_{args.small}_cases_per_second_after_startup": _summary(runs["small_rate"], 1),
            "unscored": unscored,
            "naive": {
                "what": NAIVE[name],
                "startup_seconds": _summary(runs["naive_startup"]),
                "case_metrics_per_second": _summary(runs["naive_rate"], 1),
                "case_metrics_per_cpu_second": _summary(runs["naive_rate_cpu"], 1),
            },
            "side_by_side": {
                "ragate_marginal_over_naive": round(median["marginal"] / median["naive_rate"], 2),
                "ragate_marginal_over_naive_cpu": round(median["marginal_cpu"] / median["naive_rate_cpu"], 2)
                if median["naive_rate_cpu"]
                else None,
                "naive_startup_over_ragate": round(median["naive_startup"] / median["startup"], 2),
            },
        }
        metrics[name] = entry
        print(name, json.dumps(entry), file=sys.stderr, flush=True)
    exact = _spawn("--exact-match", str(args.cases))
    floors = import_floors(args.repeats) if args.import_floors else "not measured (--import-floors)"
    # Metrics not measured by this invocation (--metrics a subset) keep the earlier run's
    # entry, marked with that run's date.
    path = RESULTS / f"{args.name}.json"
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8"))
        for name, entry in earlier.get("metrics", {}).items():
            if name not in metrics:
                metrics[name] = {
                    **entry,
                    "measured_in_run_created": entry.get("measured_in_run_created") or earlier.get("created"),
                }
    write_result(
        args.name,
        {
            "shape": "golden_shaped_rows: golden question, 3 corpus passages, reference or wrong answer",
            "cases": args.cases,
            "small": args.small,
            "repeats": args.repeats,
            "repeats_note": "per metric and repeat: a --small and a --cases worker, one `ragate score` "
            "process (time to the first score) and one naive worker, in turn, so load hits each alike; "
            "about 10-12 minutes on a quiet 2-core machine with the defaults",
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "metrics": metrics,
            "import_seconds_fresh_process": floors,
            "deepeval_offline_scorers": {
                "quasi_exact_match_score (nearest to answer_correctness)": {
                    "case_metrics_per_second": round(exact["case_metrics_per_second"], 1),
                },
                "faithfulness_score / answer_relevancy_score": "not runnable offline: SummaC and the "
                "cross-encoder download weights at run time",
            },
            "ragas": "not installed",
            "llm_judge_tier": _llm_judge_reference(),
        },
    )


if __name__ == "__main__":
    main()
