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

On Spark every timed run also records where its rows were scored and where its time went
(``placement``): the tasks, the rows per Python worker (pid) and per task; per worker the
seconds (wall and CPU) spent scoring batches in Python, its first batch against its median
one (a first batch paying a model load shows here); the seconds before the first batch and
after the last one (Spark's own jobs, shuffles and the join); the CPU seconds of the JVM
and of the driver during the run; and Spark's own task metrics per stage, read from the
session's event log (``spark_stages``: tasks, wall, task seconds, executor run/CPU/GC).

Usage: bench_scale.py [--sizes 1000,10000] [--repeats 1000:3,10000:1] [--metrics ...]
       [--large-metrics toxicity,pii] [--engines local,spark1,spark2] [--name scale]
       [--spark-conf key=value ...]  (extra Spark configuration for the Spark engines; a local
       session runs its JVM with C1 only (gates.spark.LOCAL_JVM_OPTIONS): give
       "spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=4" to time the JVM's default JIT)
Each figure records the load average (``uptime``) when it was taken.
Writes benchmarks/results/<name>.json after every engine (partial results survive).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
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


def spark_conf(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` (``--spark-conf``) as a dict; a malformed item stops the run."""
    conf = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--spark-conf {item!r}: write key=value")
        conf[key] = value
    return conf


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


def jvm_pid(spark: Any) -> int | None:
    """The pid of the session's JVM (the gateway pyspark started, or its java child)."""
    gateway = getattr(spark.sparkContext, "_gateway", None)
    proc = getattr(gateway, "proc", None)
    pid = getattr(proc, "pid", None)
    if pid is None:
        return None
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{candidate}/comm").read_text().strip() == "java":
                return candidate
    return None


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class EventLog:
    """Spark's own task metrics, read from the session's event log as jobs finish."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.offset = folder, 0

    def new_events(self) -> list[dict[str, Any]]:
        files = sorted(p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            return []
        with files[0].open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def stages(self) -> list[dict[str, Any]]:
        """Per stage completed since the last call: its tasks, wall and the tasks' metrics."""
        tasks: dict[int, list[dict[str, Any]]] = {}
        out = []
        for event in self.new_events():
            kind = event.get("Event")
            if kind == "SparkListenerTaskEnd":
                tasks.setdefault(event["Stage ID"], []).append(event)
            elif kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                ended = tasks.pop(info["Stage ID"], [])
                metrics = [t.get("Task Metrics") or {} for t in ended]
                spans = [
                    (t["Task Info"]["Finish Time"] - t["Task Info"]["Launch Time"]) / 1000 for t in ended
                ]
                out.append(
                    {
                        "stage": info["Stage ID"],
                        "name": info["Stage Name"][:60],
                        "tasks": info["Number of Tasks"],
                        "wall_s": (info.get("Completion Time", 0) - info.get("Submission Time", 0)) / 1000,
                        "task_s": sorted(round(x, 3) for x in spans),
                        "run_s": sum(m.get("Executor Run Time", 0) for m in metrics) / 1000,
                        "jvm_cpu_s": sum(m.get("Executor CPU Time", 0) for m in metrics) / 1e9,
                        "gc_s": sum(m.get("JVM GC Time", 0) for m in metrics) / 1000,
                    }
                )
        return out


def where_time_went(where: Any, t0: float, t1: float) -> dict[str, Any]:
    """From the ``_worker``/``_partition``/``_start``/``_end``/``_cpu`` columns of one scoring
    run (``t0``..``t1`` epoch seconds): the tasks, the rows per worker and per task, each
    worker's seconds in the Python scoring (wall and CPU), and the run's seconds before the
    first batch and after the last one were scored (Spark's own work: jobs, shuffles, joins)."""
    groups = where.drop_duplicates(["_partition", "_start"])
    workers = {}
    for pid, rows in groups.groupby("_worker"):
        rows = rows.sort_values("_start")
        workers[str(pid)] = {
            "batches": len(rows),
            "busy_s": round(float((rows["_end"] - rows["_start"]).sum()), 3),
            "cpu_s": round(float(rows["_cpu"].sum()), 3),
            "first_batch_s": round(float(rows["_end"].iloc[0] - rows["_start"].iloc[0]), 3),
            "median_batch_s": round(float((rows["_end"] - rows["_start"]).median()), 3),
        }
    return {
        "tasks": int(where["_partition"].nunique()),
        "rows_by_worker": sorted(where["_worker"].value_counts().tolist(), reverse=True),
        "rows_by_task": sorted(where["_partition"].value_counts().tolist(), reverse=True),
        "workers": workers,
        "before_first_batch_s": round(float(groups["_start"].min()) - t0, 3),
        "after_last_batch_s": round(t1 - float(groups["_end"].max()), 3),
        "python_span_s": round(float(groups["_end"].max() - groups["_start"].min()), 3),
    }


def spark_engine(
    sizes: list[int],
    metrics: list[str],
    repeats: dict[int, int],
    large: dict[int, list[str]],
    cores: int,
    out: Path,
    extra_conf: dict[str, str] | None = None,
) -> None:
    from gates.spark import SparkSettings, read_input, score_frame, spark_session

    load = load_average()
    events = EventLog(Path(tempfile.mkdtemp(prefix="ragate-events-")))
    conf = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.folder.as_uri(),
        "spark.eventLog.rolling.enabled": "false",  # one plain JSON-lines file, flushed per stage
        "spark.eventLog.compress": "false",
        **(extra_conf or {}),
    }
    start = time.perf_counter()
    spark = spark_session(SparkSettings(master=f"local[{cores}]", conf=conf))
    jvm = jvm_pid(spark)
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
    events.stages()  # the warm-up's
    warm.unpersist()
    out.write_text(json.dumps(result))
    for n in sizes:
        result["sizes"][str(n)] = {}
        for metric in metrics_at(n, metrics, large):
            times, placement = [], []
            for r in range(repeats[n]):
                df = frame(fresh_rows(n, f"S{cores}{n}{metric[:3]}{r}"))
                events.stages()  # the input's
                jvm_cpu, driver_cpu = cpu_seconds(jvm), time.process_time()
                t0, start = time.time(), time.perf_counter()
                columns = ["_worker", "_partition", "_start", "_end", "_cpu"]
                where = score_frame(df, [metric], with_worker=True).select(*columns).toPandas()
                times.append(time.perf_counter() - start)
                placed = where_time_went(where, t0, time.time())
                placed["jvm_cpu_s"] = round(cpu_seconds(jvm) - jvm_cpu, 3)
                placed["driver_cpu_s"] = round(time.process_time() - driver_cpu, 3)
                placed["spark_stages"] = events.stages()
                df.unpersist()
                placement.append(placed)
            result["sizes"][str(n)][metric] = {
                "seconds": summary(times),
                "case_metrics_per_s": n / statistics.median(times),
                "load": load_average(),
                "placement": placement,
                # Spark's own work per run, medians: CPU seconds of the JVM, and wall seconds
                # outside the Python scoring (before the first batch + after the last one).
                "jvm_cpu_s": statistics.median(p["jvm_cpu_s"] for p in placement),
                "outside_python_s": statistics.median(
                    p["before_first_batch_s"] + p["after_last_batch_s"] for p in placement
                ),
            }
            out.write_text(json.dumps(result))
    result["worker_peak_rss_mb"] = worker_rss(spark, cores)
    out.write_text(json.dumps(result))
    spark.stop()
    shutil.rmtree(events.folder, ignore_errors=True)


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
                shown = "; ".join(
                    f"{p['tasks']} tasks, rows/worker {p['rows_by_worker']}"
                    + (
                        f", JVM CPU {p['jvm_cpu_s']:.2f}s, before/after Python "
                        f"{p['before_first_batch_s']:.2f}/{p['after_last_batch_s']:.2f}s"
                        if "jvm_cpu_s" in p
                        else ""
                    )
                    for p in where[:1]
                )
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
    parser.add_argument(
        "--spark-conf", action="append", default=[], help="key=value, extra Spark configuration (repeatable)"
    )
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
            spark_engine(sizes, metrics, repeats, large, cores, Path(args.out), spark_conf(args.spark_conf))
        return 0

    result: dict[str, Any] = {
        "command": "nice python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
        "spark_conf": spark_conf(args.spark_conf),
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
                   "--large-metrics", args.large_metrics,
                   *(f"--spark-conf={c}" for c in args.spark_conf)]  # fmt: skip
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
