"""Gate-engine benchmarks (issue 3), written to benchmarks/results/gates.json:

- harness overhead per case and metric at N cases, with a zero-latency FakeChain and a
  zero-cost FakeMetric, through pytest (one item per case), against bare pytest running
  N trivial tests; and the same fake metric through ``deepeval.evaluate``;
- pytest start-up cost of the plugin against bare pytest;
- each offline metric's start-up (import + first score) and marginal throughput
  (case-metrics/s between a 100- and a 1,000-case run), reported apart;
- optionally (--staging) a cold and a warm staging run of the real chain: total wall time
  against the summed model time, and the warm re-run's wall time and model calls.

    python benchmarks/bench_gates.py [--cases 1000] [--staging]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _common import ROOT, write_result

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:deepeval"]

FAKES = """
from gates.metrics.base import Score, register


class FakeChain:
    version = {"fake": "1"}

    def invoke(self, question, **kwargs):
        return {"answer": question, "contexts": [question], "latency_ms": 0.0}


def build():
    return FakeChain()


class FakeMetric:
    name = "fake"
    version = "1"
    direction = "higher_is_better"
    default_threshold = 0.5

    def reads(self, case):
        return {"answer": case.answer}

    def score_batch(self, cases):
        return [Score("fake", "1", 1.0, "fake") for _ in cases]


