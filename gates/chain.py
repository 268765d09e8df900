"""The boundary between the harness and any team's chain: the :class:`Chain` protocol.

``gates`` reaches a chain only through the factory named by ``[tool.ragate.gates] chain``
(``"module:factory"``; ragate's demo chain is ``rag.chain:build_chain``). The factory takes
no argument and returns an object with ``invoke(question) -> answer``; everything else is
optional:

- ``version() -> dict[str, str]`` (or a ``version`` attribute/property): what identifies the
  answers the chain gives (config hash, prompt, model file...). It keys the generation
  cache and names the model version in MLflow. Without it, a chain is identified by its
  factory's import string and a hash of its code (:func:`code_hash`: the factory's and the
  chain class's source files), and the report says so.
- ``prepare() -> str``: bring the chain up to date (for example, index the corpus) and
  return a hash of what it indexed; the hash joins the version.
- ``mlflow_model() -> str | PythonModel``: what to register in MLflow for this chain (a
  models-from-code file path or a ``PythonModel``); without it the registered version holds
  the version tags only (a team may register its own model separately).

The answer may be an :class:`Answer`, any object with those attributes, or a mapping; it
must carry ``answer`` and ``contexts`` (an empty list when nothing was retrieved, which a
blocked answer may omit).
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ragate_core.errors import UsageError

DEFAULT_CHAIN = "rag.chain:build_chain"


class ChainBuildError(Exception):
    """The configured chain factory (or the chain's ``prepare``/``version``) raised: nothing
    can be answered, so the gate run stops with this one message and fails (exit status 1),
    instead of an error and a traceback per gate item."""

    @classmethod
    def of(cls, spec: str, exc: BaseException) -> ChainBuildError:
        """``exc`` described by what raised it: the exception and the innermost frame."""
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
        return cls(f"the chain factory {spec!r} failed: {type(exc).__name__}: {exc}{where}")


@dataclass(frozen=True)
class Answer:
    """A chain's answer to one question.

    ``contexts`` are the texts the model saw, ``sources`` the id of the document each
    retrieved chunk came from (ranked, one per chunk), ``latency_ms`` the wall time of the
    call in milliseconds, token counts as the model reported them (``None`` = unknown),
    ``blocked`` whether a guardrail refused, ``rail`` which rail acted.
    """

    answer: str
    contexts: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    blocked: bool = False
    rail: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, result: Any, measured_ms: float | None = None) -> Answer:
        """Accept an :class:`Answer`, an object with an ``answer`` attribute, or a mapping.

        ``measured_ms``: the wall time of the call that returned ``result`` (milliseconds),
        the latency when the chain reports none (a missing ``latency_ms`` is never 0 ms) or
        reports less (:func:`_latency`).
        Raises ``TypeError`` naming the type when there is no ``answer`` or it is ``None``,
        and ``ValueError`` for an empty answer that no guardrail blocked: such answers are
        generation failures (unscored for every metric), never judged as text.
        """
        if isinstance(result, Answer):
            return result
        data = result if isinstance(result, Mapping) else getattr(result, "__dict__", {})
        if "answer" not in data:
            raise TypeError(f"the chain returned {type(result).__name__} without an 'answer'")
        if data["answer"] is None:
            raise TypeError(
                f"the chain returned {type(result).__name__} with answer None; return the answer text"
            )
        blocked = bool(data.get("blocked", False))
        if not blocked and not str(data["answer"]).strip():
            raise ValueError("the chain returned an empty answer")
        if "contexts" not in data and not blocked:
            # Faithfulness and context metrics would judge an answer against nothing and
            # report "unsupported": name the contract's field instead.
            raise TypeError(
                f"the chain returned {type(result).__name__} without 'contexts' (the retrieved "
                "texts the model saw; return an empty list when nothing was retrieved)"
            )

        if not isinstance(data["answer"], str):
            raise TypeError(
                f"the chain returned answer {data['answer']!r} ({type(data['answer']).__name__}); "
                "return the answer text (str)"
            )
        for key in ("contexts", "sources"):
            value = data.get(key)
            listed = hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping))
            if value is not None and not listed:
                # A single string would be read one character per context.
                raise TypeError(
                    f"the chain returned {key!r} as {type(value).__name__}; return a list of strings"
                )

        def number(key: str, kind: type) -> Any:
            value = data.get(key)
            if value is None:
                return None
            try:
                return kind(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"the chain returned {key!r} = {value!r}; give a number ({kind.__name__}) or leave it out"
                ) from None

        return cls(
            answer=data["answer"],
            contexts=tuple(str(c) for c in data.get("contexts") or ()),
            sources=tuple(str(s) for s in data.get("sources") or ()),
            latency_ms=_latency(number("latency_ms", float), measured_ms),
            prompt_tokens=number("prompt_tokens", int),
            completion_tokens=number("completion_tokens", int),
            blocked=blocked,
            rail=data.get("rail"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists for tuples); the form cached and written in reports."""
        data = asdict(self)
        data["contexts"] = list(self.contexts)
        data["sources"] = list(self.sources)
        data["extra"] = dict(self.extra)
        return data


def _latency(reported: Any, measured_ms: float | None) -> float:
    """The larger of the chain's own ``latency_ms`` and the measured wall time of its call: a
    chain may count time the call does not show (a recorded production latency), but it can
    never make itself faster than it was (a timer started after the slow part)."""
    if reported is not None and measured_ms is not None:
        return max(float(reported), float(measured_ms))
    if reported is not None:
        return float(reported)
    if measured_ms is not None:
        return float(measured_ms)
    return 0.0  # a stored answer from before latencies were measured


def call_chain(
    chain: Any, prompt: str, *, repeat: int = 0, temperature: float | None = None, sampled: bool = False
) -> Answer:
    """``chain.invoke(prompt)`` read as an :class:`Answer` (:meth:`Answer.of`), timed: the
    call's wall time is the latency when the chain reports none. ``sampled`` (repeated
    sampling or a set temperature): the chain is asked ``invoke(prompt, seed=repeat,
    temperature=temperature)``. Whatever the chain raises propagates."""
    start = time.perf_counter()
    result = chain.invoke(prompt, seed=repeat, temperature=temperature) if sampled else chain.invoke(prompt)
    return Answer.of(result, measured_ms=(time.perf_counter() - start) * 1000.0)


def check_sampling_support(chain: Any, spec: str, repeats: int, temperature: float | None) -> None:
    """``UsageError`` when a profile samples (``sampling: {repeats > 1}`` or a temperature)
    and ``chain.invoke`` cannot take ``seed=`` and ``temperature=`` keyword arguments: every
    call would fail with the same TypeError, each case unscored, instead of one message.
    A signature Python cannot read (a builtin) is left to the call."""
    invoke = getattr(chain, "invoke", None)
    try:
        signature = inspect.signature(invoke)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    params = signature.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [name for name in ("seed", "temperature") if name not in named]
    if not missing:
        return
    asked = f"repeats: {repeats}" + (f", temperature: {temperature:g}" if temperature is not None else "")
    raise UsageError(
        f"the profile's sampling ({asked}) calls the chain as invoke(question, seed=..., "
        f"temperature=...), but {spec}'s {type(chain).__name__}.invoke{signature} has no "
        f"{' or '.join(missing)}: add them as keyword arguments (def invoke(self, question, "
        "seed=None, temperature=None)), or remove `sampling` from the profile"
    )


@runtime_checkable
class Chain(Protocol):
    """What the gates need of a chain: one question in, one answer out."""

    def invoke(self, question: str) -> Any: ...


def load_chain_factory(spec: str) -> Callable[[], Any]:
    """Import ``module:attribute`` (the configured chain factory); ``UsageError`` if it fails."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"[tool.ragate.gates] chain: {spec!r} is not 'module:factory'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"[tool.ragate.gates] chain: cannot import {spec!r}: {exc}") from exc


def configured_chain_spec(root: Path) -> str:
    """The import string of ``[tool.ragate.gates] chain`` (default ``rag.chain:build_chain``)."""
    from ragate_core.project import tool_table

    return str(tool_table(root).get("gates", {}).get("chain", DEFAULT_CHAIN))


def configured_chain_factory(root: Path) -> Callable[[], Any]:
    """The factory named by ``[tool.ragate.gates] chain``, imported as the gates import it:
    with the folders of ``[tool.pytest.ini_options] pythonpath`` (relative to ``root``) on
    ``sys.path``, so ``ragate promote``/``ask``/``serve`` find the chain ``ragate init``'s
    ``pythonpath = ["."]`` lets pytest find."""
    _add_pytest_pythonpath(root)
    return load_chain_factory(configured_chain_spec(root))


def _add_pytest_pythonpath(root: Path) -> None:
    import sys

    from ragate_core.project import pytest_pythonpath

    for folder in reversed([str(f) for f in pytest_pythonpath(root)]):
        if folder not in sys.path:
            sys.path.insert(0, folder)


def code_hash(chain: Any, factory: str | None = None) -> str:
    """SHA-256 (first 16 hex digits) of the source files of the factory's module and of the
    module defining the chain's class: what identifies a chain that has no ``version``. A
    change outside those files (a prompt file, a model, a module they import) is not seen."""
    import hashlib
    import inspect
    import sys

    modules = {type(chain).__module__}
    if factory:
        modules.add(factory.partition(":")[0])
    digest = hashlib.sha256()
    for name in sorted(modules):
        module = sys.modules.get(name)
        try:
            path = inspect.getsourcefile(module) if module is not None else None
        except TypeError:  # a built-in module
            path = None
        if path:
            digest.update(name.encode() + b"\0" + Path(path).read_bytes())
    return digest.hexdigest()[:16]


def chain_version(chain: Any, factory: str | None = None) -> dict[str, str]:
    """What identifies a chain's answers: its ``version`` (method or attribute) and, after
    ``prepare()`` (which brings its index up to date), the hash of what it indexed.

    ``factory`` (the import string) is recorded too, so two chains without a version of
    their own never share cached answers.
    """
    if not callable(getattr(chain, "invoke", None)):
        raise TypeError(
            f"the factory returned {type(chain).__name__}, which has no invoke(question) method; "
            "return the chain object"
        )
    raw = getattr(chain, "version", None)
    if callable(raw):
        raw = raw()
    version = {k: str(v) for k, v in (raw or {}).items()}
    if factory:
        version.setdefault("factory", factory)
    if not raw:
        # No version of its own: the chain's code stands in, so an edited chain is never
        # answered from the cache of the old one.
        version["code"] = code_hash(chain, factory)
    if hasattr(chain, "prepare"):
        version["index"] = str(chain.prepare())
    return version
