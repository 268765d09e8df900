"""Warm re-run of the ci gates (issue 12 item 2), written to benchmarks/results/warm.json.

A warm re-run is ``pytest -m gate --gate-profile=ci`` after a threshold-only change, with
every answer, judgment and mask already in the gate cache (no model call). It runs in a
private copy of the project (code, datasets, ``.ragate`` with its index, cache and MLflow
store), so other work on the tree cannot invalidate the cache between runs:

1. a fill run (not timed; ``--no-fill`` when a kept copy's cache is full) answers and
   scores whatever the cache lacks, tracked as a team's cold run is: it registers the
   chain's version in the copy's store, which the first tracked run would otherwise do
   (2.4 s more inside that run, 2026-12-01 03:31 UTC: the 7.1 s first runs of earlier files);
2. before each timed run the ci profile's faithfulness threshold is moved (0.50 <-> 0.49):
   a threshold-only change;
3. timed variants, each a fresh ``pytest`` process, ``--repeats`` times, in turn:
   ``off`` (``--gate-no-track``), ``track`` (to the copy's local store
   ``.ragate/mlflow.db``), and ``off-quality`` (``quality`` named on the command line, so
   pytest collects only the gate suites);
4. one more ``off`` run under ``python -X importtime`` (output capture off): which heavy
   libraries an all-hit run loads, the packages and the modules that cost most to import.

The product declares its chain's version (``[tool.ragate.gates] chain_version =
"rag.version:chain_version"``), so an all-hit run never builds the chain. With
``--undeclared`` every variant also runs (alternating, in the same loop) with that line
removed from the copy's pyproject: the chain is then built and prepared to learn its
version (LangChain, Chroma, llama.cpp, NeMo Guardrails load), as before rag/version.py.

Reported per run: wall seconds and CPU seconds of the pytest process (on 2 shared cores the
wall time mostly measures the other jobs), the gate report's stats (generated and judged
must be 0); per variant the median, min and max; ``uptime`` before and after. The JSON is
rewritten after every run, so an interrupted benchmark keeps what it measured.

    python benchmarks/bench_warm.py [--repeats 3] [--variants off,track,off-quality]
                                    [--undeclared] [--keep DIR [--no-fill]]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, write_result

HEAVY = (
    "torch",
    "sentence_transformers",
    "transformers",
    "presidio_analyzer",
    "spacy",
    "llama_cpp",
    "chromadb",
    "langchain_core",
    "nemoguardrails",
    "mlflow",
    "hypothesis",
    "pandas",
    "sklearn",
)
SKIP = {".venv", ".git", "reports", "__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache", ".tox"}

DECLARATION = 'chain_version = "rag.version:chain_version"\n'


def _copy_project(target: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP}

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)
    return target


def _env(project: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    env.pop("MLFLOW_TRACKING_URI", None)  # tracking goes to the copy's local store
    env.pop("RAGATE_GATE_ENV", None)
    # As on a developer's machine, bytecode is cached: pytest rewrites the asserts of every
    # module of the ragate distribution (its plugin's), and without cached .pyc files each
    # run would parse and compile them again (~1 s CPU), which says nothing about ragate.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _move_threshold(project: Path, run: int) -> None:
    """A threshold-only change: faithfulness' threshold alternates between 0.50 and 0.49."""
    path = project / "gates" / "profiles" / "ci.yaml"
    text = path.read_text(encoding="utf-8")
    value = "0.49" if run % 2 else "0.5"
    new = re.sub(r"(faithfulness:\n    threshold: )[0-9.]+", rf"\g<1>{value}", text, count=1)
    path.write_text(new, encoding="utf-8")


def _pytest(project: Path, variant: str, report: Path, extra: list[str] | None = None) -> list[str]:
    args = [sys.executable, *(extra or []), "-m", "pytest", "-m", "gate", "--gate-profile=ci"]
    args += [f"--gate-report={report}", "-q", "-p", "no:randomly"]
    if variant in ("off", "off-quality"):
        args.append("--gate-no-track")
    if variant == "off-quality":
        args.append("quality")
    return args


def _timed_run(project: Path, variant: str, run: int) -> dict[str, Any]:
    report = project / "reports" / f"warm-{variant}"
    _move_threshold(project, run)
    start, cpu = time.perf_counter(), _children_cpu()
    out = subprocess.run(
        _pytest(project, variant, report), cwd=project, env=_env(project), capture_output=True, text=True
    )
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    data = json.loads((report / "gate-report.json").read_text(encoding="utf-8"))
    stats = data.get("stats", {})
    tracked = [line for line in out.stdout.splitlines() if line.startswith("ragate: track")]
    return {
        "seconds": round(seconds, 3),
        # CPU seconds (user + system) of the pytest process: on 2 cores shared with other
        # jobs the wall time mostly measures the others.
        "cpu_seconds": round(cpu, 3),
        "exit": out.returncode,
        "generated": stats.get("generated"),
        "judgments": stats.get("judgments"),
        "tracking": tracked[-1][len("ragate: ") :][:160] if tracked else None,
    }


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _import_profile(project: Path) -> dict[str, Any]:
    """One all-hit run under ``-X importtime`` (capture off, so the child's stderr is whole)."""
    report = project / "reports" / "warm-importtime"
    _move_threshold(project, 0)
    command = [*_pytest(project, "off", report, ["-X", "importtime"]), "-s"]
    out = subprocess.run(command, cwd=project, env=_env(project), capture_output=True, text=True)
    rows = []
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), len(match.group(3)), match.group(4)))
    loaded = sorted({name.split(".")[0] for _, _, name in rows} & set(HEAVY))
    tops: dict[str, int] = {}
    for cumulative, _, name in rows:
        package = name.split(".")[0]
        tops[package] = max(tops.get(package, 0), cumulative)
    top = sorted(tops.items(), key=lambda kv: -kv[1])[:10]
    own: dict[str, int] = {}
    for match in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", out.stderr):
        own[match.group(2)] = int(match.group(1))
    top_modules = sorted(own.items(), key=lambda kv: -kv[1])[:10]
    return {
        "heavy_libraries_loaded": loaded,
        "modules_imported": len(rows),
        "import_seconds_total": round(sum(c for c, depth, _ in rows if depth == 1) / 1e6, 2),
        "top_packages_by_cumulative_import_seconds": {k: round(v / 1e6, 3) for k, v in top},
        "top_modules_by_own_import_seconds": {k: round(v / 1e6, 3) for k, v in top_modules},
    }


