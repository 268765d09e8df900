"""One configuration object for the chain: defaults < ``[tool.ragate]`` < ``RAGATE_*``.

The hash of the fields that change what the chain answers identifies a chain version;
the gate cache and the model registry key on it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ragate_core.errors import UsageError
from ragate_core.project import find_project_root, tool_table

ENV_PREFIX = "RAGATE_"

# Fields that do not change answers (where state lives, secrets, concurrency) stay out of
# the chain hash so that moving the index folder does not invalidate a cache.
_NOT_HASHED = frozenset({"project_root", "index_dir", "cache_dir", "openai_api_key_env"})


class RagConfig(BaseModel):
    """Everything that defines one version of the RAG chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_root: Path = Field(default_factory=Path.cwd)
    corpus_dir: Path = Path("datasets/corpus")
    index_dir: Path = Path(".ragate/chroma")
    cache_dir: Path = Path(".ragate/cache")
    collection: str = Field(default="ragate-corpus", min_length=3, max_length=63)

    chunk_size: int = Field(default=700, ge=100, le=8000)
    chunk_overlap: int = Field(default=100, ge=0, le=2000)
    top_k: int = Field(default=3, ge=1, le=20)
    # Below this cosine similarity of the best chunk the chain abstains without asking
    # the model: a tiny model answers anyway when the context is unrelated.
    min_relevance: float = Field(default=0.20, ge=-1.0, le=1.0)

    prompt: str = "answer-v1"
    backend: Literal["llama_cpp", "openai"] = "llama_cpp"
    model: str = "smollm2-135m-instruct"
    max_tokens: int = Field(default=80, ge=1, le=4096)
    repeat_penalty: float = Field(default=1.15, ge=0.5, le=3.0)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = 0
    n_ctx: int = Field(default=2048, ge=256, le=131072)
    # One thread: on 2 shared cores, two OpenMP threads slow to a crawl whenever anything
    # else runs (measured 0.6 s -> 41 s for a 500-token prompt); alone they gain ~5%.
    n_threads: int = Field(default=1, ge=1, le=256)

    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "local-model"
    openai_api_key_env: str = "OPENAI_API_KEY"

    guardrails: bool = True

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, value: int, info: Any) -> int:
        size = info.data.get("chunk_size", 700)
        if value >= size:
            raise ValueError(f"must be smaller than chunk_size ({size})")
        return value

    def path(self, value: Path) -> Path:
        """Resolve a configured path against the project root."""
        return value if value.is_absolute() else self.project_root / value

    def chain_fields(self) -> dict[str, Any]:
        """The fields that change what the chain answers, JSON-ready."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in sorted(data.items()) if k not in _NOT_HASHED}

    def chain_hash(self) -> str:
        """A short, stable hash of :meth:`chain_fields`."""
        blob = json.dumps(self.chain_fields(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_config(root: Path | None = None, **overrides: Any) -> RagConfig:
    """Build the configuration from defaults, pyproject, environment and ``overrides``.

    Nested tables of ``[tool.ragate]`` (``gates``, ``tracking``) belong to other parts
    of ragate and are skipped here; any other unknown key is an error naming it.
    """
    root = root or find_project_root()
    table = {k: v for k, v in tool_table(root).items() if not isinstance(v, dict)}
    env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in os.environ.items()
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :].lower() in RagConfig.model_fields
    }
    merged: dict[str, Any] = {"project_root": root, **table, **env, **overrides}
    try:
        return RagConfig(**merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(config)"
            source = _source_of(key, table, env, overrides, root)
            problems.append(f"{source}: {key}: {err['msg']} (got {err.get('input')!r})")
        raise UsageError("invalid ragate configuration:\n  " + "\n  ".join(problems)) from exc


def _source_of(
    key: str, table: dict[str, Any], env: dict[str, Any], overrides: dict[str, Any], root: Path
) -> str:
    if key in overrides:
        return "option"
    if key in env:
        return f"environment {ENV_PREFIX}{key.upper()}"
    if key in table:
        return f"{root / 'pyproject.toml'} [tool.ragate]"
    return "configuration"
