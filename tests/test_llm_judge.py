"""The LLM-judge tier: the OpenAI-compatible judge, deepeval's LLM metrics as ragate
metrics, and ``judge: llm`` in a profile.

Fast tests talk to :class:`FakeJudgeServer`, a stub endpoint on 127.0.0.1 whose replies
the test chooses (valid JSON, garbage, a rejected response_format). The ``slow`` tests
start llama-cpp-python's OpenAI-compatible server with SmolLM2-135M on 127.0.0.1 and
run every LLM metric for real: a judge that small often returns nonsense, and the point
is that each case then comes back scored in [0, 1] or unscored with a reason, never NaN
and never missing. No test opens a connection anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

from gates.cache import NoCache
from gates.engine import GateEngine
from gates.metrics.base import MetricCase
from gates.metrics.llm_judge import (
    JudgeConfig,
    JudgeOutputError,
    OpenAICompatibleJudge,
    load_judge_config,
    parse_reply,
)
from gates.metrics.llm_metrics import SPECS, LLMJudgeMetric, llm_metric
from gates.profile import DatasetSpec, GateProfile, MetricGate, Sample, load_profile
from ragate_core.errors import UsageError

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "datasets" / "golden" / "qa.jsonl"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}

CASES = [
    MetricCase(
        "good",
        "How much is the Pro plan per month?",
        "The Pro plan costs $19 per user per month.",
        ("The Pro plan costs $19 per user per month. Business costs $39.",),
    ),
    MetricCase(
        "bad",
        "How much is the Pro plan per month?",
        "Pro is $45. Email jane.doe@example.com or call 555-201-7788, idiot.",
        ("The Pro plan costs $19 per user per month.",),
    ),
]


# --- guards ---------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def loopback_only() -> Iterator[None]:
    """Any connection to an address other than loopback fails the test."""
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            raise AssertionError(f"network access outside loopback attempted: {address!r}")
        return original(self, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        yield


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deepeval writes ./.deepeval: keep it in a temporary folder; no judge from the shell."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAGATE_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("RAGATE_JUDGE_MODEL", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a stub OpenAI-compatible endpoint -------------------------------------------------

Reply = Callable[[dict[str, Any]], "str | tuple[int, dict[str, Any]]"]


class FakeJudgeServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 that answers with ``reply(request body)``.

    ``reply`` returns the message content, or ``(status, error body)`` for an error
    response. Every request body is kept in ``requests``.
    """

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake-judge", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                out = server.reply(body)
                if isinstance(out, tuple):
                    self._send(*out)
                    return
                self._send(
                    200,
                    {
                        "id": f"fake-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake-judge"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": out},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeJudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def schema_of(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format") or {}
    return fmt.get("schema") or fmt.get("json_schema", {}).get("schema") or {}


def canned(body: dict[str, Any]) -> str:
    """Valid replies for every schema deepeval's four metrics ask for."""
    schema = schema_of(body)
    title, defs = schema.get("title"), set(schema.get("$defs", {}))
    replies = {
        "Truths": {"truths": ["The Pro plan costs $19 per user per month."]},
        "Claims": {"claims": ["Pro costs $45.", "Pro is billed per user."]},
        "Statements": {"statements": ["Pro is $45.", "Call us."]},
        "ExtractedPII": {"extracted_pii": ["jane.doe@example.com"]},
        "ReasonScore": {"reason": "polite", "score": 9},
    }
    if title in replies:
        return json.dumps(replies[title])
    if "FaithfulnessVerdict" in defs:  # one claim contradicted, one supported
        return json.dumps({"verdicts": [{"verdict": "no", "reason": "$45 vs $19"}, {"verdict": "yes"}]})
    if "AnswerRelevancyVerdict" in defs:
        return json.dumps({"verdicts": [{"verdict": "yes"}, {"verdict": "no", "reason": "off topic"}]})
    if "PIILeakageVerdict" in defs:
        return json.dumps({"verdicts": [{"verdict": "yes", "reason": "an e-mail address"}]})
    raise AssertionError(f"unexpected schema {title!r}")


def judge_for(url: str, **options: Any) -> OpenAICompatibleJudge:
    return OpenAICompatibleJudge(
        JudgeConfig(base_url=url, model=options.pop("model", "fake-judge"), **options)
    )


class Answer(BaseModel):
    answer: str


# --- configuration ---------------------------------------------------------------------


def write_pyproject(root: Path, judge: str) -> None:
    (root / "pyproject.toml").write_text(f"[tool.ragate]\nmodel = 'x'\n\n[tool.ragate.judge]\n{judge}\n")


def test_config_comes_from_pyproject_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(tmp_path, 'base_url = "http://127.0.0.1:9/v1"\nmodel = "m"\nmax_retries = 1\ntimeout = 5')
    config = load_judge_config(tmp_path)
    assert config == JudgeConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, timeout=5)
    monkeypatch.setenv("RAGATE_JUDGE_MODEL", "other")
    monkeypatch.setenv("RAGATE_JUDGE_BASE_URL", "http://127.0.0.1:10/v1")
    config = load_judge_config(tmp_path)
    assert (config.model, config.base_url) == ("other", "http://127.0.0.1:10/v1")


