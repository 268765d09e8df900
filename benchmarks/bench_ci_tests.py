"""How long the README's test command (``make test``) takes: serial against pytest-xdist.

Issue 12 asks that ``.ci/run`` be no slower; its longest step is the test suite with
coverage. This runs that step in a checkout (default: this one) once per variant and
repeat, one after the other, and writes ``benchmarks/results/ci_tests.json``::

    python benchmarks/bench_ci_tests.py --variants serial,xdist --repeats 1

- ``serial``: ``pytest -m "not gate" --cov ...`` in one process, as before.
- ``xdist``: the same with ``-n auto --maxprocesses 4 --dist loadfile`` (the Makefile's).

Per run: wall seconds, the CPU seconds of the whole process tree (user + system, from
``RUSAGE_CHILDREN``), the pytest summary (passed, failed, xfailed...) and the total
coverage. A run whose summary shows a failure is recorded with ``"ok": false``.

``--from-log NAME=PATH`` records a run made by hand instead (a log holding pytest's output
and GNU ``/usr/bin/time -v``'s), with the log's path. A full run of the suite takes 20-40
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, write_result

COMMON = ["-m", "not gate", "--cov", "--cov-report=term", "--cov-fail-under=80", "-p", "no:cacheprovider"]
VARIANTS: dict[str, list[str]] = {
    "serial": COMMON,
    "xdist": ["-n", "auto", "--maxprocesses", "4", "--dist", "loadfile", *COMMON],
}
SUMMARY = re.compile(r"=+ (.*\d+ (?:passed|failed).*) in ([\d.]+)s")
COVERAGE = re.compile(r"Total coverage: ([\d.]+)%")


def parse_output(text: str) -> dict[str, Any]:
    """pytest's final counts (``{"passed": 1503, "xfailed": 6, ...}``), its own seconds and the
    total coverage (percent) from a run's output; missing parts are ``None``."""
    found = SUMMARY.findall(text)
    counts: dict[str, int] = {}
    if found:
        for part in found[-1][0].split(","):
            number, _, kind = part.strip().partition(" ")
            if number.isdigit():
                counts[kind] = int(number)
    coverage = COVERAGE.findall(text)
    return {
        "counts": counts,
        "pytest_seconds": float(found[-1][1]) if found else None,
        "coverage_percent": float(coverage[-1]) if coverage else None,
        "ok": bool(counts.get("passed")) and not counts.get("failed") and not counts.get("errors"),
    }


def parse_time_v(text: str) -> dict[str, float]:
    """Wall, user and system seconds from GNU ``/usr/bin/time -v`` output."""
    out: dict[str, float] = {}
    for key, label in (("user", "User time (seconds)"), ("system", "System time (seconds)")):
        match = re.search(re.escape(label) + r": ([\d.]+)", text)
        if match:
            out[key] = float(match.group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if wall:
        seconds = 0.0
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
        out["wall"] = seconds
    return out


def run_once(checkout: Path, variant: str) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter()
    done = subprocess.run(
        [str(checkout / ".venv" / "bin" / "pytest"), *VARIANTS[variant]],
        cwd=checkout,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "variant": variant,
        "started": started,
        "exit_code": done.returncode,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "load_before": os.getloadavg()[0],
        **parse_output(done.stdout),
    }


def from_log(name: str, path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    timing = parse_time_v(text)
    return {
        "variant": name,
        "source": f"log of a run made by hand: {path}",
        "wall_seconds": timing.get("wall"),
        "cpu_seconds": round(timing.get("user", 0.0) + timing.get("system", 0.0), 1) or None,
        **parse_output(text),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--checkout", type=Path, default=ROOT, help="a checkout with its .venv (default: this)"
    )
    parser.add_argument("--variants", default="serial,xdist", help="comma-separated: serial, xdist")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--from-log", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--note", default="", help="how the machine was (load, what else ran)")
    args = parser.parse_args(argv)

    runs: list[dict[str, Any]] = []
    for spec in args.from_log:
        name, _, path = spec.partition("=")
        if not path:
            parser.error(f"--from-log {spec!r}: expected NAME=PATH")
        runs.append(from_log(name, Path(path)))
    variants = [v for v in args.variants.split(",") if v] if not args.from_log else []
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {sorted(VARIANTS)}")
    for _ in range(args.repeats):
        for variant in variants:
            runs.append(run_once(args.checkout, variant))
            print(runs[-1]["variant"], runs[-1]["wall_seconds"], runs[-1]["counts"], file=sys.stderr)
    walls = {
        v: sorted(r["wall_seconds"] for r in runs if r["variant"] == v and r["wall_seconds"])
        for v in VARIANTS
    }
    medians = {v: w[len(w) // 2] for v, w in walls.items() if w}
    result: dict[str, Any] = {
        "command": {v: ["pytest", *a] for v, a in VARIANTS.items()},
        "note": args.note,
        "runs": runs,
        "median_wall_seconds": medians,
    }
    if "serial" in medians and "xdist" in medians:
        result["speedup_serial_over_xdist"] = round(medians["serial"] / medians["xdist"], 2)
    write_result("ci_tests", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