def _check_declared(project: Path) -> dict[str, Any]:
    """The declared version against the built and prepared chain's, and what computing it costs."""
    check = (
        "import json, resource, sys, time; from pathlib import Path; root = Path(sys.argv[1]);"
        "t, c = time.perf_counter(), time.process_time();"
        "from gates.chain import configured_chain_spec; from gates.engine import declared_chain_version;"
        "spec = configured_chain_spec(root); d = declared_chain_version(root, spec);"
        "cheap, cheap_cpu = time.perf_counter() - t, time.process_time() - c;"
        "heavy = sorted(m for m in ('langchain_core', 'chromadb', 'llama_cpp', 'nemoguardrails', 'torch')"
        " if m in sys.modules);"
        "from gates.chain import chain_version, configured_chain_factory;"
        "full = chain_version(configured_chain_factory(root)(), spec);"
        "print(json.dumps({'equal': d == full, 'declared_seconds': round(cheap, 3),"
        "'declared_cpu_seconds': round(cheap_cpu, 3), 'heavy_imported_by_it': heavy,"
        "'differ': sorted(k for k in {*d, *full} if d.get(k) != full.get(k))}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", check, str(project)],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the declared-version check failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    cpu = [r["cpu_seconds"] for r in runs]
    return {
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds_min": round(min(seconds), 3),
        "seconds_max": round(max(seconds), 3),
        "cpu_seconds_median": round(statistics.median(cpu), 3),
        "cpu_seconds_min": round(min(cpu), 3),
        "cpu_seconds_max": round(max(cpu), 3),
        "runs": runs,
    }


def _uptime() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True)
    return out.stdout.strip()


def _set_declared(project: Path, on: bool) -> None:
    """Declare (the product) or not (``--undeclared``) the chain's version in the copy's pyproject."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8").replace(DECLARATION, "")
    if on:
        text = text.replace("[tool.ragate.gates]\n", "[tool.ragate.gates]\n" + DECLARATION, 1)
    pyproject.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="off,track,off-quality")
    parser.add_argument("--undeclared", action="store_true", help="also run without chain_version")
    parser.add_argument("--no-fill", action="store_true", help="the copy's cache is full already (--keep)")
    parser.add_argument("--keep", metavar="DIR", help="use (and keep) this copy of the project")
    args = parser.parse_args()

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ragate-warm-"))
    project = folder / "project"
    if not project.exists():
        _copy_project(project)
    uptime_before, load_before = _uptime(), os.getloadavg()
    result: dict[str, Any] = {
        "command": "pytest -m gate --gate-profile=ci (after a threshold-only change; all cached)",
        "project_copy": str(project),
        "targets_seconds": {"off": 3.0, "track": 5.0},
        "bytecode_cache": "written (PYTHONDONTWRITEBYTECODE unset for the runs)",
        "uptime_before": uptime_before,
        "loadavg_before": [round(x, 2) for x in load_before],
    }
    _set_declared(project, True)
    if not args.no_fill:
        start = time.perf_counter()
        fill = subprocess.run(
            _pytest(project, "track", project / "reports" / "warm-fill"),
            cwd=project,
            env=_env(project),
            capture_output=True,
            text=True,
        )
        result["fill_run_seconds"] = round(time.perf_counter() - start, 1)
        if fill.returncode not in (0, 1):
            raise RuntimeError(f"the fill run failed ({fill.returncode}):\n{fill.stdout[-3000:]}")
    result["declared_chain_version"] = {
        "what": "[tool.ragate.gates] chain_version = rag.version:chain_version (the product). Runs "
        "named '+undeclared' (--undeclared) have that line removed from the copy's pyproject: the "
        "chain is built and prepared to learn its version. Alternated run by run.",
        "check_against_built_chain": _check_declared(project),
    }
    variants = [v for v in args.variants.split(",") if v]
    plan = [(v, True) for v in variants]
    if args.undeclared:
        plan += [(v, False) for v in variants]
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for i in range(args.repeats):  # in turn, so the load hits every variant alike
            for variant, declared in plan:
                _set_declared(project, declared)
                name = f"{variant}{'' if declared else '+undeclared'}"
                runs.setdefault(name, []).append(_timed_run(project, variant, i))
                print(name, runs[name][-1], file=sys.stderr, flush=True)
                result["variants"] = {v: _summary(r) for v, r in runs.items()}
                _finish(result)  # written after every run: an interrupted benchmark keeps its figures
        for declared in [True, False] if args.undeclared else [True]:
            _set_declared(project, declared)
            key = "import_profile_off" + ("" if declared else "+undeclared")
            result[key] = _import_profile(project)
            _finish(result)
    finally:
        _set_declared(project, True)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def _finish(result: dict[str, Any]) -> None:
    result["uptime_after"] = _uptime()
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    write_result("warm", result)


if __name__ == "__main__":
    main()
