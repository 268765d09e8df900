"""Start-up cost of ragate's presidio analyzer, with and without blocking the optional
transformers/torch imports around the presidio import (ragate_core.pii.without_optional_ml_imports).

Each sample is a fresh interpreter that builds the analyzer and masks one sentence; CPU
seconds (user+sys of the child) and wall seconds are recorded. Writes
benchmarks/results/pii_import.json (medians of --runs samples, min/max as the spread, and
the load average before the runs).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS= \
        .venv/bin/python benchmarks/bench_pii_import.py --runs 5
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

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import contextlib, sys, time
import ragate_core.pii as p
if {unguarded!r}:
    p.without_optional_ml_imports = contextlib.nullcontext
p.analyzer()
masked = p.mask_pii("Call Jane Roe at jane.roe@example.org", names=True)[0]
assert masked == "Call <PERSON> at <EMAIL_ADDRESS>", masked
print(int("torch" in sys.modules), int("transformers" in sys.modules))
"""


def sample(unguarded: bool) -> dict[str, float]:
    start = time.perf_counter()
    before = os.times()
    run = subprocess.run(
        [sys.executable, "-c", CHILD.format(unguarded=unguarded)], cwd=ROOT, capture_output=True, text=True
    )
    after = os.times()
    if run.returncode != 0:
        raise SystemExit(run.stderr)
    torch, transformers = map(int, run.stdout.split()[-2:])
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"cpu_s": cpu, "wall_s": time.perf_counter() - start, "torch": torch, "transformers": transformers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()
    out: dict[str, object] = {"runs": args.runs, "loadavg_before": load}
    for name, unguarded in (("blocked", False), ("unblocked", True)):
        samples = [sample(unguarded) for _ in range(args.runs)]
        out[name] = {
            metric: {
                "median": statistics.median(s[metric] for s in samples),
                "min": min(s[metric] for s in samples),
                "max": max(s[metric] for s in samples),
            }
            for metric in ("cpu_s", "wall_s")
        } | {"imports_torch": any(s["torch"] for s in samples)}
    path = ROOT / "benchmarks" / "results" / "pii_import.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
