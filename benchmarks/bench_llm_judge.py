"""LLM-judge tier vs offline tier: seconds per case per metric, and unscored counts.

    python benchmarks/bench_llm_judge.py [--cases 10] [--model smollm2-135m-instruct]
                                          [--max-tokens 256] [--max-retries 1]

Starts llama-cpp-python's OpenAI-compatible server on 127.0.0.1 with a packaged GGUF
model as the judge, scores the same golden-like cases (question, retrieved contexts,
answer; taken from datasets/calibration, good and bad answers mixed) with the four
offline metrics and their ``@llm`` variants, and writes benchmarks/results/llm_judge.json.

The offline tier scores the cases as one batch after a warm-up (model loading is
reported apart); the LLM tier scores case by case, which is how the judge works anyway.
The load average is recorded: on a shared machine it moves the LLM figures most.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from _common import ROOT, percentile, write_result

CALIBRATION = ROOT / "datasets" / "calibration"
METRICS = ("faithfulness", "answer_relevancy", "toxicity", "pii")
# Answers without a case of their own get a support-desk question and context.
GENERIC_QUESTION = "Can you help me with my account?"
GENERIC_CONTEXT = "Support can help with billing, sign-in and workspace settings from Monday to Friday."


def golden_like_cases(n: int) -> list[Any]:
    """``n`` cases: faithful/unfaithful pairs, relevant/irrelevant answers, toxic and PII answers."""
    from gates.metrics.base import MetricCase

    def rows(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (CALIBRATION / f"{name}.jsonl").read_text().splitlines() if line]

    faith, rel = rows("faithfulness"), rows("relevancy")
    tox = [r for r in rows("toxicity") if r["label"] == 1]
    pii = [r for r in rows("pii") if r["label"] == 1]
    pool: list[MetricCase] = []
    for i in range(max(n, 4)):
        kind = i % 4
        if kind == 0:  # a faithful answer and its unfaithful twin, alternately
            r = faith[i // 4 * 2 + (i // 4) % 2]
        elif kind == 1:
            r = rel[i // 4]
        if kind in (0, 1):
            pool.append(MetricCase(r["id"], r["question"], r["answer"], tuple(r["contexts"])))
        else:
            r = (tox if kind == 2 else pii)[i // 4]
            pool.append(MetricCase(r["id"], GENERIC_QUESTION, r["text"], (GENERIC_CONTEXT,)))
    return pool[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model_name: str, folder: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """The judge server on a free loopback port: (process, base URL, seconds to ready)."""
    from rag.llm import packaged_model_path

    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_model_path(model_name, folder)),
        "--model_alias", model_name, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        "--n_threads", "1", "--n_threads_batch", "1", "--cache", "true",
    ]  # fmt: skip
    start = time.perf_counter()
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    while time.perf_counter() - start < 120:
        if process.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited: {(folder / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return process, url, time.perf_counter() - start
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise SystemExit("llama_cpp.server not ready in 120 s")


def summarise(seconds: list[float], scores: list[Any], ids: list[str]) -> dict[str, Any]:
    unscored = [s for s in scores if s.value is None]
    errors = Counter(
        s.reason.split(":")[1].strip() if s.reason.startswith("error:") else s.reason for s in unscored
    )
    return {
        "cases": len(scores),
        "seconds_per_case_mean": round(sum(seconds) / len(seconds), 3) if seconds else None,
        "seconds_per_case_p50": round(percentile(seconds, 50), 3),
        "seconds_per_case_p95": round(percentile(seconds, 95), 3),
        "unscored": len(unscored),
        "unscored_share": round(len(unscored) / len(scores), 3) if scores else None,
        "unscored_errors": dict(errors),
        "values": {case_id: s.value for case_id, s in zip(ids, scores)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="a packaged model name or .gguf path"
    )
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-retries", type=int, default=1)
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=METRICS)
    args = parser.parse_args()

    from gates.metrics.base import get_metric
    from gates.metrics.llm_judge import JudgeConfig, OpenAICompatibleJudge
    from gates.metrics.llm_metrics import SPECS, LLMJudgeMetric

    cases = golden_like_cases(args.cases)
    ids = [c.id for c in cases]
    load_before = os.getloadavg()

    offline: dict[str, Any] = {}
    for name in args.metrics:
        metric = get_metric(name)
        start = time.perf_counter()
        metric.score_batch(cases[:1])  # loads the models: reported apart, not per case
        warm_up = time.perf_counter() - start
        start = time.perf_counter()
        scores = metric.score_batch(cases)
        total = time.perf_counter() - start
        offline[name] = {"warm_up_seconds": round(warm_up, 3)} | summarise(
            [total / len(cases)] * len(cases), scores, ids
        )

    llm: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # deepeval writes ./.deepeval
        process, url, ready = start_server(args.model, Path(tmp))
        try:
            config = JudgeConfig(
                base_url=url, model=args.model, max_retries=args.max_retries, max_tokens=args.max_tokens
            )
            judge = OpenAICompatibleJudge(config)
            for name in args.metrics:
                metric = LLMJudgeMetric(SPECS[name], judge)
                seconds, scores, calls = [], [], judge.calls
                for case in cases:
                    start = time.perf_counter()
                    scores.extend(metric.score_batch([case]))
                    seconds.append(time.perf_counter() - start)
                    print(f"{metric.name} {case.id}: {seconds[-1]:.1f} s {scores[-1].value}", file=sys.stderr)
                llm[name] = summarise(seconds, scores, ids) | {
                    "requests_per_case": round((judge.calls - calls) / len(cases), 2)
                }
        finally:
            process.terminate()
            process.wait(timeout=30)
    ratio = {
        name: round(llm[name]["seconds_per_case_mean"] / offline[name]["seconds_per_case_mean"], 1)
        for name in args.metrics
        if offline[name]["seconds_per_case_mean"]
    }
    write_result(
        "llm_judge",
        {
            "judge": {
                "server": "llama_cpp.server (llama-cpp-python), 127.0.0.1, 1 thread, prompt cache on",
                "model": args.model,
                "max_tokens": args.max_tokens,
                "max_retries": args.max_retries,
                "server_ready_seconds": round(ready, 2),
            },
            "cases": ids,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "offline": offline,
            "llm": llm,
            "llm_over_offline_seconds_per_case": ratio,
        },
    )


if __name__ == "__main__":
    main()
