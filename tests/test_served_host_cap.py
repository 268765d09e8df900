"""The served-model concurrency cap holds per host, across processes: several Python
processes (as the Python workers of one Spark executor are) never have more than
``max_concurrency`` calls in flight to one endpoint together. Checked against a real HTTP
server on 127.0.0.1 that counts the calls in flight (``FakeOpenAIServer``, from
tests/test_served.py: a fake OpenAI-compatible endpoint), first with plain processes
started together, then in a gate run on a real ``local[2]`` Spark session, whose summary
line and report count the retried and failed calls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_served import FakeOpenAIServer  # tests/ is on sys.path (no __init__ packages)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

CALLER = """
import os, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from gates.served import ServedClient, ServedSettings

url, model, go, ready = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
settings = {"base_url": url, "model": model, "max_concurrency": 2, "max_retries": 0, "timeout_s": 60}
client = ServedClient(ServedSettings.from_mapping(settings, "test"))
ready.touch()
while not go.exists():  # every process starts calling at the same moment
    time.sleep(0.01)
with ThreadPoolExecutor(max_workers=4) as pool:
    ask = lambda i: client.chat([{"role": "user", "content": f"{os.getpid()}-{i}"}])
    replies = list(pool.map(ask, range(6)))
print(len(replies))
"""


def _call_together(url: str, models: list[str], folder: Path) -> list[str]:
    """Start one calling process per model, let them call at once, return their outputs."""
    folder.mkdir()
    script = folder / "caller.py"
    script.write_text(CALLER)
    go = folder / "go"
    readies = [folder / f"ready-{i}" for i in range(len(models))]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, model, str(go), str(ready)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for model, ready in zip(models, readies)
    ]
    deadline = time.monotonic() + 300
    while not all(r.exists() for r in readies) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    return outs


def test_the_cap_holds_across_processes_of_one_host(tmp_path: Path) -> None:
    with FakeOpenAIServer(delay=0.3) as server:
        # Three processes x four threads, one endpoint and model: at most 2 calls in flight.
        outs = _call_together(server.url, ["fake-model"] * 3, tmp_path / "capped")
        assert outs == ["6", "6", "6"]
        assert len(server.seen) == 18
        assert server.max_in_flight == 2

    # The control: the same processes, each with its own model (so its own cap of 2), do
    # overlap: what kept the first run at 2 was the shared cap, not the timing.
    with FakeOpenAIServer(delay=0.3) as server:
        _call_together(server.url, [f"fake-model-{i}" for i in range(3)], tmp_path / "control")
        assert server.max_in_flight > 2


PROBE_CHAIN = '''
    """The served chain, noting which process made each call (the Python workers of Spark)."""
    import os
    from pathlib import Path

    from gates.served import ServedChain, ServedSettings

    HERE = Path(__file__).parent


    class ProbeServedChain(ServedChain):
        def invoke(self, question, seed=None, temperature=None):
            with open(HERE / "pids.txt", "a", encoding="utf-8") as pids:
                pids.write(f"{os.getpid()}\\n")
            return super().invoke(question, seed=seed, temperature=temperature)


    def build():
        return ProbeServedChain(ServedSettings.from_project(HERE))
'''

QUESTIONS = [f"question {i}" for i in range(8)] + ["a flaky question", "the model is down"]


@pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v java"], capture_output=True).returncode != 0,
    reason="no Java on this machine (scripts/bootstrap installs openjdk-17-jre-headless as root)",
)
def test_spark_gate_on_a_served_model_keeps_the_cap_and_counts_retries(pytester: pytest.Pytester) -> None:
    path = pytester.path
    with FakeOpenAIServer(delay=0.3) as server:
        pytester.makefile(
            ".toml",
            pyproject=f"""
            [tool.ragate]
            cache_dir = "{(path / "cache").as_posix()}"

            [tool.ragate.gates]
            chain = "served_probe:build"

            [tool.ragate.served]
            base_url = "{server.url}"
            model = "fake-model"
            max_concurrency = 1
            max_retries = 2
            timeout_s = 60

            [tool.ragate.spark]
            master = "local[2]"

            [tool.ragate.spark.conf]
            "spark.driver.memory" = "1g"
            "spark.sql.warehouse.dir" = "{(path / "warehouse").as_posix()}"

            [tool.pytest.ini_options]
            addopts = "-p no:cacheprovider"
            asyncio_default_fixture_loop_scope = "function"
            """,
        )
        pytester.makepyfile(served_probe=PROBE_CHAIN)
        (path / "data").mkdir()
        rows = [
            {"id": f"q{i}", "question": q, "ground_truth": "x", "source_ids": ["d"], "tags": ["t"]}
            for i, q in enumerate(QUESTIONS)
        ]
        (path / "data" / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        profile = {
            "env": "ci",
            "concurrency": 4,  # threads per Spark task: the cap, not the threads, must limit
            "datasets": [{"name": "golden", "path": "data/qa.jsonl"}],
            "metrics": {"latency": {"threshold": 100000, "rules": {"max_unscored_share": 0.2}}},
        }
        (path / "profile.yaml").write_text(json.dumps(profile))
        (path / "test_latency.py").write_text((ROOT / "quality" / "test_latency.py").read_text())
        result = pytester.runpytest_subprocess(
            "-p", "no:deepeval", "-p", "no:cacheprovider", "--gate-no-track", "-m", "gate",
            "--gate-profile", "profile.yaml", "--gate-engine", "spark", "test_latency.py",
            timeout=900,
        )  # fmt: skip
    said = result.stdout.str()
    assert "on Spark local[2]" in said, said
    pids = set((path / "pids.txt").read_text().split())
    assert len(pids) >= 2, pids  # the calls came from more than one Python worker ...
    assert server.max_in_flight == 1  # ... yet never two at once: the cap is the host's
    report = json.loads((path / "reports" / "gate-report.json").read_text())
    assert report["stats"]["served_retries"] == 2  # the flaky question's 429 and 500
    assert report["stats"]["served_failures"] == 1  # "down": 503 on every attempt
    down = next(c for c in report["cases"] if c["id"] == "q9")
    assert down["scores"]["latency"] is None and "ServedCallFailed" in down["reasons"]["latency"]
    assert "served calls: 2 retries, 1 failed (unscored)" in said
    assert report["passed"] is True  # 1 unscored of 10 is within max_unscored_share 0.2
    assert result.ret == 0, said