def test_no_judge_section_means_no_judge(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ragate]\nmodel = 'x'\n")
    assert load_judge_config(tmp_path) is None


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            'base_url = "http://h/v1"',
            "[tool.ragate.judge] model: missing (set it there or in RAGATE_JUDGE_MODEL)",
        ),
        (
            'base_url = "127.0.0.1:9"\nmodel = "m"',
            "[tool.ragate.judge] base_url: String should match pattern",
        ),
        ('base_url = "http://h/v1"\nmodel = "m"\nmax_retries = 99', "[tool.ragate.judge] max_retries:"),
        (
            'base_url = "http://h/v1"\nmodel = "m"\napi_key = "sk-1"',
            "[tool.ragate.judge] api_key: unknown key",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, table: str, expected: str) -> None:
    write_pyproject(tmp_path, table)
    with pytest.raises(UsageError) as info:
        load_judge_config(tmp_path)
    assert expected in str(info.value)
    assert str(tmp_path / "pyproject.toml") in str(info.value)


def test_parse_reply_accepts_fenced_json_and_explains_what_is_wrong() -> None:
    assert parse_reply('Sure!\n```json\n{"answer": "x"}\n```', Answer) == Answer(answer="x")
    for text, reason in [
        ("", "empty reply"),
        ("no json here", "no JSON object"),
        ('{"answer": ', "no JSON object"),
        ('{"answer": "x",}', "not valid JSON"),
        ('{"other": 1}', "does not match Answer: answer: Field required"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_reply(text, Answer)


# --- the judge against a stub server ---------------------------------------------------


def test_schema_is_sent_and_the_reply_is_validated() -> None:
    with FakeJudgeServer(lambda body: '{"answer": "yes"}') as server:
        judge = judge_for(server.url)
        assert judge.generate("Say yes.", schema=Answer) == Answer(answer="yes")
        assert judge.generate("Say yes.") == '{"answer": "yes"}'  # no schema: plain text
    first = server.requests[0]
    assert first["response_format"] == {"type": "json_object", "schema": Answer.model_json_schema()}
    assert first["temperature"] == 0.0 and first["model"] == "fake-judge"
    assert "response_format" not in server.requests[1]


def test_invalid_output_is_retried_a_bounded_number_of_times_then_raises() -> None:
    with FakeJudgeServer(lambda body: "I think the answer is yes") as server:
        judge = judge_for(server.url, max_retries=2)
        with pytest.raises(JudgeOutputError) as info:
            judge.generate("Say yes.", schema=Answer)
    assert len(server.requests) == 3  # one try and two retries, no more
    message = str(info.value)
    assert "fake-judge" in message and server.url in message
    assert "no valid Answer in 3 attempts (max_retries=2)" in message
    assert "no JSON object in the reply" in message and "I think the answer is yes" in message
    # Retries sample (a greedy retry would repeat the same reply) and say what was wrong.
    assert [r["temperature"] for r in server.requests] == [0.0, 0.7, 0.7]
    assert len({r["seed"] for r in server.requests}) == 3
    assert "previous reply was rejected" in server.requests[1]["messages"][0]["content"]


def test_a_retry_that_succeeds_returns_the_object() -> None:
    replies = iter(['{"answer": ', '{"answer": "yes"}'])
    with FakeJudgeServer(lambda body: next(replies)) as server:
        assert judge_for(server.url, max_retries=1).generate("Say yes.", schema=Answer).answer == "yes"
    assert len(server.requests) == 2


def test_async_generate_validates_and_retries_too() -> None:
    replies = iter(["garbage", '{"answer": "yes"}', "garbage", "garbage"])
    with FakeJudgeServer(lambda body: next(replies)) as server:
        judge = judge_for(server.url, max_retries=1)
        assert asyncio.run(judge.a_generate("Say yes.", schema=Answer)) == Answer(answer="yes")
        with pytest.raises(JudgeOutputError, match="in 2 attempts"):
            asyncio.run(judge.a_generate("Say yes.", schema=Answer))
    assert len(server.requests) == 4


def test_a_server_that_rejects_llama_cpp_style_json_gets_openai_json_schema() -> None:
    def reply(body: dict[str, Any]) -> str | tuple[int, dict[str, Any]]:
        if body.get("response_format", {}).get("type") == "json_object":
            return 400, {"error": {"message": "response_format.schema is not supported"}}
        return '{"answer": "yes"}'

    with FakeJudgeServer(reply) as server:
        judge = judge_for(server.url, max_retries=0)
        assert judge.generate("a", schema=Answer).answer == "yes"
        assert judge.generate("b", schema=Answer).answer == "yes"
    assert [r["response_format"]["type"] for r in server.requests] == [
        "json_object",
        "json_schema",
        "json_schema",
    ]
    assert server.requests[1]["response_format"]["json_schema"]["schema"] == Answer.model_json_schema()


# --- the metrics against a stub server -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("faithfulness", 0.5, "1 of 2 claims judged unsupported; first: 'Pro costs $45.': $45 vs $19"),
        ("answer_relevancy", 0.5, "1 of 2 statements judged off the question; first: 'Call us.': off topic"),
        ("toxicity", 0.1, "rubric: polite"),  # GEval 9/10 respectful = 0.1 chance of a violation
        ("pii", 1.0, "1 of 1 PII statements judged a leak; first: 'jane.doe@example.com'"),
    ],
)
def test_deepeval_scores_become_ragate_values_in_ragate_directions(
    name: str, value: float, reason: str
) -> None:
    with FakeJudgeServer(canned) as server:
        metric = LLMJudgeMetric(SPECS[name], judge_for(server.url, model="judge-a"))
        scores = metric.score_batch(CASES[1:])
    assert metric.name == f"{name}@llm" and metric.direction == SPECS[name].direction
    assert metric.version.endswith("+judge-judge-a")
    assert scores[0].value == pytest.approx(value)
    assert scores[0].reason.startswith(reason)
    assert scores[0].details["judge"] == "judge-a"


