"""The demo chain's version without building the chain.

``[tool.ragate.gates] chain_version = "rag.version:chain_version"`` lets the gates key
their answer cache on :func:`chain_version` and build the chain (LangChain, Chroma,
llama.cpp, NeMo Guardrails) only when an answer is missing: a re-run whose answers are all
cached imports none of them. The engine checks the declared version against the built
chain's on the first miss, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from rag.config import RagConfig, load_config

__all__ = ["chain_version", "rails_config_dir", "rails_fingerprint"]


def chain_version(root: Path | None = None) -> dict[str, str]:
    """What :func:`gates.chain.chain_version` gives for ``rag.chain:build_chain()`` after
    ``prepare()``, computed from the files alone.

    Keys (all ``str``): ``chain_hash`` (the configuration), ``prompt_version`` and
    ``prompt_sha256`` (the prompt file), ``model`` and ``model_sha256`` (the model's name
    and the SHA-256 of its GGUF file, or the endpoint for ``backend = "openai"``),
    ``guardrails`` (the rails' fingerprint or ``"off"``) and ``index`` (the corpus
    fingerprint ``prepare()`` returns). ``root`` is the project folder (default: found from
    the working directory). Raises :class:`UsageError` for a bad configuration, prompt,
    corpus or a model that is not installed, with the same messages as building the chain.
    """
    from rag.ingest import corpus_fingerprint
    from rag.prompts import load_prompt

    config = load_config(root)
    prompt = load_prompt(config.prompt)
    model, model_sha256 = _model(config)
    rails = rails_fingerprint(rails_config_dir()) if config.guardrails else "off"
    return {
        "chain_hash": config.chain_hash(),
        "prompt_version": prompt.version,
        "prompt_sha256": prompt.sha256,
        "model": model,
        "model_sha256": model_sha256,
        "guardrails": rails,
        "index": corpus_fingerprint(config.path(config.corpus_dir)),
    }


def _model(config: RagConfig) -> tuple[str, str]:
    """The generator's ``(name, fingerprint)`` as :func:`rag.llm.make_generator` sets them."""
    from rag.llm import model_file_hash, packaged_model_path

    if config.backend == "openai":
        return config.openai_model, f"openai:{config.openai_base_url}:{config.openai_model}"
    path = packaged_model_path(config.model, config.path(config.cache_dir).parent / "models")
    return config.model, model_file_hash(path)


def rails_config_dir() -> Path:
    """The NeMo Guardrails configuration folder (``rag/guardrails/config``)."""
    return _guardrails_folder() / "config"


def rails_fingerprint(config_dir: Path) -> str:
    """SHA-256 (16 hex digits) of the rails' configuration, code and seed data (the one
    implementation; :func:`rag.guardrails.rails.rails_fingerprint` calls it), read from the
    files without importing the rails, whose detectors compile their patterns on import
    (~0.15 s CPU, a tenth of a warm gate run)."""
    import ragate_core

    package = _guardrails_folder()
    core = Path(ragate_core.__file__).parent  # the shared detectors (PII, prototypes, toxicity)
    files = sorted(
        {
            *config_dir.glob("*"),
            *package.glob("*.py"),
            *(package / "data").glob("*.jsonl"),
            *core.glob("*.py"),
            *(core / "data").glob("*"),
        }
    )
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _guardrails_folder() -> Path:
    # find_spec imports the parent package (rag) only, not rag.guardrails.
    spec = importlib.util.find_spec("rag.guardrails")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))
