"""The RAG chain: retrieve from Chroma, fill the versioned prompt, generate (LCEL)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from rag.config import RagConfig, load_config
from rag.llm import Generator, make_generator
from rag.prompts import PromptTemplate, load_prompt

if TYPE_CHECKING:
    from rag.guardrails import Guardrails

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
    # The rail that blocked; when none did, the masking rails that changed the question or
    # the answer ("mask_pii_input+mask_pii_output"); None when no rail acted.
    rail: str | None = None
    similarities: list[float] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


class RagChain:
    """Question in, :class:`RagAnswer` out. ``runnable`` is the LCEL pipeline.

    With ``config.guardrails`` (the default) the pipeline is wrapped in the rails of
    :mod:`rag.guardrails`: input rails before retrieval, output rails after generation.
    """

    def __init__(
        self,
        config: RagConfig,
        generator: Generator | None = None,
        store: Any | None = None,
        guardrails: Guardrails | None = None,
    ) -> None:
        from rag.ingest import open_store

        self.config = config
        self.prompt: PromptTemplate = load_prompt(config.prompt)
        self.generator: Generator = generator or make_generator(config)
        self.store = store or open_store(config)
        self.guardrails: Guardrails | None = None
        if config.guardrails:
            from rag.guardrails import default_guardrails

            self.guardrails = guardrails or default_guardrails()
        core = RunnableLambda(self._retrieve) | RunnableLambda(self._answer)
        self.runnable: Runnable[str, RagAnswer] = (
            RunnableLambda(self._guard_input) | core | RunnableLambda(self._guard_output)
            if self.guardrails is not None
            else core
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
            # Rails change answers too (refusals, masks): their code and data are part of it.
            "guardrails": self.guardrails.fingerprint if self.guardrails is not None else "off",
        }

    def retrieve(self, question: str) -> list[Hit]:
        pairs = self.store.similarity_search_with_score(question, k=self.config.top_k)
        # Chroma returns cosine *distance*; similarity reads better in reports.
        return [
            Hit(doc.page_content, doc.metadata["doc_id"], round(1.0 - float(dist), 4)) for doc, dist in pairs
        ]

    def _guard_input(self, question: str) -> dict[str, Any]:
        # Everything downstream (retrieval, the model, the answer's record) sees only the
        # masked question; a blocked one ends here with the refusal.
        assert self.guardrails is not None
        outcome = self.guardrails.check_input(question)
        if outcome.blocked:
            refusal = RagAnswer(
                # The rails return the refusal, not the masked message: mask it again here.
                question=self._masked(question),
                answer=outcome.text,
                contexts=[],
                sources=[],
                latency_ms=0.0,
                prompt_tokens=0,
                completion_tokens=0,
                blocked=True,
                rail=outcome.rail,
            )
            return {"question": refusal.question, "refusal": refusal}
        return {"question": outcome.text, "rails": [outcome.rail] if outcome.rail else []}

    def _masked(self, question: str) -> str:
        from rag.guardrails.pii import mask_pii

        return mask_pii(question, names=True)[0]

    def _guard_output(self, answer: RagAnswer) -> RagAnswer:
        assert self.guardrails is not None
        if answer.blocked:
            return answer
        outcome = self.guardrails.check_output(answer.question, answer.answer, answer.contexts)
        rails = [r for r in (answer.rail, outcome.rail) if r]
        if outcome.blocked:
            return replace(
                answer, answer=outcome.text, contexts=[], sources=[], similarities=[], blocked=True,
                rail=outcome.rail,
            )  # fmt: skip
        return replace(answer, answer=outcome.text, rail="+".join(rails) or None)

    def _retrieve(self, state: str | dict[str, Any]) -> dict[str, Any]:
        state = {"question": state} if isinstance(state, str) else state
        if "refusal" in state:
            return state
        return {**state, "hits": self.retrieve(state["question"])}

    def _answer(self, state: dict[str, Any], config: RunnableConfig) -> RagAnswer:
        if "refusal" in state:
            return state["refusal"]
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
            rail="+".join(state.get("rails", [])) or None,
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
        from rag.guardrails.rails import GuardrailError, is_internal_error

        if is_internal_error(result.answer):
            # NeMo Guardrails' reply for a failed rail: an error, never an answer for a user.
            raise GuardrailError("the guardrails failed and replied with their internal-error message")
        return RagAnswer(**{**result.to_row(), "latency_ms": round(elapsed, 2)})


def build_chain(config: RagConfig | None = None) -> RagChain:
    """The chain factory that ``gates`` imports (``rag.chain:build_chain``)."""
    return RagChain(config or load_config())