def test_the_judge_model_is_part_of_the_cache_key() -> None:
    from gates.metrics.base import judgment_key

    a = LLMJudgeMetric(SPECS["toxicity"], judge_for("http://127.0.0.1:9/v1", model="judge-a"))
    b = LLMJudgeMetric(SPECS["toxicity"], judge_for("http://127.0.0.1:9/v1", model="judge-b"))
    assert judgment_key(a, CASES[0]) != judgment_key(b, CASES[0])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_invalid_judge_output_makes_every_case_unscored_with_the_error(name: str) -> None:
    with FakeJudgeServer(lambda body: "```not json```") as server:
        scores = LLMJudgeMetric(SPECS[name], judge_for(server.url, max_retries=1)).score_batch(CASES)
    assert len(scores) == len(CASES)
    for score in scores:
        assert score.value is None and not score.scored
        assert score.reason.startswith("error: JudgeOutputError: judge fake-judge")
        assert "in 2 attempts" in score.reason


def test_an_unreachable_judge_unscores_the_batch_without_waiting_per_case() -> None:
    metric = LLMJudgeMetric(SPECS["toxicity"], judge_for(f"http://127.0.0.1:{free_port()}/v1", max_retries=0))
    start = time.perf_counter()
    scores = metric.score_batch(CASES * 5)
    assert time.perf_counter() - start < 10
    assert len(scores) == 10 and all(s.value is None for s in scores)
    assert all("JudgeUnavailableError" in s.reason and "RAGATE_JUDGE_BASE_URL" in s.reason for s in scores)


def test_registered_names_use_the_project_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    from gates.metrics.base import get_metric

    monkeypatch.setenv("RAGATE_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RAGATE_JUDGE_MODEL", "registry-judge")
    metric = get_metric("pii@llm")
    assert metric.name == "pii@llm" and "registry-judge" in metric.version


# --- selection in the profile -----------------------------------------------------------


class FakeChain:
    """A chain with canned answers (the gate engine only calls ``invoke``)."""

    def __init__(self) -> None:
        self.version = {"model": "fake"}

    def invoke(self, question: str) -> dict[str, Any]:
        return {"answer": "Pro is $19 per user per month.", "contexts": ["Pro costs $19."], "latency_ms": 5.0}


def profile(metrics: dict[str, MetricGate]) -> GateProfile:
    spec = DatasetSpec(name="golden", path=GOLDEN, sample=Sample(limit=2))
    return GateProfile(env="ci", datasets=[spec], metrics=metrics, source=Path("ci.yaml"))


