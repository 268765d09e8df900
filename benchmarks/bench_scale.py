"""Scale-out: offline metric throughput locally and on Spark ``local[1]`` / ``local[2]``.

For each size (default 1,000 and 10,000 golden-shaped cases: a golden question, three
~100-word corpus passages, a one-sentence answer) and each engine, every offline metric
scores every case; reported per metric: seconds and case-metrics per second (models already
loaded: a warm-up runs first, so start-up is reported apart), the Spark session's start
time (each engine runs in a fresh process, so this includes starting the JVM), the peak
resident memory of each Python worker, the scaling from 1 to 2 cores (target >= 1.6x) and
the growth from the smallest to the largest size (time per case; target: linear, ratio
<= 1.3). Medians of the repeats, with min and max.

Cold texts: the encoder keeps each text's vector per process, so a repeat over the same
rows would time a cache. Every measurement (engine, size, metric, repeat) therefore gets
questions and answers no earlier measurement saw (a ticket reference unique to the case
and the measurement is appended to both); the contexts come from the corpus as in a real
RAG system, so they repeat and are encoded once per process (so do the reference answers
that answer_correctness reads). Each metric is timed alone,
so each pays for its own question/answer encodes (a run scoring all metrics together
shares them: the sum of the per-metric times is an upper bound for it).

On Spark every timed run also records where its rows were scored: the number of tasks and
the rows per Python worker (pid), which shows whether ``local[2]`` used both workers.

Usage: bench_scale.py [--sizes 1000,10000] [--repeats 1000:3,10000:1] [--metrics ...]
       [--large-metrics toxicity,pii] [--engines local,spark1,spark2] [--name scale]
Each figure records the load average (``uptime``) when it was taken.
Writes benchmarks/results/<name>.json after every engine (partial results survive).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, golden_shaped_rows, peak_rss_mb, write_result

OFFLINE = ("faithfulness", "answer_relevancy", "answer_correctness", "toxicity", "pii")
ENGINES = {"local": None, "spark1": 1, "spark2": 2}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def load_average() -> list[float]:
    """``uptime``'s 1/5/15-minute load averages now: the machine is shared, figures need them."""
    return [round(x, 2) for x in os.getloadavg()]


