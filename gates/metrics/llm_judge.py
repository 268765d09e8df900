"""A deepeval judge for any OpenAI-compatible endpoint (llama.cpp server, vLLM, OpenAI...).

Configured in the project's pyproject::

    [tool.ragate.judge]
    base_url = "http://127.0.0.1:8080/v1"
    model = "smollm2-135m-instruct"
    api_key_env = "RAGATE_JUDGE_API_KEY"   # the name of the variable, never the key
    max_retries = 2
    timeout = 120

``RAGATE_JUDGE_BASE_URL`` and ``RAGATE_JUDGE_MODEL`` override the first two.

Every structured request asks for JSON constrained by the pydantic schema deepeval
passes (llama.cpp's ``{"type": "json_object", "schema": ...}``, else OpenAI's
``json_schema``, else a plain prompt, whichever the server accepts first), validates
the reply with that schema, and asks again at most ``max_retries`` times. A reply that
is still invalid raises :class:`JudgeOutputError`, which the LLM-tier metrics turn into
an unscored case: a judge's bad output is counted, never a guessed score.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from deepeval.models import DeepEvalBaseLLM
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragate_core.errors import UsageError
from ragate_core.project import tool_table

ENV_BASE_URL = "RAGATE_JUDGE_BASE_URL"
ENV_MODEL = "RAGATE_JUDGE_MODEL"
ResponseFormat = Literal["auto", "json_object", "json_schema", "none"]
# "auto" tries these in order and keeps the first the server does not reject.
_FORMATS: tuple[ResponseFormat, ...] = ("json_object", "json_schema", "none")
# Retries sample instead of decoding greedily: the same prompt at temperature 0 would
# only reproduce the same invalid reply.
RETRY_TEMPERATURE = 0.7


class JudgeError(RuntimeError):
    """The judge could not give a usable answer (a RuntimeError: deepeval treats a
    TypeError from ``generate`` as "no schema support" and would silently retry)."""


class JudgeOutputError(JudgeError):
    """The judge's replies stayed invalid for the schema after every retry."""


class JudgeUnavailableError(JudgeError):
    """The judge endpoint could not be reached or refused the request."""


