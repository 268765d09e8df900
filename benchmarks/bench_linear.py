"""Does cost grow linearly with the number of cases? (issue 12 item 3), written to
benchmarks/results/linear.json.

Six workloads (the gate run and the five offline metrics), each at 1,000, 10,000 and 50,000
golden-shaped cases
(:func:`_common.golden_shaped_rows`: a golden question, three ~100-word passages, a short
answer), each size in a fresh process so that its peak memory is its own:

- ``metric:<name>`` (faithfulness, answer_relevancy, answer_correctness, toxicity, pii by
  default): one offline metric scores every case through
  :func:`gates.scoring.score_batches` (the loop ``ragate score`` and the gates use);
- ``gate``: a full gate run (:class:`gates.engine.GateEngine`: cases read from a JSONL
  dataset and masked, answered by ``FakeZeroLatencyChain`` (defined here: a fake with no
  model, so only the harness is timed), every answer and judgment written to a fresh
  SQLite cache, the exact metrics ``latency``, ``hit_rate``, ``mrr``, ``context_recall``
  scored, the verdict with its bootstrap intervals, and ``gate-report.json`` written; above
  ``gates.engine.RESULTS_IN_MEMORY`` cases the results are spooled to disk as they are
  scored and the report streamed from there).

Reported per size: wall seconds and CPU seconds (user + system of the process: on a machine
shared with other jobs the wall time mostly measures the others), medians of ``--repeats``
runs with min and max, seconds per case, and peak memory as the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, MiB; it includes the interpreter and any
model, so compare sizes, not workloads), and the CPU seconds and peak memory of the process's
live children at the end (``child_*``: toxicity's spaCy worker,
:mod:`ragate_core.spacy_worker`). ``linear_ratio`` is the time per case at the
largest size over that at the smallest (the target is <= 1.3).

    python benchmarks/bench_linear.py [--sizes 1000,10000,50000] [--metrics toxicity,pii]
                                      [--repeats 3] [--big-repeats 1] [--name linear]

With the defaults: about 15-20 minutes on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    RESULTS,
    ROOT,
    children_usage,
    golden_shaped_rows,
    peak_rss_mb,
    time_to_first_score,
    write_result,
)

GATE_METRICS = ("latency", "hit_rate", "mrr", "context_recall")


class FakeZeroLatencyChain:
    """A fake chain for the benchmark: answers at once from the golden-shaped rows.

    Its contexts are fresh string copies on every call, as a real retriever returns them (a
    chain does not hand back the same objects for the same chunk)."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows
        self.version = {"fake": "zero-latency-1"}

    def invoke(self, question: str, **kwargs: Any) -> dict[str, Any]:
        row = self.rows[question]
        return {
            "answer": row["answer"],
            "contexts": [text.encode().decode() for text in row["contexts"]],
            "sources": row["sources"],
            "latency_ms": 0.0,
        }


def _one_metric(name: str, n: int) -> dict[str, Any]:
    from gates.metrics.base import get_metric
    from gates.scoring import metric_case, score_batches

    rows = golden_shaped_rows(n)
    metric = get_metric(name)
    score_batches(metric, [metric_case(r) for r in golden_shaped_rows(64, seed=99)])  # load the models
    start, cpu = time.perf_counter(), _cpu()
    cases = [metric_case(r) for r in rows]
    del rows  # the benchmark's own input: not part of the metric's memory
    scores = score_batches(metric, cases)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "scored": sum(s.value is not None for s in scores)}


def _one_gate(n: int) -> dict[str, Any]:
    import yaml

    from gates.cache import Cache
    from gates.engine import GateEngine, load_cases, mask_text
    from gates.profile import load_profile
    from gates.report import build_report
    from gates.reporters import write_reports

    rows = golden_shaped_rows(n)
    # One answer per distinct question (the fake chain answers from the question alone): only
    # what it answers is kept, so the peak memory measured is the gate run's, not the
    # benchmark's own copy of every row.
    by_question = {
        r["question"]: {"answer": r["answer"], "contexts": r["contexts"], "sources": r["sources"]}
        for r in rows
    }
    with tempfile.TemporaryDirectory(prefix="ragate-linear-") as tmp:
        folder = Path(tmp)
        (folder / "qa.jsonl").write_text(
            "".join(
                json.dumps(
                    {
                        "id": r["id"],
                        "question": r["question"],
                        "ground_truth": r["ground_truth"],
                        "source_ids": r["source_ids"],
                        "tags": ["t"],
                    }
                )
                + "\n"
                for r in rows
            )
        )
        del rows
        profile_path = folder / "profile.yaml"
        profile_path.write_text(
            yaml.safe_dump(
                {
                    "env": "ci",
                    "datasets": [{"name": "golden", "path": "qa.jsonl"}],
                    "metrics": {
                        "latency": {"threshold": 1000, "rules": {"max_p95": 500}},
                        "hit_rate": {"threshold": 0.5, "rules": {"min_mean": 0.1}},
                        "mrr": {"threshold": 0.5, "rules": {"min_lower_bound": 0.1}},
                        "context_recall": {"threshold": 0.5, "rules": {"min_pass_rate": 0.1}},
                    },
                }
            )
        )
        mask_text("Write to Ann Lee at ann@example.com", names=True)  # presidio loads outside the timing
        start, cpu = time.perf_counter(), _cpu()
        profile = load_profile(str(profile_path), folder)
        cache = Cache(folder / "cache" / "gates.sqlite")
        cases = load_cases(profile, folder, cache=cache)
        engine = GateEngine(profile, folder, lambda: FakeZeroLatencyChain(by_question), cache, cases=cases)
        run = engine.run()
        # The cases as GateRun.case_records gives them: sorted by id, read one at a time from
        # the run's spool (a run of more than gates.engine.RESULTS_IN_MEMORY cases).
        report = dataclasses.replace(
            build_report(
                "ci", run.verdict.gates, (), {"thresholds": run.thresholds, "profile": str(profile_path)}
            ),
            cases=run.case_records(),
        )
        write_reports(report, folder / "reports", ["json"])
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "passed": run.verdict.passed,
        "judgments": run.stats.judgments,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(kind: str, n: int) -> None:
    result = _one_gate(n) if kind == "gate" else _one_metric(kind.split(":", 1)[1], n)
    result["peak_rss_mb"] = peak_rss_mb()
    result["child_cpu_seconds"], result["child_peak_rss_mb"] = children_usage()
    print("RESULT " + json.dumps(result))


