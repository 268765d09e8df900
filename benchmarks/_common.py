"""Shared bits of the benchmark scripts: environment, timing, JSON results."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "NEMO_GUARDRAILS_NO_USAGE_STATS": "1",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
}.items():
    os.environ.setdefault(key, value)
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def children_usage() -> tuple[float, float]:
    """CPU seconds (user + system) and summed peak resident memory (VmHWM, MiB) of this
    process's live child processes, read from /proc (Linux): the spaCy worker of
    :mod:`ragate_core.spacy_worker`, which ``resource.RUSAGE_CHILDREN`` counts only once
    reaped."""
    me, ticks, cpu, peak = os.getpid(), os.sysconf("SC_CLK_TCK"), 0.0, 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:
                continue
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except (OSError, IndexError, ValueError):
            continue
        peak += sum(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024.0
    return cpu, peak


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically, with the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        **data,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(json.dumps(data, indent=2))
    return path


def golden_shaped_rows(n: int, seed: int = 13) -> list[dict[str, Any]]:
    """``n`` cases of the golden set's shape: a golden question, three ~100-word corpus
    passages as contexts, and an answer (the reference, or a wrong one every third case)."""
    import random

    rng = random.Random(seed)
    golden = [json.loads(line) for line in (ROOT / "datasets/golden/qa.jsonl").read_text().splitlines()]
    passages = [
        (doc.stem, part.strip())
        for doc in sorted((ROOT / "datasets/corpus").glob("*.md"))
        for part in doc.read_text().split("\n\n")
        if len(part.split()) > 20
    ]
    rows = []
    for i in range(n):
        case = golden[i % len(golden)]
        chosen = rng.sample(passages, 3)
        answer = case["ground_truth"] if i % 3 else "The Pro plan allows up to 10 requests per minute."
        rows.append(
            {
                "id": f"case-{i:06d}",
                "question": case["question"],
                "answer": answer,
                "contexts": [text for _, text in chosen],
                "ground_truth": case["ground_truth"],
                "source_ids": case["source_ids"],
                "sources": [stem for stem, _ in chosen],
            }
        )
    return rows


FIRST_SCORE_CHILD = """
import sys, time
import gates.scoring as scoring

from _common import children_usage

whole = scoring.score_batches


def timed(metric, cases, *args, **kwargs):
    # The batches are score_batches' own; the clock stops when the first one returns.
    score_batch = metric.score_batch

    def first_batch(chunk):
        scores = score_batch(chunk)
        print(
            f"FIRST {time.time()!r} {time.process_time()!r} {len(chunk)} {children_usage()[0]!r}",
            file=sys.stderr,
            flush=True,
        )
        metric.score_batch = score_batch
        return scores

    metric.score_batch = first_batch
    try:
        return whole(metric, cases, *args, **kwargs)
    finally:
        metric.score_batch = score_batch
        vars(metric).pop("score_batch", None)


scoring.score_batches = timed
from gates.cli import main

raise SystemExit(main(sys.argv[1:]))
"""


def bytecode_env() -> dict[str, str]:
    """The environment of a timed child process, with the project's bytecode compiled.

    An installed package has its ``.pyc`` files (``pip install`` compiles them, as it did
    for every library here); a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` would compile
    each module of the project again in every process (~0.1 s of a start-up). So the
    project's modules are compiled first, into their ``__pycache__`` folders (ignored by git;
    Python reads a ``.pyc`` only while its source is unchanged).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-m", "compileall", "-q", "gates", "ragate_core", "rag"]
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return env


def time_to_first_score(metric: str, n: int, pythonpath: str = "") -> dict[str, float]:
    """``ragate score --metrics METRIC`` on ``n`` golden-shaped rows in a fresh process: wall
    seconds from starting the process to the first batch scored (``first_score_seconds``; the
    batches are :func:`gates.scoring.score_batches`' own, ``first_batch_cases`` long),
    the process's CPU seconds by then (``first_score_cpu_seconds``; above the wall seconds when
    the embedding passes run side by side on two cores), the CPU seconds of its live child
    processes by then (``first_score_child_cpu_seconds``: the spaCy worker of
    :mod:`ragate_core.spacy_worker`), and wall seconds to the end.
    The rows are written before the clock starts; the clock includes the interpreter's start.
    The project's modules are byte-compiled beforehand (:func:`bytecode_env`), as
    ``pip install`` leaves an installed package."""
    with tempfile.TemporaryDirectory(prefix="ragate-first-") as tmp:
        source = Path(tmp) / "in.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in golden_shaped_rows(n)))
        code = pythonpath or str(ROOT)
        env = {**bytecode_env(), "PYTHONPATH": f"{code}{os.pathsep}{ROOT / 'benchmarks'}"}
        output = Path(tmp) / "out.jsonl"
        args = ["score", "--input", str(source), "--output", str(output), "--metrics", metric]
        start = time.time()
        command = [sys.executable, "-c", FIRST_SCORE_CHILD, *args]
        out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        end = time.time()
    first = [line for line in out.stderr.splitlines() if line.startswith("FIRST ")]
    if out.returncode not in (0, 1) or not first:
        raise RuntimeError(f"ragate score failed ({out.returncode}):\n{out.stderr[-3000:]}")
    _, wall, cpu, cases, child_cpu = first[0].split()
    return {
        "first_score_seconds": float(wall) - start,
        "first_score_cpu_seconds": float(cpu),
        "first_score_child_cpu_seconds": float(child_cpu),
        "first_batch_cases": float(cases),
        "total_seconds": end - start,
    }
