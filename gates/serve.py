"""``ragate serve``: the configured chain as an HTTP service, every request traced in MLflow.

A small ASGI app (Starlette, FastAPI's toolkit, on uvicorn) rather than ``mlflow models
serve``: the service has to answer, trace and take feedback on the same trace id, and must mask personal data
before MLflow stores anything; a registered pyfunc model serves ``/invocations`` only.

Endpoints:

- ``POST /ask`` ``{"question": str}`` -> ``{"answer", "sources", "trace_id", "blocked"}``
- ``POST /feedback`` ``{"trace_id", "rating": "up"|"down", "correction"?, "comment"?}`` ->
  ``{"trace_id", "assessment_ids"}``: an MLflow assessment on the trace (feedback
  ``user_rating`` = True for up; a correction as the expectation ``expected_response``)
- ``GET /health`` -> ``{"status": "ok", "chain", "tracing", "experiment"}``

Bad input (invalid JSON, a missing or unknown field, a rating not up/down, an unknown
trace id, a body over :data:`MAX_BODY_BYTES`) gets HTTP 4xx with
``{"error": message, "field": name}`` and stores nothing.

Tracing (MLflow Tracing, into :func:`gates.tracking.tracking_uri`): one root span ``ask``
per request, with the masked question as input, the masked answer, sources, contexts,
``blocked``/``rail`` as output, token counts (``mlflow.chat.tokenUsage``) and the chain's
latency. A chain built on a LangChain runnable (``chain.runnable``, as ragate's
:class:`rag.chain.RagChain`: input rails, retrieval, generation, output rails) gets a
child span per step through ``mlflow.langchain.autolog``. A span processor masks every
string in every span's inputs and outputs (:func:`gates.engine.mask_text`, names
included) before export, so raw personal data never reaches the store; a step whose
output carries token counts (the generation) gets them as its ``mlflow.chat.tokenUsage``.
The root span is closed by a background thread (:meth:`Tracer.finish`): masking the
question and the answer and queueing the export happen after the response is sent.
``ragate serve`` masks in a child process (:class:`MaskerProcess`): the masker's spaCy
passes (about 10 ms a text) would otherwise hold the serving process's GIL while the next
requests wait for it. benchmarks/bench_serve.py measures what tracing still adds; the
chain's step spans are masked when they end, inside the request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

EXPERIMENT = "ragate-serve"
MAX_BODY_BYTES = 16 * 1024
MAX_REMEMBERED = 100_000  # trace ids kept in memory for feedback
MAX_PENDING = 1000  # answered requests whose spans wait for masking and export
FEEDBACK_NAME = "user_rating"
EXPECTATION_NAME = "expected_response"
# Where the default store keeps this experiment's artifacts (under the project).
ARTIFACTS_DIR = ".ragate/mlartifacts"


class RequestError(Exception):
    """Bad input from a client: HTTP ``status`` and the ``field`` it concerns."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


# Recent outputs of the masker: masking them again (the span processor sees the question
# the service already masked) is skipped. Bounded; insertion-ordered.
_MASKED: dict[str, None] = {}
_MASKED_MAX = 10_000
_MASKED_LOCK = threading.Lock()
MASK_TIMEOUT_S = 120.0


def _mask_texts(texts: list[str]) -> list[str]:
    """Each text masked (names included): the masker's own work, in whichever process."""
    from gates.engine import mask_text

    return [mask_text(text, names=True) for text in texts]


