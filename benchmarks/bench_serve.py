"""``ragate serve`` throughput and latency, tracing on vs off side by side, and the tracing
overhead per request.

Starts ``ragate serve`` for real (uvicorn subprocesses on loopback) in a temporary project
whose configured chain is a fake that answers instantly (``FakeEchoChain``: contexts,
sources, token counts), so the figures are the service's and MLflow Tracing's own cost,
not a model's. Two stores, each measured in every run:

- ``sqlite``: the project's default store (``.ragate/mlflow.db``), written by the serving
  process itself;
- ``server``: a real ``mlflow server`` on loopback (``--workers 1``, SQLite behind it), as
  production runs it: the serving process only sends the masked traces.

Per run and store, both services run at once (``--no-tracing`` and tracing on) and the
``--sequential`` phase sends them alternating paired requests (off/on, then on/off), so
the load of the shared machine weighs on both alike: the tracing overhead per request is
the median of the paired differences (on - off, ms, client side; target < 5 ms), p50(on)
- p50(off) beside it. Then ``--requests`` from ``--clients`` concurrent clients to each
service in turn (requests/s). CPU per request (user + system time of the service's
process and its masking process over the sequential phase, waiting until the background
work, masking and export, has finished) is the cost tracing adds whatever the load.
``--runs`` repetitions; the JSON holds the medians, min and max over the runs and the
load average.

    python benchmarks/bench_serve.py [--sequential 200] [--requests 400] [--clients 8] [--runs 3]
                                     [--stores sqlite,server] [--serve-args "--mask-in-process"]

Writes ``benchmarks/results/serve.json``. ``--real-chain N --name serve_rails`` instead
serves the real demo chain (rag/: rails, Chroma, SmolLM2 by llama.cpp) twice at once,
NeMo Guardrails on and off (``RAGATE_GUARDRAILS``), and sends both the first N golden
questions, paired: latency p50/p95, requests per second one at a time, the rails'
overhead (median paired difference).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import ROOT, percentile, write_result

BIN = Path(sys.executable).parent
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
TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")
# --real-chain: the demo chain (rag/) with a private index; RAGATE_GUARDRAILS switches its rails.
REAL_CHAIN = """
from pathlib import Path

from rag.chain import RagChain
from rag.config import load_config


def build():
    state = Path(__file__).parent / "state"
    config = load_config(Path({repo!r}), index_dir=state / "chroma", cache_dir=state / "cache")
    chain = RagChain(config)
    chain.prepare()
    return chain
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen, what: str) -> None:
    import httpx

    deadline = time.monotonic() + 900  # the real chain ingests its index first
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"{what} did not start")
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def _mlflow_server(folder: Path) -> Iterator[str]:
    port = _free_port()
    command = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/health", process, "mlflow server")
        yield url
    finally:
        _stop(process)


@contextmanager
def _serve(
    root: Path,
    tracing: bool,
    tracking_uri: str | None,
    extra: tuple[str, ...] = (),
    env_extra: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen, str]]:
    port = _free_port()
    command = [str(BIN / "ragate"), "serve", "--port", str(port)]
    command += ["--no-tracing"] if not tracing else list(extra)
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.update(env_extra or {})
    process = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/health", process, f"ragate serve (tracing={tracing})")
        yield process, url
    finally:
        _stop(process)


