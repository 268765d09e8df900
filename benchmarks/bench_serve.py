"""``ragate serve`` throughput and latency, tracing on vs off, and the tracing overhead.

Starts ``ragate serve`` for real (a uvicorn subprocess on loopback) in a temporary project
whose configured chain is a fake that answers instantly (``FakeEchoChain``: contexts,
sources, token counts), so the figures are the service's and MLflow Tracing's own cost,
not a model's. Tracing goes to the temporary project's default SQLite store
(``.ragate/mlflow.db``; traces are exported asynchronously, as in production).

Per mode (``--no-tracing`` vs tracing on): after a warm-up, ``--sequential`` requests one
at a time (latency p50/p95, ms, client side), then ``--requests`` from ``--clients``
concurrent clients (requests/s). The tracing overhead per request is p50(on) - p50(off)
of the sequential latencies (target: under 5 ms). ``--runs`` repetitions (default 3,
the two modes alternating in order); the JSON holds the medians, min and max of the runs
and the load average (other jobs share the machine).

    python benchmarks/bench_serve.py [--sequential 200] [--requests 400] [--clients 8] [--runs 3]

Writes ``benchmarks/results/serve.json``. Rails on/off with the real chain (llama.cpp) is
not measured here: a model call dominates it; see benchmarks/bench_rag.py for the chain.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import percentile, write_result

FAKE_CHAIN = '''
class FakeEchoChain:
    """Answers instantly (a fake for the benchmark)."""

    def invoke(self, question):
        return {
            "answer": "You asked: " + question,
            "contexts": ["Refunds are paid within 14 days of the request."],
            "sources": ["refunds.md"],
            "prompt_tokens": 48,
            "completion_tokens": 12,
        }


def build():
    return FakeEchoChain()
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(root: Path, tracing: bool) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    command = [str(Path(sys.executable).parent / "ragate"), "serve", "--port", str(port)]
    if not tracing:
        command.append("--no-tracing")
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"ragate serve did not start (tracing={tracing})")
        time.sleep(0.5)


def _measure(url: str, sequential: int, requests: int, clients: int) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(20):  # warm-up
            http.post("/ask", json={"question": f"warm-up question {i}?"}).raise_for_status()
        latencies = []
        for i in range(sequential):
            start = time.perf_counter()
            http.post("/ask", json={"question": f"How long does refund {i} take?"}).raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000.0)

    errors: list[str] = []

    def client(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(worker, requests, clients):
                try:
                    http.post("/ask", json={"question": f"Concurrent question {i}?"}).raise_for_status()
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "sequential_requests": sequential,
        "latency_ms_p50": round(percentile(latencies, 50), 3),
        "latency_ms_p95": round(percentile(latencies, 95), 3),
        "concurrent_requests": requests,
        "clients": clients,
        "requests_per_s": round(requests / elapsed, 2),
        "errors": len(errors),
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported")
    args = parser.parse_args()
    load_start = os.getloadavg()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ragate-bench-serve-") as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text(
            '[tool.ragate]\n[tool.ragate.gates]\nchain = "fake_chain:build"\n'
        )
        (root / "fake_chain.py").write_text(FAKE_CHAIN)
        for run in range(args.runs):
            # Alternating order, so a load change during the run does not favour one mode.
            modes = [("tracing_off", False), ("tracing_on", True)]
            result: dict[str, Any] = {"load_average_1m": os.getloadavg()[0]}
            for mode, tracing in modes if run % 2 == 0 else modes[::-1]:
                process, url = _serve(root, tracing)
                try:
                    result[mode] = _measure(url, args.sequential, args.requests, args.clients)
                finally:
                    process.terminate()
                    process.wait(timeout=120)
            result["tracing_overhead_ms_p50"] = round(
                result["tracing_on"]["latency_ms_p50"] - result["tracing_off"]["latency_ms_p50"], 3
            )
            runs.append(result)
            print(f"run {run + 1}: {result}", file=sys.stderr)

    def summary(mode: str, key: str) -> dict[str, float]:
        values = [r[mode][key] for r in runs]
        return {"median": round(_median(values), 3), "min": min(values), "max": max(values)}

    overheads = [r["tracing_overhead_ms_p50"] for r in runs]
    overhead = _median(overheads)
    write_result(
        "serve",
        {
            "what": "ragate serve with an instant fake chain (benchmarks/bench_serve.py); "
            "tracing into the project's SQLite store; the request span is masked and closed "
            "by a background thread after the response, and exported asynchronously",
            "runs": args.runs,
            "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            **{
                mode: {
                    key: summary(mode, key)
                    for key in ("latency_ms_p50", "latency_ms_p95", "requests_per_s", "errors")
                }
                for mode in ("tracing_off", "tracing_on")
            },
            "tracing_overhead_ms_p50": {
                "median": round(overhead, 3),
                "min": min(overheads),
                "max": max(overheads),
            },
            "target_overhead_ms_p50": 5.0,
            "meets_target": overhead < 5.0,
            "per_run": runs,
        },
    )


if __name__ == "__main__":
    main()