class MaskerProcess:
    """The masker in a child process (``spawn``), so its spaCy passes (about 10 ms a text)
    run off the serving process's GIL and do not hold up the requests answered meanwhile.

    Raw texts cross a pipe to the child and masked ones come back; nothing is stored on
    the way. Should the child fail, masking falls back to this process (slower, never raw).
    """

    def __init__(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self.failed = False
        # Started and its language model loaded now, not on the first user's request.
        self.mask_texts(["warm up, Jane Doe"])

    def mask_texts(self, texts: list[str]) -> list[str]:
        if not self.failed:
            try:
                return self._pool.submit(_mask_texts, texts).result(timeout=MASK_TIMEOUT_S)
            except Exception as exc:
                import logging

                self.failed = True
                logging.getLogger(__name__).error(
                    "the masking process failed (%s): masking in the service's own process",
                    type(exc).__name__,
                )
        return _mask_texts(texts)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# The service's masking process, when it runs one (create_app(mask_in_process=False)).
_MASKER: MaskerProcess | None = None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _rebuilt(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        return table.get(value, value)
    if isinstance(value, dict):
        return {k: _rebuilt(v, table) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rebuilt(v, table) for v in value]
    return value


def mask(value: Any) -> Any:
    """``value`` with personal data masked in every string, recursively (names included).

    All strings not masked before go to the masker in one call (the service's masking
    process when it runs one, else this process)."""
    raw = list(dict.fromkeys(s for s in _strings(value) if s not in _MASKED))
    if not raw:
        return _rebuilt(value, {})
    masker = _MASKER
    masked = masker.mask_texts(raw) if masker is not None else _mask_texts(raw)
    with _MASKED_LOCK:
        for text in masked:
            _MASKED[text] = None
        while len(_MASKED) > _MASKED_MAX:
            del _MASKED[next(iter(_MASKED))]
    return _rebuilt(value, dict(zip(raw, masked)))


def _mask_span(span: Any) -> None:
    """MLflow span processor: mask the span's inputs and outputs before export; a step
    whose output reports token counts its input did not (the generation) gets them as
    MLflow's ``mlflow.chat.tokenUsage``."""
    try:
        inputs, outputs = span.inputs, span.outputs
    except Exception:  # pragma: no cover - an unreadable span is left alone
        return
    if inputs is not None:
        span.set_inputs(mask(inputs))
    if outputs is not None:
        plain = _plain(outputs)
        span.set_outputs(mask(plain))
        usage = _usage(plain)
        if usage is not None and _usage(_plain(inputs)) is None:
            from mlflow.tracing.constant import SpanAttributeKey

            if span.get_attribute(SpanAttributeKey.CHAT_USAGE) is None:
                span.set_attribute(SpanAttributeKey.CHAT_USAGE, usage)


def _usage(value: Any) -> dict[str, int] | None:
    """MLflow's token usage from a step's output that has ``prompt_tokens`` and
    ``completion_tokens`` (whole numbers), else ``None``."""
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (prompt, completion)):
        return None
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}


def _plain(value: Any) -> Any:
    """A JSON-ready form of a step's output (LangChain steps return dataclasses, documents...)."""
    if isinstance(value, str | int | float | bool | type(None) | dict | list | tuple):
        return value
    to_row = getattr(value, "to_row", None)
    if callable(to_row):
        return to_row()
    return str(value)


