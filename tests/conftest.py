"""Shared, expensive fixtures for the unit tests (built once per session)."""

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The model the loopback llama.cpp server serves (under this alias).
SERVED_MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory):
    """The real corpus ingested once into a Chroma index in a temporary folder: ``(config, store)``.

    Real MiniLM embeddings; the repository's own index under ``.ragate/`` is never touched.
    """
    from rag.config import load_config
    from rag.ingest import ingest, open_store

    state = tmp_path_factory.mktemp("ragate-state")
    config = load_config(REPO, index_dir=state / "chroma", cache_dir=state / "cache")
    store = open_store(config)
    ingest(config, store=store)
    return config, store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port, always stopped afterwards."""
    from rag.llm import packaged_model_path

    folder = tmp_path_factory.mktemp("llama-server")
    model = packaged_model_path(SERVED_MODEL, folder)
    port = free_port()
    log = folder / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", SERVED_MODEL,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        # One thread each: on a busy shared machine more threads only contend. The prompt
        # cache keeps deepeval's long instructions evaluated across cases.
        "--n_threads", "1", "--n_threads_batch", "1", "--cache", "true",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready in 90 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