def test_judge_llm_in_a_profile_makes_the_engine_use_the_llm_variant(tmp_path: Path) -> None:
    with FakeJudgeServer(canned) as server:
        write_pyproject(tmp_path, f'base_url = "{server.url}"\nmodel = "judge-a"')
        gates = {"toxicity": MetricGate(judge="llm"), "latency": MetricGate(threshold=60000)}
        engine = GateEngine(profile(gates), tmp_path, FakeChain, NoCache())
        assert engine.metrics["toxicity"].name == "toxicity@llm"
        assert engine.metrics["latency"].name == "latency"  # offline stays offline
        run = engine.run()
    assert len(run.results) == 2
    for result in run.results:
        assert result.scores["toxicity"].value == pytest.approx(0.1)
        assert "judge-a" in result.scores["toxicity"].metric_version
    assert all(s["response_format"]["schema"]["title"] == "ReasonScore" for s in server.requests)
    assert run.verdict.passed


def test_judge_llm_without_a_judge_fails_naming_the_profile_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ragate]\nmodel = 'x'\n")
    with pytest.raises(UsageError, match=r"ci.yaml: metrics.pii.judge: 'llm' needs a judge") as info:
        GateEngine(profile({"pii": MetricGate(judge="llm")}), tmp_path, FakeChain, NoCache())
    assert "[tool.ragate.judge]" in str(info.value) and "RAGATE_JUDGE_BASE_URL" in str(info.value)


def test_judge_llm_for_a_metric_without_an_llm_variant_fails_naming_the_key(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'base_url = "http://127.0.0.1:9/v1"\nmodel = "m"')
    with pytest.raises(UsageError, match=r"metrics.latency.judge: 'llm' is not available for 'latency'"):
        GateEngine(profile({"latency": MetricGate(judge="llm")}), tmp_path, FakeChain, NoCache())
    assert llm_metric("toxicity", tmp_path, "here").name == "toxicity@llm"


def test_profile_yaml_accepts_judge_llm_and_rejects_other_judges(tmp_path: Path) -> None:
    def write(judge: str) -> str:
        path = tmp_path / f"{judge}.yaml"
        path.write_text(
            f"env: ci\ndatasets:\n  - name: golden\n    path: {GOLDEN}\n"
            f"metrics:\n  toxicity:\n    judge: {judge}\n"
        )
        return str(path)

    assert load_profile(write("llm"), REPO).metrics["toxicity"].judge == "llm"
    with pytest.raises(UsageError, match=r"metrics.toxicity.judge: .*'offline' or 'llm'"):
        load_profile(write("gpt"), REPO)


# --- the real thing: llama-cpp-python's server with SmolLM2-135M on 127.0.0.1 -----------

# Small, so a metric call stays short on a shared 2-core machine; a reply cut here is
# invalid JSON, which is exactly the path the tier must survive.
REAL_MAX_TOKENS = 96
REAL_MODEL = "smollm2-135m-instruct"  # the alias the conftest server serves it under


@pytest.fixture(scope="session")
def real_judge(llama_server: str) -> OpenAICompatibleJudge:
    # No retries here (the retry path has its own tests): an invalid reply is unscored at once.
    return judge_for(llama_server, model=REAL_MODEL, max_retries=0, max_tokens=REAL_MAX_TOKENS, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SPECS))
def test_llm_metric_with_a_real_local_judge(real_judge: OpenAICompatibleJudge, name: str) -> None:
    scores = LLMJudgeMetric(SPECS[name], real_judge).score_batch(CASES)
    assert [s.metric for s in scores] == [f"{name}@llm"] * len(CASES)
    for score in scores:
        assert score.reason, score
        if score.value is None:  # the tiny judge failed: counted, with the error
            assert score.reason.startswith("error: "), score.reason
        else:
            assert 0.0 <= score.value <= 1.0 and score.value == score.value
            assert score.details["judge"] == REAL_MODEL


class Impossible(BaseModel):
    """Grammar-valid JSON that no reply can satisfy: the validator rejects every value."""

    answer: str

    @field_validator("answer")
    @classmethod
    def _never(cls, value: str) -> str:
        raise ValueError("this schema accepts no value")


@pytest.mark.slow
def test_a_real_judge_that_cannot_satisfy_the_schema_is_retried_then_fails(
    llama_server: str,
) -> None:
    # The server's grammar makes the reply JSON of the right shape (unless cut at
    # max_tokens); only the validation step can refuse it, checked here end to end.
    judge = judge_for(llama_server, model=REAL_MODEL, max_retries=1, max_tokens=32)
    with pytest.raises(JudgeOutputError, match=r"no valid Impossible in 2 attempts \(max_retries=1\)"):
        judge.generate("Say hello in JSON.", schema=Impossible)
    assert judge.calls == 2