register("fake")(FakeMetric)
"""


def _timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 5):
        raise RuntimeError(
            f"{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return elapsed


def harness_overhead(n: int, repeats: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "pyproject.toml").write_text(
            '[tool.ragate]\ncache_dir = ".ragate/cache"\n\n[tool.ragate.gates]\nchain = "fakes:build"\n'
        )
        (project / "fakes.py").write_text(FAKES)
        (project / "conftest.py").write_text("import fakes  # registers FakeMetric\n")
        rows = [
            {"id": f"c{i}", "question": f"q{i}", "ground_truth": "a", "source_ids": ["d"]} for i in range(n)
        ]
        (project / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (project / "profile.yaml").write_text(
            textwrap.dedent(
                """
                env: ci
                datasets: [{name: golden, path: qa.jsonl}]
                metrics: {fake: {threshold: 0.5, rules: {min_mean: 0.5}}}
                """
            )
        )
        suite = project / "gate"
        suite.mkdir()
        (suite / "test_fake.py").write_text(
            "import pytest\npytestmark = pytest.mark.gate\nMETRIC = 'fake'\n\n"
            "def test_case(gate_case):\n    assert gate_case.passed\n\n"
            "def test_gate(gate_metric):\n    assert gate_metric.passed\n"
        )
        bare = project / "bare"
        bare.mkdir()
        (bare / "test_bare.py").write_text(
            "import pytest\n\n"
            f"@pytest.mark.parametrize('i', range({n + 1}))\ndef test_item(i):\n    assert i >= 0\n"
        )
        env = {**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{ROOT}"}
        gate_cmd = [*PYTEST, "-m", "gate", "--gate-profile", "profile.yaml", "--gate-no-track", "gate"]
        _timed([*gate_cmd, "--gate-no-cache"], project, env)  # warm the OS caches
        # In turn, so the load of the shared machine hits each alike; medians reported.
        runs: dict[str, list[float]] = {"cold": [], "warm": [], "bare": []}
        for _ in range(repeats):
            runs["cold"].append(_timed([*gate_cmd, "--gate-no-cache"], project, env))
            runs["warm"].append(_timed(gate_cmd, project, env))
            runs["bare"].append(_timed([*PYTEST, "-p", "no:gates.plugin", "bare"], project, env))
        gate_cold, gate_warm, bare_s = (statistics.median(runs[k]) for k in ("cold", "warm", "bare"))

        os.chdir(project)  # deepeval writes ./.deepeval
        os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")
        sys.path.insert(0, str(project))
        import fakes  # noqa: F401  (registers the fake metric in this process)
        from deepeval import evaluate
        from deepeval.evaluate.configs import AsyncConfig, DisplayConfig
        from deepeval.test_case import LLMTestCase

        from gates.metrics.deepeval_adapter import RagateMetric

        cases = [LLMTestCase(input=f"q{i}", actual_output=f"q{i}", retrieval_context=["x"]) for i in range(n)]
        start = time.perf_counter()
        evaluate(
            cases,
            [RagateMetric("fake")],
            async_config=AsyncConfig(run_async=False),
            display_config=DisplayConfig(show_indicator=False, print_results=False),
        )
        deepeval_s = time.perf_counter() - start
    return {
        "cases": n,
        "gate_run_no_cache_seconds": round(gate_cold, 3),
        "gate_run_cached_seconds": round(gate_warm, 3),
        "bare_pytest_same_item_count_seconds": round(bare_s, 3),
        "runs_seconds": {k: [round(v, 3) for v in vs] for k, vs in runs.items()},
        "statistic": f"median of {repeats} runs each",
        "overhead_ms_per_case_metric": round((gate_cold - bare_s) / n * 1000, 3),
        "overhead_ms_per_case_metric_cached": round((gate_warm - bare_s) / n * 1000, 3),
        "deepeval_evaluate_seconds": round(deepeval_s, 3),
        "deepeval_ms_per_case_metric": round(deepeval_s / n * 1000, 3),
    }


def startup_cost(repeats: int = 5) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "test_one.py").write_text("def test_one():\n    assert True\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        plugin_runs, bare_runs = [], []
        for _ in range(repeats):  # in turn, so the load hits both alike
            plugin_runs.append(_timed([*PYTEST, "test_one.py"], Path(tmp), env))
            bare_runs.append(_timed([*PYTEST, "-p", "no:gates.plugin", "test_one.py"], Path(tmp), env))
    with_plugin, bare = statistics.median(plugin_runs), statistics.median(bare_runs)
    return {
        "pytest_with_plugin_seconds": round(with_plugin, 3),
        "pytest_without_plugin_seconds": round(bare, 3),
        "plugin_startup_seconds": round(with_plugin - bare, 3),
        "runs_seconds": {
            "plugin": [round(v, 3) for v in plugin_runs],
            "bare": [round(v, 3) for v in bare_runs],
        },
        "statistic": f"median of {repeats} runs each",
    }


def metric_throughput(small: int = 100, large: int = 1000) -> dict[str, dict[str, float]]:
    """Start-up and marginal throughput of each offline metric, reported apart.

    Each run is a fresh process (``bench_metrics.py``'s worker): start-up is its import
    plus first score; marginal throughput is ``(large - small) / (t_large - t_small)`` over
    golden-shaped cases, so start-up is excluded. (This function used to time one
    in-process call over a calibration file after a 2-case warm-up: those rows have a
    distinct context each, nothing repeats, and lazily loaded parts such as word vectors
    were still inside the timing, so it reported a different, lower figure than
    ``ragate score``'s marginal rate. ``bench_metrics.py`` has the medians and spread.)
    """
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_metrics import METRICS, _spawn

    out = {}
    for name in METRICS:
        a = _spawn("--worker", name, str(small))
        b = _spawn("--worker", name, str(large))
        delta = b["run_seconds"] - a["run_seconds"]
        out[name] = {
            "startup_seconds": round((a["startup_seconds"] + b["startup_seconds"]) / 2, 3),
            "marginal_case_metrics_per_second": round((large - small) / delta, 1) if delta > 0 else None,
        }
    return out


def _throughput_from_metrics_json() -> dict[str, Any]:
    data = json.loads((ROOT / "benchmarks" / "results" / "metrics.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {"source": f"benchmarks/results/metrics.json (created {data.get('created')})"}
    for name, entry in data.get("metrics", {}).items():
        out[name] = {
            "startup_seconds": entry["startup_seconds"]["median"],
            "marginal_case_metrics_per_second": entry["marginal_case_metrics_per_second"]["median"],
        }
    return out


def staging_runs() -> dict[str, float]:
    env = {**os.environ}
    report = ROOT / "reports" / "bench-staging"
    cmd = [
        *PYTEST,
        "-m",
        "gate",
        "--gate-env",
        "staging",
        "--gate-report",
        str(report),
        "--gate-no-track",
        "quality",
    ]
    start = time.perf_counter()
    subprocess.run([*cmd, "--gate-no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)
    cold = time.perf_counter() - start
    stats_cold = json.loads((report / "gate-report.json").read_text())["stats"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    warm = time.perf_counter() - start
    stats_warm = json.loads((report / "gate-report.json").read_text())["stats"]
    return {
        "cold_wall_seconds": round(cold, 1),
        "cold_model_seconds": round(stats_cold["model_seconds"], 1),
        "cold_overhead_share": round((cold - stats_cold["model_seconds"]) / cold, 3),
        "warm_wall_seconds": round(warm, 2),
        "warm_model_calls": stats_warm["generated"],
        "warm_judgments": stats_warm["judgments"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--staging", action="store_true", help="also time a cold and a warm staging run")
    parser.add_argument(
        "--throughput-from-metrics-json",
        action="store_true",
        help="quote each metric's start-up and marginal throughput from results/metrics.json "
        "(bench_metrics.py, medians of 3) instead of measuring them once more here",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = {
        "startup": startup_cost(),
        "metric_throughput": _throughput_from_metrics_json()
        if args.throughput_from_metrics_json
        else metric_throughput(),
        "harness_overhead": harness_overhead(args.cases),
    }
    result["loadavg_before"] = [round(v, 2) for v in load_before]
    result["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.staging:
        result["staging"] = staging_runs()
    write_result("gates", result)


if __name__ == "__main__":
    main()
