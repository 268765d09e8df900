"""ragate's MiniLM encoder computes what sentence-transformers computes, bit for bit (issue 12).

``ragate_core.embeddings`` runs all-MiniLM-L6-v2's forward pass in plain torch and tokenizes
with the ``tokenizers`` library, so that scoring does not pay for importing
sentence-transformers and transformers. Speed must not buy a different answer: here the token
ids equal ``SentenceTransformer.tokenize``'s, and every vector equals (``np.array_equal``, not
"close") ``SentenceTransformer.encode(..., normalize_embeddings=True)`` on the same texts,
fed as the encoder feeds them (texts of one token count together, no padding, one torch
thread). The texts are a few hundred strings of the labeled data in ``datasets/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragate_core.embeddings import MiniLMEncoder, _Bert, minilm_path
from ragate_core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
EDGE_CASES = [
    "",
    "ok",
    "  leading and trailing spaces  ",
    "Wie lange dauert die Rückerstattung? Crème brûlée, naïve café.",
    "退款需要多长时间？",
    "Текст на русском языке.",
    "Literal [CLS] and [SEP] and [MASK] tokens in the text.",
    "tabs\tand\nnew lines\r\nand a\u00a0non-breaking space",
    "emoji 🙂 and symbols ©®™ — “quotes”",
    "word " * 400,  # longer than 256 tokens: truncated
]


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def _dataset_texts(count: int = 300) -> list[str]:
    files = [*sorted((ROOT / "datasets" / "calibration").glob("*.jsonl")), ROOT / "datasets/golden/qa.jsonl"]
    texts: list[str] = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts += _strings(json.loads(line))
    unique = list(dict.fromkeys(t for t in texts if len(t) > 3))
    return unique[:: max(1, len(unique) // count)][:count]


TEXTS = list(dict.fromkeys(_dataset_texts() + EDGE_CASES))


@pytest.fixture(scope="module")
def sentence_transformer():
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(minilm_path()), device="cpu")


def test_token_ids_equal_sentence_transformers(sentence_transformer) -> None:
    ours = MiniLMEncoder().token_ids(TEXTS)
    for text, ids in zip(TEXTS, ours):
        expected = sentence_transformer.tokenize([text])["input_ids"][0].tolist()
        assert ids == expected, text[:80]
    assert max(len(ids) for ids in ours) == 256  # the long text is truncated, [SEP] kept
    assert ours[TEXTS.index("word " * 400)][-1] == 102


def test_vectors_equal_sentence_transformers_bit_for_bit(sentence_transformer) -> None:
    import torch

    encoder = MiniLMEncoder()
    by_length: dict[int, list[str]] = {}
    for text, ids in zip(TEXTS, encoder.token_ids(TEXTS)):
        by_length.setdefault(len(ids), []).append(text)
    expected: dict[str, np.ndarray] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for group in by_length.values():
            # One text alone would take another kernel: the encoder never sends one, nor here.
            batch = group if len(group) > 1 else group * 2
            vectors = sentence_transformer.encode(
                batch, batch_size=len(batch), normalize_embeddings=True, convert_to_numpy=True
            )
            expected.update(zip(group, vectors))
    finally:
        torch.set_num_threads(threads)
    encoder.clear_cache()
    ours = encoder.encode(TEXTS)
    reference = np.stack([expected[t] for t in TEXTS])
    assert ours.dtype == reference.dtype == np.float32
    different = [t[:60] for t, a, b in zip(TEXTS, ours, reference) if not np.array_equal(a, b)]
    assert not different, f"{len(different)} of {len(TEXTS)} vectors differ, e.g. {different[:3]}"


def test_encoding_imports_neither_sentence_transformers_nor_transformers() -> None:
    code = (
        "import sys; from ragate_core.embeddings import default_encoder; "
        "default_encoder().encode(['How long is the free trial?', 'ok']); "
        "print(sorted(m for m in ('sentence_transformers', 'transformers', 'sklearn', 'scipy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_model_of_another_shape_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(minilm_path(), folder, ignore=shutil.ignore_patterns("*.safetensors", "*.md"))
    pooling = folder / "1_Pooling" / "config.json"
    settings = json.loads(pooling.read_text())
    pooling.write_text(
        json.dumps({**settings, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    with pytest.raises(UsageError, match=r"1_Pooling/config\.json: pooling \['pooling_mode_cls_token'\]"):
        _Bert(folder)
