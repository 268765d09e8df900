"""Scale-out: offline metric throughput locally and on Spark ``local[1]`` / ``local[2]``.

For each size (default 1,000 and 10,000 golden-shaped cases: a golden question, three
~100-word passages, a one-sentence answer) and each engine, every offline metric scores
every case; reported per metric: seconds and case-metrics per second (models already
loaded: a warm-up batch runs first, so start-up is reported apart), the Spark session's
start time, the peak resident memory of each Python worker, the scaling from 1 to 2 cores
(target >= 1.6x) and the growth from the smallest to the largest size (time per case;
target: linear, ratio <= 1.3). Medians of ``--repeats`` runs, with min and max.

Usage: bench_scale.py [--sizes 1000,10000] [--metrics faithfulness,...] [--repeats 3]
       [--engines local,spark1,spark2] [--name scale]
Each figure records the load average (``uptime``) when it was taken.
Writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import golden_shaped_rows, peak_rss_mb, write_result

OFFLINE = ("faithfulness", "answer_relevancy", "toxicity", "pii")


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def load_average() -> list[float]:
    """``uptime``'s 1/5/15-minute load averages now: the machine is shared, figures need them."""
    import os

    return [round(x, 2) for x in os.getloadavg()]


def local_run(rows: list[dict[str, Any]], metric: str) -> float:
    from gates.metrics.base import get_metric
    from gates.scoring import metric_case, score_batches

    cases = [metric_case(r) for r in rows]
    start = time.perf_counter()
    score_batches(get_metric(metric), cases)
    return time.perf_counter() - start


def worker_rss(spark: Any, cores: int) -> list[float]:
    """Peak RSS (MB) of each Python worker the session has started (workers are reused)."""

    def report(batches: Any) -> Any:
        import os
        import resource

        import pandas as pd

        for _ in batches:
            pass
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        yield pd.DataFrame({"pid": [os.getpid()], "rss_mb": [rss]})

    schema = "pid long, rss_mb double"
    frame = spark.range(cores * 8).repartition(cores).mapInPandas(report, schema).toPandas()
    return sorted(frame.groupby("pid")["rss_mb"].max().tolist())


def spark_runs(sizes: list[int], metrics: list[str], cores: int, repeats: int) -> dict[str, Any]:
    from gates.spark import SparkSettings, read_input, score_frame, spark_session

    start = time.perf_counter()
    spark = spark_session(SparkSettings(master=f"local[{cores}]"))
    session_seconds = time.perf_counter() - start

    def frame(rows: list[dict[str, Any]]) -> Any:
        # The CLI's own path: rows from a JSONL file, validated, with their input order.
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rows.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            df = read_input(spark, str(path)).cache()
            df.count()
        return df

    warm = frame(golden_shaped_rows(cores * 64, seed=1))
    start = time.perf_counter()
    score_frame(warm, metrics).count()  # every worker loads every model once
    warm_up_seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "session_start_s": session_seconds,
        "model_warm_up_s": warm_up_seconds,
        "load_at_start": load_average(),
    }
    out["sizes"] = {}
    for n in sizes:
        df = frame(golden_shaped_rows(n))
        per_metric = {}
        for metric in metrics:
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                score_frame(df, [metric]).count()
                times.append(time.perf_counter() - start)
            rate = n / statistics.median(times)
            per_metric[metric] = {
                "seconds": summary(times),
                "case_metrics_per_s": rate,
                "load": load_average(),
            }
        out["sizes"][str(n)] = per_metric
        df.unpersist()
    out["worker_peak_rss_mb"] = worker_rss(spark, cores)
    spark.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--metrics", default=",".join(OFFLINE))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="local,spark1,spark2")
    parser.add_argument("--name", default="scale", help="results file: benchmarks/results/<name>.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    metrics = args.metrics.split(",")
    engines = args.engines.split(",")
    result: dict[str, Any] = {"sizes": sizes, "metrics": metrics, "repeats": args.repeats, "engines": {}}

    if "local" in engines:
        local: dict[str, Any] = {"sizes": {}}
        local_run(golden_shaped_rows(64, seed=1), metrics[0])  # load the shared models once
        for metric in metrics[1:]:
            local_run(golden_shaped_rows(64, seed=1), metric)
        for n in sizes:
            rows = golden_shaped_rows(n)
            local["sizes"][str(n)] = {}
            for metric in metrics:
                times = [local_run(rows, metric) for _ in range(args.repeats)]
                local["sizes"][str(n)][metric] = {
                    "seconds": summary(times),
                    "case_metrics_per_s": n / statistics.median(times),
                    "load": load_average(),
                }
        local["peak_rss_mb"] = peak_rss_mb()
        result["engines"]["local"] = local
        write_result(args.name, result)  # partial results survive a run stopped later
    for cores in (1, 2):
        if f"spark{cores}" in engines:
            result["engines"][f"spark_local[{cores}]"] = spark_runs(sizes, metrics, cores, args.repeats)
            write_result(args.name, result)

    engines_out = result["engines"]
    if "spark_local[1]" in engines_out and "spark_local[2]" in engines_out:
        largest = str(sizes[-1])
        result["scaling_1_to_2_cores"] = {
            m: engines_out["spark_local[2]"]["sizes"][largest][m]["case_metrics_per_s"]
            / engines_out["spark_local[1]"]["sizes"][largest][m]["case_metrics_per_s"]
            for m in metrics
        }
    if len(sizes) > 1:
        small, large = str(sizes[0]), str(sizes[-1])
        result["growth_time_per_case_largest_vs_smallest"] = {
            name: {
                m: engine["sizes"][small][m]["case_metrics_per_s"]
                / engine["sizes"][large][m]["case_metrics_per_s"]
                for m in metrics
            }
            for name, engine in engines_out.items()
        }
    write_result(args.name, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