class Tracer:
    """MLflow Tracing for the service: the store, the experiment, the masking processor."""

    def __init__(self, root: Path, experiment: str = EXPERIMENT) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow
        from mlflow.tracking import MlflowClient

        from gates.tracking import _default_uri, tracking_uri

        self.uri = tracking_uri(root)
        self.experiment = experiment
        mlflow.set_tracking_uri(self.uri)
        client = MlflowClient(tracking_uri=self.uri)
        if client.get_experiment_by_name(experiment) is None:
            # The default store keeps artifacts in the project (never <cwd>/mlruns).
            location = None
            if self.uri == _default_uri(root):
                location = (root / ARTIFACTS_DIR).resolve().as_uri()
            with contextlib.suppress(Exception):  # created meanwhile by another process
                client.create_experiment(experiment, artifact_location=location)
        self.experiment_id = mlflow.set_experiment(experiment).experiment_id
        mlflow.tracing.configure(span_processors=[_mask_span])
        # Trace ids this process issued (insertion-ordered, bounded): feedback on them needs
        # no store lookup, only a flush of the async export queue.
        self.issued: dict[str, None] = {}
        self._lock = threading.Lock()
        # One background thread closes the request spans (masking is the costly part).
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragate-trace")
        self._pending = threading.BoundedSemaphore(MAX_PENDING)

    def trace_steps(self, chain: Any) -> bool:
        """Span a LangChain-built chain's steps (``chain.runnable``); whether it did."""
        runnable = getattr(chain, "runnable", None)
        if runnable is None or not type(runnable).__module__.startswith("langchain"):
            return False
        import mlflow

        mlflow.langchain.autolog(log_traces=True, silent=True)
        return True

    def remember(self, trace_id: str) -> None:
        with self._lock:
            self.issued[trace_id] = None
            if len(self.issued) > MAX_REMEMBERED:
                del self.issued[next(iter(self.issued))]

    def known(self, trace_id: str) -> bool:
        """Whether the trace exists (issued here, or found in the store)."""
        import mlflow

        with self._lock:
            issued = trace_id in self.issued
        if issued:
            self.flush()
            return True
        try:
            return mlflow.get_trace(trace_id, silent=True) is not None
        except Exception:
            return False

    def finish(
        self, span: Any, question: str, answer: Any, elapsed_ms: float, spec: str, end_ns: int
    ) -> None:
        """Close ``span`` in the background: mask the question and the answer, record them,
        end it at ``end_ns``. At most :data:`MAX_PENDING`
        requests wait to be finished; a request beyond that waits here (back-pressure)."""
        self._pending.acquire()

        def work() -> None:
            try:
                # Question and answer masked in one call; the span processor then finds
                # every string masked already.
                inputs, outputs = mask([{"question": question}, _outputs(answer)])
                span.set_inputs(inputs)
                _record(span, answer, outputs, elapsed_ms, spec)
                span.end(end_time_ns=end_ns)
            except Exception as exc:  # never raw: the span is closed without the texts
                import logging

                logging.getLogger(__name__).error(
                    "trace %s: not recorded: %s", span.trace_id, type(exc).__name__
                )
                with contextlib.suppress(Exception):
                    span.set_inputs({"question": "[not recorded: masking failed]"})
                    span.end(outputs={"answer": "[not recorded]"}, status="ERROR", end_time_ns=end_ns)
            finally:
                self._pending.release()

        self._finisher.submit(work)

    def drain(self) -> None:
        """Wait until every span handed to :meth:`finish` so far has ended."""
        self._finisher.submit(lambda: None).result()

    def flush(self) -> None:
        import mlflow

        self.drain()
        mlflow.flush_trace_async_logging()


def _answer_of(chain: Any, question: str) -> Any:
    from gates.chain import Answer

    return Answer.of(chain.invoke(question))