def _measure(kind: str, n: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(n)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} at {n} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--metrics", default="faithfulness,answer_relevancy,answer_correctness,toxicity,pii")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size below 50,000 (median)")
    parser.add_argument("--big-repeats", type=int, default=1, help="runs at 50,000 cases and above")
    parser.add_argument("--skip-gate", action="store_true")
    parser.add_argument(
        "--name", default="linear", help="results/<name>.json (another name for a trial run at small sizes)"
    )
    parser.add_argument(
        "--first-score",
        metavar="METRIC",
        help="only measure the time to the first score of `ragate score --metrics METRIC` at 1,000 cases",
    )
    parser.add_argument("--pythonpath", default="", help="with --first-score: the code to time (a copy)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return
    if args.first_score:
        load = os.getloadavg()[0]
        runs = [time_to_first_score(args.first_score, 1000, args.pythonpath) for _ in range(args.repeats)]
        firsts = sorted(r["first_score_seconds"] for r in runs)
        print(
            json.dumps(
                {
                    "metric": args.first_score,
                    "cases": 1000,
                    "code": args.pythonpath or str(ROOT),
                    "first_score_seconds_median": round(statistics.median(firsts), 3),
                    "first_score_seconds_min_max": [round(firsts[0], 3), round(firsts[-1], 3)],
                    "total_seconds_median": round(statistics.median(r["total_seconds"] for r in runs), 3),
                    "loadavg_1min_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
                }
            )
        )
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ([] if args.skip_gate else ["gate"]) + [f"metric:{m}" for m in args.metrics.split(",") if m]
    load_before = os.getloadavg()
    for kind in kinds:
        rows = []
        for n in sizes:
            runs = [_measure(kind, n) for _ in range(args.big_repeats if n >= 50_000 else args.repeats)]
            seconds = [r["seconds"] for r in runs]
            median = statistics.median(seconds)
            cpu = statistics.median(r["cpu_seconds"] for r in runs)
            child_cpu = [r["child_cpu_seconds"] for r in runs]
            rows.append(
                {
                    "cases": n,
                    "runs": len(runs),
                    "seconds_median": round(median, 3),
                    "seconds_min": round(min(seconds), 3),
                    "seconds_max": round(max(seconds), 3),
                    "ms_per_case": round(median / n * 1000, 4),
                    "cpu_seconds_median": round(cpu, 3),
                    "cpu_ms_per_case": round(cpu / n * 1000, 4),
                    "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
                    "child_cpu_seconds_median": round(statistics.median(child_cpu), 3),
                    "child_peak_rss_mb": round(max(r["child_peak_rss_mb"] for r in runs), 1),
                    "loadavg_1min_after": round(os.getloadavg()[0], 2),
                }
            )
            print(kind, rows[-1], file=sys.stderr, flush=True)
        _write(
            args.name,
            kind,
            {
                "sizes": rows,
                "linear_ratio": round(rows[-1]["ms_per_case"] / rows[0]["ms_per_case"], 3),
                "linear_ratio_cpu": round(rows[-1]["cpu_ms_per_case"] / rows[0]["cpu_ms_per_case"], 3),
                "target_ratio": 1.3,
                "repeats": {"below_50000": args.repeats, "50000_and_above": args.big_repeats},
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            },
        )


def _write(name: str, kind: str, data: dict[str, Any]) -> None:
    """Write one workload as soon as it is measured; workloads measured by an earlier (or a
    concurrent) invocation stay in the file."""
    path = RESULTS / f"{name}.json"
    earlier = json.loads(path.read_text()).get("workloads", {}) if path.is_file() else {}
    write_result(
        name,
        {
            "memory": "peak resident set size of a fresh process per run (ru_maxrss, MiB)",
            "gate_metrics": list(GATE_METRICS),
            "chain": "FakeZeroLatencyChain (defined in the benchmark; no model; fresh context strings per "
            "call, as a real retriever returns them)",
            "run_time_note": "defaults (3 runs at 1k and 10k, 1 at 50k; gate + 5 metrics): about 15-20 "
            "minutes on a quiet 2-core machine",
            "data_note": "golden-shaped cases repeat the golden questions and corpus passages, so caches "
            "make larger sizes cheaper per case: a ratio below 1 shows no super-linear work, not speed on "
            "distinct data",
            "workloads": {**earlier, kind: data},
        },
    )


if __name__ == "__main__":
    main()