class JudgeConfig(BaseModel):
    """``[tool.ragate.judge]``: which OpenAI-compatible endpoint judges, and how patiently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(min_length=1, pattern=r"^https?://")
    model: str = Field(min_length=1)
    api_key_env: str = "RAGATE_JUDGE_API_KEY"
    max_retries: int = Field(default=2, ge=0, le=10)
    timeout: float = Field(default=120.0, gt=0.0, le=3600.0)
    max_tokens: int = Field(default=512, ge=16, le=32768)
    response_format: ResponseFormat = "auto"


def load_judge_config(root: Path) -> JudgeConfig | None:
    """The judge configured for the project at ``root``, or None when none is.

    Raises :class:`UsageError` naming the key (in pyproject or the environment) when a
    judge is half configured or a value is invalid.
    """
    raw = tool_table(root).get("judge", {})
    if not isinstance(raw, dict):
        raise UsageError(f"{root / 'pyproject.toml'}: [tool.ragate] judge must be a table, got {raw!r}")
    table = dict(raw)
    sources = {key: f"{root / 'pyproject.toml'} [tool.ragate.judge] {key}" for key in table}
    for key, var in (("base_url", ENV_BASE_URL), ("model", ENV_MODEL)):
        if os.environ.get(var):
            table[key] = os.environ[var]
            sources[key] = f"environment {var}"
    if not table:
        return None
    try:
        return JudgeConfig(**table)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "judge"
            where = sources.get(key, f"{root / 'pyproject.toml'} [tool.ragate.judge] {key}")
            if err["type"] == "missing":
                var = {"base_url": ENV_BASE_URL, "model": ENV_MODEL}.get(key)
                problems.append(f"{where}: missing" + (f" (set it there or in {var})" if var else ""))
            elif err["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown key; known keys: {', '.join(JudgeConfig.model_fields)}")
            else:
                problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
        raise UsageError("invalid judge configuration:\n  " + "\n  ".join(problems)) from exc


def parse_reply(text: str | None, schema: type[BaseModel]) -> BaseModel:
    """The reply as an instance of ``schema``; ValueError says what is wrong with it."""
    if not text or not text.strip():
        raise ValueError("empty reply")
    body = text.strip()
    # Models that ignore the constraint wrap JSON in a code fence or a sentence.
    fenced = re.search(r"```(?:json)?\s*(.*?)```", body, re.DOTALL)
    if fenced:
        body = fenced.group(1).strip()
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        raise ValueError("no JSON object in the reply")
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ValueError(f"does not match {schema.__name__}: {where}: {first['msg']}") from exc


class OpenAICompatibleJudge(DeepEvalBaseLLM):
    """deepeval's judge interface over an OpenAI-compatible chat completions endpoint."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        # Which response_format the server accepts, once known (shared by all requests).
        fixed = config.response_format != "auto"
        self._format: ResponseFormat | None = config.response_format if fixed else None
        self._async_client: Any = None
        self.calls = 0  # requests sent, for benchmarks
        super().__init__(config.model)

    # --- deepeval's interface -------------------------------------------------------

    def load_model(self, *args: Any, **kwargs: Any) -> Any:
        from openai import OpenAI

        return OpenAI(**self._client_options())

    def get_model_name(self, *args: Any, **kwargs: Any) -> str:
        return self.config.model

    def generate(self, prompt: str, schema: type[BaseModel] | None = None, **kwargs: Any) -> Any:
        """The reply to ``prompt``: an instance of ``schema`` when one is given, else text."""
        try:
            if schema is None:
                return self._request(prompt, None, 0).text
            errors: list[str] = []
            for attempt in range(self.config.max_retries + 1):
                reply = self._request(self._retry_prompt(prompt, schema, errors), schema, attempt)
                try:
                    return parse_reply(reply.text, schema)
                except ValueError as exc:
                    errors.append(reply.describe(exc))
            raise self._invalid(schema, errors)
        except TypeError as exc:  # never let deepeval mistake a bug for "no schema support"
            raise JudgeError(f"judge {self.config.model}: {exc}") from exc

    async def a_generate(self, prompt: str, schema: type[BaseModel] | None = None, **kwargs: Any) -> Any:
        """:meth:`generate` on the asyncio client."""
        try:
            if schema is None:
                return (await self._a_request(prompt, None, 0)).text
            errors: list[str] = []
            for attempt in range(self.config.max_retries + 1):
                reply = await self._a_request(self._retry_prompt(prompt, schema, errors), schema, attempt)
                try:
                    return parse_reply(reply.text, schema)
                except ValueError as exc:
                    errors.append(reply.describe(exc))
            raise self._invalid(schema, errors)
        except TypeError as exc:
            raise JudgeError(f"judge {self.config.model}: {exc}") from exc

    def supports_structured_outputs(self) -> bool | None:
        return self._format in ("json_object", "json_schema") if self._format else None

    def supports_json_mode(self) -> bool | None:
        return self.supports_structured_outputs()

    # --- the requests ---------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        cfg = self.config
        # A local server needs no key, but the client insists on one.
        api_key = os.environ.get(cfg.api_key_env) or "not-needed"
        # The client's own retries cover transport errors; invalid output is retried here.
        return {
            "base_url": cfg.base_url,
            "api_key": api_key,
            "max_retries": cfg.max_retries,
            "timeout": cfg.timeout,
        }

    def _retry_prompt(self, prompt: str, schema: type[BaseModel], errors: list[str]) -> str:
        if not errors:
            return prompt
        fields = ", ".join(schema.model_fields)
        return (
            f"{prompt}\n\nYour previous reply was rejected: {errors[-1][:300]}\n"
            f"Reply with one JSON object with the keys: {fields}. No other text."
        )

    def _body(
        self, prompt: str, schema: type[BaseModel] | None, attempt: int, fmt: ResponseFormat
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.config.max_tokens,
            "temperature": 0.0 if attempt == 0 else RETRY_TEMPERATURE,
            "seed": attempt,
        }
        if schema is not None and fmt == "json_object":  # llama.cpp server, Anyscale, ...
            body["response_format"] = {"type": "json_object", "schema": schema.model_json_schema()}
        elif schema is not None and fmt == "json_schema":  # OpenAI, vLLM, ...
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
            }
        return body

    def _formats(self, schema: type[BaseModel] | None) -> tuple[ResponseFormat, ...]:
        if schema is None:
            return ("none",)
        return (self._format,) if self._format else _FORMATS

    def _request(self, prompt: str, schema: type[BaseModel] | None, attempt: int) -> _Reply:
        import openai

        last: Exception | None = None
        for fmt in self._formats(schema):
            self.calls += 1
            try:
                out = self.model.chat.completions.create(**self._body(prompt, schema, attempt, fmt))
            except openai.APIStatusError as exc:
                if self._format is None and _rejects_format(exc):
                    last = exc
                    continue
                raise self._unavailable(exc) from exc
            except openai.APIError as exc:  # connection refused, timeout, ...
                raise self._unavailable(exc) from exc
            if schema is not None and self._format is None:
                self._format = fmt
            return _Reply.of(out, self.config.max_tokens)
        raise self._unavailable(last or RuntimeError("no response format accepted"))

    async def _a_request(self, prompt: str, schema: type[BaseModel] | None, attempt: int) -> _Reply:
        import openai

        if self._async_client is None:
            self._async_client = openai.AsyncOpenAI(**self._client_options())
        last: Exception | None = None
        for fmt in self._formats(schema):
            self.calls += 1
            try:
                body = self._body(prompt, schema, attempt, fmt)
                out = await self._async_client.chat.completions.create(**body)
            except openai.APIStatusError as exc:
                if self._format is None and _rejects_format(exc):
                    last = exc
                    continue
                raise self._unavailable(exc) from exc
            except openai.APIError as exc:
                raise self._unavailable(exc) from exc
            if schema is not None and self._format is None:
                self._format = fmt
            return _Reply.of(out, self.config.max_tokens)
        raise self._unavailable(last or RuntimeError("no response format accepted"))

    def _invalid(self, schema: type[BaseModel], errors: list[str]) -> JudgeOutputError:
        return JudgeOutputError(
            f"judge {self.config.model} at {self.config.base_url} gave no valid {schema.__name__} "
            f"in {len(errors)} attempts (max_retries={self.config.max_retries}); last: {errors[-1]}"
        )

    def _unavailable(self, exc: Exception) -> JudgeUnavailableError:
        return JudgeUnavailableError(
            f"judge {self.config.model} at {self.config.base_url} failed: {type(exc).__name__}: {exc}; "
            f"check [tool.ragate.judge] base_url or {ENV_BASE_URL}"
        )


def _rejects_format(exc: Exception) -> bool:
    """Whether an error response says the server does not accept this ``response_format``.

    llama-cpp-python answers 500 with its validation error, OpenAI-style servers 400/422.
    """
    return getattr(exc, "status_code", None) in (400, 422, 500) and "response_format" in str(exc)


class _Reply:
    """The text of one completion and whether it was cut at ``max_tokens``."""

    def __init__(self, text: str, truncated: bool, max_tokens: int) -> None:
        self.text, self.truncated, self.max_tokens = text, truncated, max_tokens

    @classmethod
    def of(cls, out: Any, max_tokens: int) -> _Reply:
        choice = out.choices[0] if getattr(out, "choices", None) else None
        if choice is None:
            return cls("", False, max_tokens)
        return cls(choice.message.content or "", choice.finish_reason == "length", max_tokens)

    def describe(self, exc: Exception) -> str:
        cut = f" (cut at max_tokens={self.max_tokens})" if self.truncated else ""
        return f"{exc}{cut}; reply {self.text[:160]!r}"