def _cpu_ms(process: subprocess.Popen) -> float:
    """User + system CPU time (ms) of ``process`` and its live descendants (the service's
    masking process), from /proc."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu ms)
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = path.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        stats[int(path.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_MS)
    tree, total = {process.pid}, 0.0
    for _ in range(4):  # descendants, a few generations deep
        tree |= {pid for pid, (parent, _) in stats.items() if parent in tree}
    for pid in tree:
        total += stats.get(pid, (0, 0.0))[1]
    return total


def _settled_cpu_ms(process: subprocess.Popen, timeout: float = 300) -> float:
    """CPU time once ``process`` is idle (its background masking and export done): less
    than 20 ms of CPU over half a second."""
    deadline = time.monotonic() + timeout
    before = _cpu_ms(process)
    while True:
        time.sleep(0.5)
        now = _cpu_ms(process)
        if now - before < 20 or time.monotonic() > deadline:
            return now
        before = now


def _sequential_pairs(urls: dict[str, str], n: int) -> dict[str, list[float]]:
    """``n`` paired requests, alternating which service goes first: latencies (ms) per mode."""
    import httpx

    latencies: dict[str, list[float]] = {mode: [] for mode in urls}
    clients = {mode: httpx.Client(base_url=url, timeout=60) for mode, url in urls.items()}
    try:
        for http in clients.values():
            for i in range(20):  # warm-up
                http.post("/ask", json={"question": f"warm-up question {i}?"}).raise_for_status()
        modes = list(urls)
        for i in range(n):
            for mode in modes if i % 2 == 0 else modes[::-1]:
                start = time.perf_counter()
                clients[mode].post(
                    "/ask", json={"question": f"How long does refund {i} take?"}
                ).raise_for_status()
                latencies[mode].append((time.perf_counter() - start) * 1000.0)
    finally:
        for http in clients.values():
            http.close()
    return latencies


def _concurrent(url: str, requests: int, clients: int) -> dict[str, Any]:
    import httpx

    errors: list[str] = []

    def client(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
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
    return {"requests_per_s": round(requests / elapsed, 2), "errors": len(errors)}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _one_run(root: Path, tracking_uri: str | None, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2)}
    traced = _serve(root, True, tracking_uri, tuple(args.serve_args.split()))
    with _serve(root, False, None) as (off, off_url), traced as (on, on_url):
        processes = {"tracing_off": off, "tracing_on": on}
        cpu = {mode: _settled_cpu_ms(p) for mode, p in processes.items()}
        latencies = _sequential_pairs({"tracing_off": off_url, "tracing_on": on_url}, args.sequential)
        for mode, process in processes.items():
            result[mode] = {
                "latency_ms_p50": round(percentile(latencies[mode], 50), 3),
                "latency_ms_p95": round(percentile(latencies[mode], 95), 3),
                # Warm-up included in the CPU figures' requests: 20 + sequential.
                "cpu_ms_per_request": round(
                    (_settled_cpu_ms(process) - cpu[mode]) / (args.sequential + 20), 3
                ),
            }
        differences = [b - a for a, b in zip(latencies["tracing_off"], latencies["tracing_on"])]
        result["tracing_overhead_ms_p50"] = round(_median(differences), 3)
        result["p50_on_minus_p50_off_ms"] = round(
            result["tracing_on"]["latency_ms_p50"] - result["tracing_off"]["latency_ms_p50"], 3
        )
        for mode, url in (("tracing_off", off_url), ("tracing_on", on_url)):
            result[mode].update(_concurrent(url, args.requests, args.clients))
            _settled_cpu_ms(processes[mode])  # the backlog done before the next phase
    return result


def _real_chain(args: argparse.Namespace) -> None:
    """Rails on vs off with the real chain: both served at once (traced into the temporary
    project's store), ``--real-chain`` golden questions each, paired and alternating."""
    import httpx

    golden = (ROOT / "datasets" / "golden" / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in golden if line.strip()][: args.real_chain]
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ragate-bench-rails-") as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text(
            '[tool.ragate]\n[tool.ragate.gates]\nchain = "real_chain:build"\n'
        )
        (root / "real_chain.py").write_text(REAL_CHAIN.format(repo=str(ROOT)))
        env_path = {"PYTHONPATH": os.pathsep.join([str(root), str(ROOT)])}
        on = _serve(root, True, None, env_extra={**env_path, "RAGATE_GUARDRAILS": "true"})
        off = _serve(root, True, None, env_extra={**env_path, "RAGATE_GUARDRAILS": "false"})
        with on as (_, on_url), off as (_, off_url):
            urls = {"rails_off": off_url, "rails_on": on_url}
            latencies: dict[str, list[float]] = {mode: [] for mode in urls}
            blocked = {mode: 0 for mode in urls}
            with httpx.Client(timeout=600) as http:
                for url in urls.values():  # warm-up: models and rails loaded
                    http.post(f"{url}/ask", json={"question": "How do I export my data?"}).raise_for_status()
                modes = list(urls)
                for i, question in enumerate(questions):
                    for mode in modes if i % 2 == 0 else modes[::-1]:
                        start = time.perf_counter()
                        response = http.post(f"{urls[mode]}/ask", json={"question": question})
                        response.raise_for_status()
                        latencies[mode].append((time.perf_counter() - start) * 1000.0)
                        blocked[mode] += bool(response.json()["blocked"])
    differences = [b - a for a, b in zip(latencies["rails_off"], latencies["rails_on"])]
    write_result(
        args.name,
        {
            "what": "ragate serve with the real demo chain (rag/: Chroma + MiniLM, SmolLM2 by llama.cpp), "
            "NeMo Guardrails rails on vs off (RAGATE_GUARDRAILS), both served at once and traced, "
            "paired alternating requests over the first golden questions (benchmarks/bench_serve.py)",
            "command": "python benchmarks/bench_serve.py " + " ".join(sys.argv[1:]),
            "questions": len(questions),
            "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            **{
                mode: {
                    "latency_ms_p50": round(percentile(values, 50), 1),
                    "latency_ms_p95": round(percentile(values, 95), 1),
                    "requests_per_s": round(len(values) / (sum(values) / 1000.0), 3),
                    "blocked": blocked[mode],
                }
                for mode, values in latencies.items()
            },
            "rails_overhead_ms_p50": round(_median(differences), 1),
            "per_request_ms": latencies,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--stores", default="sqlite,server", help="sqlite, server or both (comma-separated)")
    parser.add_argument(
        "--serve-args", default="", help="more options for the traced service, e.g. --mask-in-process"
    )
    parser.add_argument("--name", default="serve", help="results file: benchmarks/results/NAME.json")
    parser.add_argument(
        "--real-chain",
        type=int,
        default=0,
        metavar="N",
        help="instead: rails on vs off with the real chain over N golden questions (use --name serve_rails)",
    )
    args = parser.parse_args()
    if args.real_chain:
        _real_chain(args)
        return
    stores = [s for s in args.stores.split(",") if s]
    if not set(stores) <= {"sqlite", "server"}:
        raise SystemExit(f"--stores {args.stores}: give sqlite, server or sqlite,server")
    load_start = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {store: [] for store in stores}
    with tempfile.TemporaryDirectory(prefix="ragate-bench-serve-") as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text(
            '[tool.ragate]\n[tool.ragate.gates]\nchain = "fake_chain:build"\n'
        )
        (root / "fake_chain.py").write_text(FAKE_CHAIN)
        with _mlflow_server(root / "server") if "server" in stores else _nothing() as server_url:
            for run in range(args.runs):
                for store in stores if run % 2 == 0 else stores[::-1]:
                    result = _one_run(root, server_url if store == "server" else None, args)
                    runs[store].append(result)
                    print(f"run {run + 1} {store}: {result}", file=sys.stderr)

    def spread(values: list[float]) -> dict[str, float]:
        return {"median": round(_median(values), 3), "min": min(values), "max": max(values)}

    summary: dict[str, Any] = {}
    for store, results in runs.items():
        summary[store] = {
            **{
                mode: {
                    key: spread([r[mode][key] for r in results])
                    for key in (
                        "latency_ms_p50",
                        "latency_ms_p95",
                        "cpu_ms_per_request",
                        "requests_per_s",
                        "errors",
                    )
                }
                for mode in ("tracing_off", "tracing_on")
            },
            "tracing_overhead_ms_p50": spread([r["tracing_overhead_ms_p50"] for r in results]),
            "p50_on_minus_p50_off_ms": spread([r["p50_on_minus_p50_off_ms"] for r in results]),
            "tracing_cpu_ms_per_request": spread(
                [
                    r["tracing_on"]["cpu_ms_per_request"] - r["tracing_off"]["cpu_ms_per_request"]
                    for r in results
                ]
            ),
            "meets_target": _median([r["tracing_overhead_ms_p50"] for r in results]) < 5.0,
            "per_run": results,
        }
    write_result(
        args.name,
        {
            "what": "ragate serve with an instant fake chain (benchmarks/bench_serve.py): tracing off and "
            "on served at once, paired alternating sequential requests, then concurrent clients; the "
            "request span is masked and closed by a background thread after the response and exported "
            "asynchronously; per store: the project's SQLite file, or a real mlflow server on loopback",
            "command": "python benchmarks/bench_serve.py " + " ".join(sys.argv[1:]),
            "runs": args.runs,
            "traced_service_options": args.serve_args,
            "sequential_pairs": args.sequential,
            "concurrent": {"requests": args.requests, "clients": args.clients},
            "load_average_at_start": [round(x, 2) for x in load_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "target_overhead_ms_p50": 5.0,
            **summary,
        },
    )


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