class Service:
    """What the HTTP layer calls: ask and feedback, with tracing and masking."""

    def __init__(self, chain: Any, tracer: Tracer | None, spec: str = "") -> None:
        self.chain = chain
        self.tracer = tracer
        self.spec = spec or f"{type(chain).__module__}:{type(chain).__name__}"
        # A chain (llama.cpp, Chroma) is not assumed to be thread-safe: one call at a time.
        self._chain_lock = threading.Lock()
        self.steps_traced = tracer.trace_steps(chain) if tracer is not None else False

    def ask(self, question: str) -> dict[str, Any]:
        if self.tracer is None:
            with self._chain_lock:
                answer = _answer_of(self.chain, question)
            return _response(answer, None)
        import mlflow
        from mlflow.tracing.provider import safe_set_span_in_context

        # The root span is opened here (its trace id goes back to the client) and made the
        # active span, so the chain's step spans nest under it; it is closed, after masking,
        # by the tracer's background finisher (Tracer.finish), off the request's path.
        span = mlflow.start_span_no_context(
            name="ask", span_type="CHAIN", experiment_id=self.tracer.experiment_id
        )
        trace_id = span.trace_id
        start = time.perf_counter()
        try:
            with safe_set_span_in_context(span), self._chain_lock:
                answer = _answer_of(self.chain, question)
        except Exception as exc:
            # Recorded masked, and raised only after the span closed: an exception
            # leaving the span would be stored with its raw message and traceback.
            span.set_inputs({"question": mask(question)})
            span.set_attribute("ragate.error", f"{type(exc).__name__}: {mask(str(exc))}")
            span.end(status="ERROR")
            raise ChainFailed(trace_id, exc) from None
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        self.tracer.finish(span, question, answer, elapsed_ms, self.spec, time.time_ns())
        self.tracer.remember(trace_id)
        return _response(answer, trace_id)

    def feedback(self, trace_id: str, rating: str, correction: str | None, comment: str | None) -> list[str]:
        if self.tracer is None:
            raise RequestError(409, "trace_id", "tracing is off in this service: feedback has no trace")
        if not self.tracer.known(trace_id):
            raise RequestError(404, "trace_id", f"trace_id {trace_id!r}: no such trace in the store")
        import mlflow
        from mlflow.entities import AssessmentSource

        source = AssessmentSource(source_type="HUMAN", source_id="ragate-serve")
        ids = [
            mlflow.log_feedback(
                trace_id=trace_id,
                name=FEEDBACK_NAME,
                value=rating == "up",
                source=source,
                rationale=mask(comment) if comment else None,
            ).assessment_id
        ]
        if correction:
            ids.append(
                mlflow.log_expectation(
                    trace_id=trace_id, name=EXPECTATION_NAME, value=mask(correction), source=source
                ).assessment_id
            )
        return ids


class ChainFailed(Exception):
    """The chain raised while answering; the trace records it (masked)."""

    def __init__(self, trace_id: str | None, exc: Exception) -> None:
        super().__init__(f"the chain failed: {type(exc).__name__}")
        self.trace_id = trace_id


def _outputs(answer: Any) -> dict[str, Any]:
    return {
        "answer": answer.answer,
        "contexts": list(answer.contexts),
        "sources": list(answer.sources),
        "blocked": answer.blocked,
        "rail": answer.rail,
    }


