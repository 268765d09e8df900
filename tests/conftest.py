"""Shared, expensive fixtures for the unit tests (built once per session)."""

import subprocess
import sys
from collections.abc import Iterator

import pytest
from _fixtures import LEAN_PYTEST, REPO, MlflowServer, free_port, mlflow_server_in, stop, wait_ready

# The model the loopback llama.cpp server serves (under this alias).
SERVED_MODEL = "smollm2-135m-instruct"


@pytest.fixture(autouse=True)
def _lean_pytest_subprocesses(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest processes a test starts (gate runs of its project, through pytester or
    ``python -m pytest``) load no hypothesis or LangSmith plugin (:data:`LEAN_PYTEST`)."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts: set it after
    monkeypatch.setenv("PYTEST_ADDOPTS", LEAN_PYTEST)


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
        wait_ready(f"{url}/models", process, "llama_cpp.server", timeout=90, log=log)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on loopback, one per test module: ``(url, folder)``."""
    with mlflow_server_in(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server
