"""The RAG chain: retrieve from Chroma, fill the versioned prompt, generate (LCEL)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import RagConfig, load_config
from rag.llm import Generator, make_generator
from rag.prompts import PromptTemplate, load_prompt
from ragate_core.errors import UsageError

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable, RunnableConfig

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
        self.config = config
        self.prompt: PromptTemplate = load_prompt(config.prompt)
        # The model and the rails load on first use: `ragate ingest` needs only the index.
        self._generator = generator
        self._index_checked = store is not None
        self._store = store if store is not None else _open_store(config)
        self._guardrails = guardrails
        # What the last prepare() did (`ragate ingest` prints it).
        self.prepare_summary: str | None = None
        # The step names are what a trace shows (``ragate serve``: one span per step).
        # LangChain loads with the first chain built, not with this module (which a run
        # whose answers are all cached may import for its types).
        from langchain_core.runnables import RunnableLambda

        core = RunnableLambda(self._retrieve, name="retrieval") | RunnableLambda(
            self._answer, name="generation"
        )
        self.runnable: Runnable[str, RagAnswer] = (
            RunnableLambda(self._guard_input, name="input_rails")
            | core
            | RunnableLambda(self._guard_output, name="output_rails")
            if config.guardrails
            else core
        )

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = make_generator(self.config)
        return self._generator

    @property
    def store(self) -> Any:
        return self._store

    @property
    def guardrails(self) -> Guardrails | None:
        if not self.config.guardrails:
            return None
        if self._guardrails is None:
            from rag.guardrails import default_guardrails

            self._guardrails = default_guardrails()
        return self._guardrails

    def mlflow_model(self) -> str:
        """What the registry logs for this chain: the models-from-code file ``rag/mlflow_model.py``."""
        return str(Path(__file__).with_name("mlflow_model.py"))

    def version(self) -> dict[str, str]:
        """What identifies the answers this chain gives (for caches and the registry): the
        ``Chain`` protocol's ``version() -> dict``."""
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
        from ragate_core.pii import mask_pii

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

    def prepare(self, corpus_dir: Path | None = None) -> str:
        """Bring the index in line with the corpus (incremental); returns the corpus hash.

        ``corpus_dir`` (default: the configured ``corpus_dir``) is read and checked before
        the index opens; :attr:`prepare_summary` then says what changed.
        """
        from rag.ingest import corpus_fingerprint, ingest, load_corpus

        corpus = corpus_dir if corpus_dir is not None else self.config.path(self.config.corpus_dir)
        load_corpus(corpus)  # a bad corpus fails here, before an index folder exists
        stats = ingest(self.config, corpus_dir=corpus, store=self.store)
        self.prepare_summary = f"ingested {corpus}: {stats.summary()}"
        self._index_checked = True
        return corpus_fingerprint(corpus)

    def _check_index(self) -> None:
        # An index that was never built makes every answer "I don't know" with no hint of
        # why: say what to run instead.
        if self._index_checked:
            return
        collection = getattr(self.store, "_collection", None)
        if collection is not None and collection.count() == 0:
            raise UsageError(
                f"{self.config.path(self.config.index_dir)}: the index is empty; run `ragate ingest` first"
            )
        self._index_checked = True

    def invoke(
        self, question: str, *, seed: int | None = None, temperature: float | None = None
    ) -> RagAnswer:
        """Answer one question; ``latency_ms`` covers retrieval and generation.

        ``seed`` and ``temperature`` override the configuration for repeated sampling.
        """
        self._check_index()
        start = time.perf_counter()
        sampling = {k: v for k, v in (("seed", seed), ("temperature", temperature)) if v is not None}
        result = self.runnable.invoke(question, config={"configurable": sampling} if sampling else None)
        elapsed = (time.perf_counter() - start) * 1000.0
        from rag.guardrails.rails import GuardrailError, is_internal_error

        if is_internal_error(result.answer):
            # NeMo Guardrails' reply for a failed rail: an error, never an answer for a user.
            raise GuardrailError("the guardrails failed and replied with their internal-error message")
        return RagAnswer(**{**result.to_row(), "latency_ms": round(elapsed, 2)})


def _open_store(config: RagConfig) -> Any:
    from rag.ingest import open_store

    return open_store(config)


def build_chain(config: RagConfig | None = None) -> RagChain:
    """The chain factory that ``gates`` imports (``rag.chain:build_chain``)."""
    return RagChain(config or load_config())