def _record(span: Any, answer: Any, outputs: dict[str, Any], elapsed_ms: float, spec: str) -> None:
    """The answer on the ``ask`` span: ``outputs`` (masked), token counts as MLflow's
    ``mlflow.chat.tokenUsage``, latency."""
    from mlflow.tracing.constant import SpanAttributeKey

    span.set_outputs(outputs)
    attributes: dict[str, Any] = {
        "ragate.latency_ms": round(answer.latency_ms or elapsed_ms, 3),
        "ragate.call_ms": round(elapsed_ms, 3),
        "ragate.blocked": answer.blocked,
        "ragate.chain": spec,
    }
    if answer.prompt_tokens is not None and answer.completion_tokens is not None:
        attributes[SpanAttributeKey.CHAT_USAGE] = {
            "input_tokens": answer.prompt_tokens,
            "output_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        }
    span.set_attributes(attributes)


def _response(answer: Any, trace_id: str | None) -> dict[str, Any]:
    return {
        "answer": answer.answer,
        "sources": list(dict.fromkeys(answer.sources)),
        "trace_id": trace_id,
        "blocked": answer.blocked,
    }


def _parse(body: bytes, model: type) -> Any:
    """The validated request, or :class:`RequestError` naming the first bad field."""
    from pydantic import ValidationError

    if len(body) > MAX_BODY_BYTES:
        raise RequestError(413, "body", f"the body has {len(body)} bytes; at most {MAX_BODY_BYTES}")
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, "body", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(400, "body", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        raise RequestError(422, field, f"{field}: {error['msg']}") from None


def _models() -> tuple[type, type]:
    from typing import Annotated, Literal

    from pydantic import BaseModel, ConfigDict, StringConstraints

    text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: text

    class FeedbackRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        trace_id: text
        rating: Literal["up", "down"]
        correction: str | None = None
        comment: str | None = None

    return AskRequest, FeedbackRequest


def create_app(
    chain: Any,
    *,
    root: Path | None = None,
    tracing: bool = True,
    experiment: str = EXPERIMENT,
    spec: str = "",
    mask_process: bool = False,
) -> Any:
    """The ASGI app serving ``chain`` (tracing into ``root``'s tracking store unless off).

    Starlette (the ASGI toolkit FastAPI is built on) with plain routes: requests are
    validated here by pydantic models so every error names its field in one JSON shape.
    ``mask_process``: mask in a :class:`MaskerProcess` started with the app (``ragate
    serve`` does; in-process tests need not pay its start-up).
    """
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ragate_core.project import find_project_root

    tracer = Tracer(root or find_project_root(), experiment) if tracing else None
    service = Service(chain, tracer, spec)
    ask_model, feedback_model = _models()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        global _MASKER
        # Load the masker's language model now, not on the first user's request.
        if mask_process and tracer is not None:
            _MASKER = await run_in_threadpool(MaskerProcess)
        else:
            await run_in_threadpool(mask, "warm up, Jane Doe")
        try:
            yield
        finally:
            if tracer is not None:
                await run_in_threadpool(tracer.flush)
            masker, _MASKER = _MASKER, None
            if masker is not None:
                await run_in_threadpool(masker.close)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise RequestError(413, "body", f"the body has {length} bytes; at most {MAX_BODY_BYTES}")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise RequestError(413, "body", f"the body has over {MAX_BODY_BYTES} bytes")
        return body

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestError)
        return JSONResponse({"error": exc.message, "field": exc.field}, status_code=exc.status)

    async def chain_failed(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ChainFailed)
        return JSONResponse({"error": str(exc), "trace_id": exc.trace_id}, status_code=500)

    async def ask(request: Request) -> JSONResponse:
        body = _parse(await read_body(request), ask_model)
        return JSONResponse(await run_in_threadpool(service.ask, body.question))

    async def feedback(request: Request) -> JSONResponse:
        body = _parse(await read_body(request), feedback_model)
        ids = await run_in_threadpool(
            service.feedback, body.trace_id, body.rating, body.correction, body.comment
        )
        return JSONResponse({"trace_id": body.trace_id, "assessment_ids": ids})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "chain": service.spec,
                "tracing": tracer is not None,
                "experiment": experiment if tracer is not None else None,
                "steps_traced": service.steps_traced,
            }
        )

    app = Starlette(
        routes=[
            Route("/ask", ask, methods=["POST"]),
            Route("/feedback", feedback, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={RequestError: bad_request, ChainFailed: chain_failed},
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    """``ragate serve``: build the configured chain, then serve it until interrupted."""
    import uvicorn

    from gates.chain import configured_chain_factory, configured_chain_spec
    from ragate_core.project import find_project_root

    root = find_project_root()
    chain = configured_chain_factory(root)()
    app = create_app(
        chain,
        root=root,
        tracing=not args.no_tracing,
        experiment=args.experiment,
        spec=configured_chain_spec(root),
        mask_process=not args.mask_in_process,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, workers=1)
    return 0


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r}: a port is a number from 1 to 65535")
    return int(value)


def add_serve_parser(sub: Any) -> None:
    """The ``serve`` subcommand (registered by :func:`gates.cli.build_parser`)."""
    p = sub.add_parser("serve", help="serve the configured chain over HTTP, every request traced in MLflow")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="default: 8000")
    p.add_argument(
        "--experiment", default=EXPERIMENT, metavar="NAME", help=f"MLflow experiment (default: {EXPERIMENT})"
    )
    p.add_argument("--no-tracing", action="store_true", help="serve without MLflow traces (benchmarks)")
    p.add_argument(
        "--mask-in-process",
        action="store_true",
        help="mask in the serving process, not a child process (less memory, slower under load)",
    )
    p.add_argument(
        "--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug")
    )
    p.set_defaults(func=cmd_serve)
