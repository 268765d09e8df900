"""Shared, expensive fixtures for the unit tests (built once per session)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