def fresh_rows(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` golden-shaped rows whose questions and answers no other ``tag`` produces."""
    rows = golden_shaped_rows(n)
    for i, row in enumerate(rows):
        ticket = f" (ticket {tag}-{i})"
        row["question"] = row["question"] + ticket
        row["answer"] = row["answer"].rstrip(".") + ticket + "."
    return rows


def parse_repeats(text: str, sizes: list[int]) -> dict[int, int]:
    """``"3"`` (every size) or ``"1000:3,10000:1"``."""
    if ":" not in text:
        return {n: int(text) for n in sizes}
    given = {int(k): int(v) for k, v in (part.split(":") for part in text.split(","))}
    return {n: given.get(n, 1) for n in sizes}


# --- one engine, in its own process ----------------------------------------------------------


def metrics_at(n: int, metrics: list[str], large: dict[int, list[str]]) -> list[str]:
    """The metrics measured at size ``n`` (``--large-metrics`` narrows the largest size)."""
    return large.get(n, metrics)


def local_engine(
    sizes: list[int], metrics: list[str], repeats: dict[int, int], large: dict[int, list[str]], out: Path
) -> None:
    from gates.metrics.base import get_metric
    from gates.scoring import metric_case, score_batches

    start = time.perf_counter()
    warm = [metric_case(r) for r in fresh_rows(64, "warm")]
    for metric in metrics:  # load every model once
        score_batches(get_metric(metric), warm)
    result: dict[str, Any] = {"model_warm_up_s": time.perf_counter() - start, "sizes": {}}
    for n in sizes:
        result["sizes"][str(n)] = {}
        for metric in metrics_at(n, metrics, large):
            times = []
            for r in range(repeats[n]):
                cases = [metric_case(row) for row in fresh_rows(n, f"L{n}{metric[:3]}{r}")]
                start = time.perf_counter()
                score_batches(get_metric(metric), cases)
                times.append(time.perf_counter() - start)
            result["sizes"][str(n)][metric] = {
                "seconds": summary(times),
                "case_metrics_per_s": n / statistics.median(times),
                "load": load_average(),
            }
            result["peak_rss_mb"] = peak_rss_mb()
            out.write_text(json.dumps(result))


def worker_rss(spark: Any, cores: int) -> list[float]:
    """Peak RSS (MB) of each Python worker the session has started (workers are reused)."""

    def report(batches: Any) -> Any:
        import resource

        import pandas as pd

        for _ in batches:
            pass
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        yield pd.DataFrame({"pid": [os.getpid()], "rss_mb": [rss]})

    schema = "pid long, rss_mb double"
    frame = spark.range(cores * 8).repartition(cores * 8).mapInPandas(report, schema).toPandas()
    return sorted(frame.groupby("pid")["rss_mb"].max().tolist())


def spark_engine(
    sizes: list[int],
    metrics: list[str],
    repeats: dict[int, int],
    large: dict[int, list[str]],
    cores: int,
    out: Path,
) -> None:
    from gates.spark import SparkSettings, read_input, score_frame, spark_session

    load = load_average()
    start = time.perf_counter()
    spark = spark_session(SparkSettings(master=f"local[{cores}]"))
    result: dict[str, Any] = {
        "session_start_s": time.perf_counter() - start,
        "load_at_start": load,
        "sizes": {},
    }

    def frame(rows: list[dict[str, Any]]) -> Any:
        # The CLI's own path: rows from a JSONL file, validated, with their input order.
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rows.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            df = read_input(spark, str(path)).cache()
            df.count()
        return df

    # Enough batches that every worker gets some: each loads every model once.
    warm = frame(fresh_rows(cores * 4 * 64, "warm"))
    start = time.perf_counter()
    score_frame(warm, metrics).count()
    result["model_warm_up_s"] = time.perf_counter() - start
    warm.unpersist()
    out.write_text(json.dumps(result))
    for n in sizes:
        result["sizes"][str(n)] = {}
        for metric in metrics_at(n, metrics, large):
            times, placement = [], []
            for r in range(repeats[n]):
                df = frame(fresh_rows(n, f"S{cores}{n}{metric[:3]}{r}"))
                start = time.perf_counter()
                where = score_frame(df, [metric], with_worker=True).select("_worker", "_partition").toPandas()
                times.append(time.perf_counter() - start)
                df.unpersist()
                placement.append(
                    {
                        "tasks": int(where["_partition"].nunique()),
                        "rows_by_worker": sorted(where["_worker"].value_counts().tolist(), reverse=True),
                    }
                )
            result["sizes"][str(n)][metric] = {
                "seconds": summary(times),
                "case_metrics_per_s": n / statistics.median(times),
                "load": load_average(),
                "placement": placement,
            }
            out.write_text(json.dumps(result))
    result["worker_peak_rss_mb"] = worker_rss(spark, cores)
    out.write_text(json.dumps(result))
    spark.stop()


# --- the whole benchmark ---------------------------------------------------------------------


def derive(result: dict[str, Any]) -> None:
    """Add the 1 -> 2 core scaling, the growth with size, and (labelled as such) a linear
    extrapolation to the largest size for the metrics that were not measured there."""
    sizes, metrics = result["sizes"], result["metrics"]
    engines_out = result["engines"]

    def rate(engine: dict[str, Any], n: int, m: str) -> float | None:
        entry = engine.get("sizes", {}).get(str(n), {}).get(m)
        return entry["case_metrics_per_s"] if entry else None

    one, two = engines_out.get("spark_local[1]", {}), engines_out.get("spark_local[2]", {})
    result["scaling_1_to_2_cores"] = {
        str(n): {m: rate(two, n, m) / rate(one, n, m) for m in metrics if rate(one, n, m) and rate(two, n, m)}
        for n in sizes
    }
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        result["growth_time_per_case_largest_vs_smallest"] = {
            name: {
                m: rate(engine, small, m) / rate(engine, large, m)
                for m in metrics
                if rate(engine, small, m) and rate(engine, large, m)
            }
            for name, engine in engines_out.items()
        }
        result[f"extrapolated_{large}_seconds_NOT_MEASURED"] = {
            "how": f"{large} / (case-metrics per second at {small}): linear, as the measured growth suggests",
            **{
                name: {
                    m: large / rate(engine, small, m)
                    for m in metrics
                    if rate(engine, small, m) and not rate(engine, large, m)
                }
                for name, engine in engines_out.items()
            },
        }


def summarize(result: dict[str, Any]) -> str:
    """A compact text summary of ``result`` (printed after the JSON)."""
    lines = [f"{'engine':<16} {'size':>6} {'metric':<20} {'cm/s':>8} {'runs':>4} {'load1':>6}  placement"]
    for name, engine in result["engines"].items():
        for n, metrics in engine.get("sizes", {}).items():
            for metric, entry in metrics.items():
                where = entry.get("placement") or []
                shown = "; ".join(f"{p['tasks']} tasks, rows/worker {p['rows_by_worker']}" for p in where[:1])
                lines.append(
                    f"{name:<16} {n:>6} {metric:<20} {entry['case_metrics_per_s']:>8.1f} "
                    f"{entry['seconds']['runs']:>4} {entry['load'][0]:>6.2f}  {shown}"
                )
    for name, engine in result["engines"].items():
        rss = engine.get("worker_peak_rss_mb") or engine.get("peak_rss_mb")
        rss_text = [round(x) for x in rss] if isinstance(rss, list) else round(rss) if rss else "n/a"
        start = engine.get("session_start_s")
        lines.append(
            f"{name}: session start {f'{start:.1f}s' if start else '-'}, model warm-up "
            f"{engine.get('model_warm_up_s', 0):.1f}s, peak RSS per worker (MB) {rss_text}, "
            f"process {engine.get('process_wall_s', 0):.0f}s"
            + (" INCOMPLETE" if engine.get("incomplete") else "")
        )
    for n, metrics in result.get("scaling_1_to_2_cores", {}).items():
        shown = ", ".join(f"{m} {x:.2f}x" for m, x in metrics.items())
        lines.append(f"scaling local[1] -> local[2] at {n} (target >= 1.6x): {shown or 'n/a'}")
    for name, metrics in result.get("growth_time_per_case_largest_vs_smallest", {}).items():
        shown = ", ".join(f"{m} {x:.2f}" for m, x in metrics.items())
        lines.append(f"time per case, largest / smallest size, {name} (target <= 1.3): {shown or 'n/a'}")
    lines.append(f"total wall {result.get('total_wall_s', 0):.0f}s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--metrics", default=",".join(OFFLINE))
    parser.add_argument("--repeats", default="1000:3,10000:1", help='"3" or "size:runs,..."')
    parser.add_argument("--engines", default="local,spark1,spark2")
    parser.add_argument(
        "--large-metrics",
        default="toxicity,pii",
        help='only these metrics at the largest size ("" = all); the default keeps a full run '
        "within ~25 min on a quiet 2-core machine",
    )
    parser.add_argument("--name", default="scale", help="results file: benchmarks/results/<name>.json")
    parser.add_argument("--engine-only", default=None, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    metrics = args.metrics.split(",")
    repeats = parse_repeats(args.repeats, sizes)
    large = {sizes[-1]: args.large_metrics.split(",")} if args.large_metrics and len(sizes) > 1 else {}

    if args.engine_only:
        cores = ENGINES[args.engine_only]
        if cores is None:
            local_engine(sizes, metrics, repeats, large, Path(args.out))
        else:
            spark_engine(sizes, metrics, repeats, large, cores, Path(args.out))
        return 0

    result: dict[str, Any] = {
        "command": "nice python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
        "sizes": sizes,
        "metrics": metrics,
        "repeats": {str(k): v for k, v in repeats.items()},
        "metrics_by_size": {str(n): metrics_at(n, metrics, large) for n in sizes},
        "plan": f"runs per size {repeats} (medians of those runs); at the largest size only "
        f"{metrics_at(sizes[-1], metrics, large)}: the default plan fits in about 25 minutes on a quiet "
        "2-core machine; other metrics at the largest size are extrapolated and labelled NOT_MEASURED",
        "texts": "questions and answers fresh per measurement (no encoder-cache reuse across "
        "repeats or metrics); contexts from the corpus (encoded once per process)",
        "engines": {},
    }
    names = {"local": "local", "spark1": "spark_local[1]", "spark2": "spark_local[2]"}
    begin = time.perf_counter()
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "part.json"
            cmd = [sys.executable, __file__, "--engine-only", engine, "--out", str(out),
                   "--sizes", args.sizes, "--metrics", args.metrics, "--repeats", args.repeats,
                   "--large-metrics", args.large_metrics]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=ROOT)
            part = json.loads(out.read_text()) if out.exists() else {}
            part["process_wall_s"] = time.perf_counter() - start
            if done.returncode != 0:
                part["incomplete"] = f"the engine's process exited with {done.returncode}"
            result["engines"][names[engine]] = part
        write_result(args.name, result)

    derive(result)
    result["total_wall_s"] = time.perf_counter() - begin
    write_result(args.name, result)
    print(summarize(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
