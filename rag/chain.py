"""The RAG chain: retrieve from Chroma, fill the versioned prompt, generate (LCEL)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from rag.config import RagConfig, load_config
from rag.llm import Generator, make_generator
from rag.prompts import PromptTemplate, load_prompt

ABSTAIN = "I don't know. The documentation does not cover that."


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk."""

    text: str
    source: str
    similarity: float


@dataclass(frozen=True)
class RagAnswer:
    """The chain's result for one question."""

    question: str
    answer: str
    contexts: list[str]
    sources: list[str]
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    blocked: bool = False
    rail: str | None = None
    similarities: list[float] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


class RagChain:
    """Question in, :class:`RagAnswer` out. ``runnable`` is the LCEL pipeline."""

    def __init__(
        self, config: RagConfig, generator: Generator | None = None, store: Any | None = None
    ) -> None:
        from rag.ingest import open_store

        self.config = config
        self.prompt: PromptTemplate = load_prompt(config.prompt)
        self.generator: Generator = generator or make_generator(config)
        self.store = store or open_store(config)
        self.runnable: Runnable[str, RagAnswer] = RunnableLambda(self._retrieve) | RunnableLambda(
            self._answer
        )

    @property
    def version(self) -> dict[str, str]:
        """What identifies the answers this chain gives (for caches and the registry)."""
        return {
            "chain_hash": self.config.chain_hash(),
            "prompt_version": self.prompt.version,
            "prompt_sha256": self.prompt.sha256,
            "model": self.generator.name,
            "model_sha256": self.generator.fingerprint,
        }

    def retrieve(self, question: str) -> list[Hit]:
        pairs = self.store.similarity_search_with_score(question, k=self.config.top_k)
        # Chroma returns cosine *distance*; similarity reads better in reports.
        return [
            Hit(doc.page_content, doc.metadata["doc_id"], round(1.0 - float(dist), 4)) for doc, dist in pairs
        ]

    def _retrieve(self, question: str) -> dict[str, Any]:
        return {"question": question, "hits": self.retrieve(question)}

    def _answer(self, state: dict[str, Any], config: RunnableConfig) -> RagAnswer:
        question: str = state["question"]
        sampling = (config or {}).get("configurable", {})
        hits: list[Hit] = state["hits"]
        relevant = [h for h in hits if h.similarity >= self.config.min_relevance]
        if relevant:
            context = "\n\n".join(f"[{h.source}] {h.text}" for h in relevant)
            gen = self.generator.generate(self.prompt, context, question, **sampling)
            text, prompt_tokens, completion_tokens = gen.text, gen.prompt_tokens, gen.completion_tokens
        else:
            text, prompt_tokens, completion_tokens = ABSTAIN, 0, 0
        return RagAnswer(
            question=question,
            answer=text or ABSTAIN,
            # What the model saw: faithfulness is judged against exactly these.
            contexts=[h.text for h in relevant],
            sources=[h.source for h in relevant],
            latency_ms=0.0,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            similarities=[h.similarity for h in relevant],
        )

    def prepare(self) -> str:
        """Bring the index in line with the corpus (incremental); returns the corpus hash."""
        from rag.ingest import corpus_fingerprint, ingest

        ingest(self.config, store=self.store)
        return corpus_fingerprint(self.config.path(self.config.corpus_dir))

    def invoke(
        self, question: str, *, seed: int | None = None, temperature: float | None = None
    ) -> RagAnswer:
        """Answer one question; ``latency_ms`` covers retrieval and generation.

        ``seed`` and ``temperature`` override the configuration for repeated sampling.
        """
        start = time.perf_counter()
        sampling = {k: v for k, v in (("seed", seed), ("temperature", temperature)) if v is not None}
        result = self.runnable.invoke(question, config={"configurable": sampling} if sampling else None)
        elapsed = (time.perf_counter() - start) * 1000.0
        return RagAnswer(**{**result.to_row(), "latency_ms": round(elapsed, 2)})


def build_chain(config: RagConfig | None = None) -> RagChain:
    """The chain factory that ``gates`` imports (``rag.chain:build_chain``)."""
    return RagChain(config or load_config())
