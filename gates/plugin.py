"""ragate's pytest plugin: ``pytest -m gate --gate-env {ci,staging,prod}``.

The gate suites in ``quality/`` ask for two fixtures: ``gate_case`` (one item per case,
parametrized here with the case ids of the selected profile) and ``gate_metric`` (one
aggregate item per metric). Both read a :class:`~gates.engine.GateRun` computed once
per session, before the first gate item runs; the items only assert.

Per-case and per-gate results travel to the controller on ``item.user_properties``,
so the summary table, the reports and the tracking run are built in one place, also
under pytest-xdist (workers write no files).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gates import ENVIRONMENTS
from gates.chain import ChainBuildError
from gates.spark import SparkUnavailable  # stdlib-only module: pytest starts as fast
from ragate_core.errors import UsageError

if TYPE_CHECKING:  # pydantic, yaml and numpy load only when gates run: pytest starts fast
    from gates.profile import GateProfile
    from gates.verdict import GateResult

ENV_VARIABLE = "RAGATE_GATE_ENV"
CASE_PROPERTY = "ragate.case"
GATES_PROPERTY = "ragate.gates"
RUN_PROPERTY = "ragate.run"


@dataclass
class GateSession:
    """Session state of the plugin (kept in ``config.stash``)."""

    env: str
    profile_arg: str
    report_dir: Path
    use_cache: bool
    root: Path
    profile: GateProfile | None = None
    case_list: list[Any] | None = None  # gates.engine.Case, loaded and validated at start
    sampled: list[str] = field(default_factory=list)  # what each dataset's sample left out
    run: Any = None  # GateRun, built on first use
    # A gate run was asked for (not --collect-only, not a worker): it must end with a report.
    intended: bool = False
    # Why the run stopped before a verdict (a usage error found while gating).
    stopped: str = ""
    # Filled from test reports on the controller:
    gates: dict[str, GateResult] = field(default_factory=dict)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)
    gate_items: int = 0
    report_paths: list[Path] = field(default_factory=list)
    report: Any = None  # the GateReport, built at session finish
    reporters: list[str] | None = None  # --gate-reports (None: gates.reporters.DEFAULT_REPORTERS)
    engine: str | None = None  # --gate-engine (None: [tool.ragate.gates] engine, default local)
    # Under pytest-xdist: the folder where workers hand each other their shares of the run
    # (made by the controller, passed to each worker in its workerinput).
    shard_dir: Path | None = None
    cache: Any = None  # gates.cache.Cache or NoCache, opened on first use
    track: bool = True
    tracker: Any = None  # gates.tracking.TrackingProcess: MLflow started while the gates run
    tracking: str = ""
    passed: bool | None = None

    def load_profile(self) -> GateProfile:
        if self.profile is None:
            from gates.profile import load_profile

            self.profile = load_profile(self.profile_arg, self.root)
            _check_judges(self.profile, self.root)
            self.env = self.profile.env  # a --gate-profile file names its own environment
            if self.reporters is None:  # --gate-reports wins over the profile's reports
                self.reporters = self.profile.reports
        return self.profile

    def load_cases(self) -> list[Any]:
        """The profile's cases, read and validated once (``UsageError`` names file:line)."""
        if self.case_list is None:
            from gates.engine import load_cases

            try:
                cache = self.open_cache()
            except UsageError:  # a damaged cache: said once, where the run needs it (gate_run)
                cache = None
            self.case_list = load_cases(self.load_profile(), self.root, cache=cache, sampled=self.sampled)
        return self.case_list

    def cache_dir(self) -> Path:
        from ragate_core.project import tool_table

        folder = Path(str(tool_table(self.root).get("cache_dir", ".ragate/cache")))
        return folder if folder.is_absolute() else self.root / folder

    def open_cache(self) -> Any:
        """The generation/judgment cache (``NoCache`` under ``--gate-no-cache``)."""
        if self.cache is None:
            from gates.cache import Cache, NoCache

            if self.use_cache:
                folder = self.cache_dir()
                folder.mkdir(parents=True, exist_ok=True)
                self.cache = Cache(folder / "gates.sqlite")
            else:
                self.cache = NoCache()
        return self.cache


SESSION_KEY = pytest.StashKey[GateSession]()


def _gate_env(value: str) -> str:
    if value not in ENVIRONMENTS:
        raise pytest.UsageError(f"--gate-env: {value!r} is not one of {', '.join(ENVIRONMENTS)}")
    return value


ENGINES = ("local", "spark")


def _gate_engine(value: str) -> str:
    if value not in ENGINES:
        raise pytest.UsageError(f"--gate-engine: {value!r} is not one of {', '.join(ENGINES)}")
    return value


def _configured_engine(root: Path) -> str:
    """``[tool.ragate.gates] engine`` (default local), checked where it is written."""
    from ragate_core.project import tool_table

    value = tool_table(root).get("gates", {}).get("engine", "local")
    if value not in ENGINES:
        raise UsageError(
            f"{root / 'pyproject.toml'} [tool.ragate.gates] engine: {value!r} "
            f"is not one of {', '.join(ENGINES)}"
        )
    return str(value)


def _refuse_spark_under_xdist(config: pytest.Config, session: GateSession) -> None:
    """The Spark engine under ``pytest -n N`` is a usage error: Spark already spreads the work
    over its executors, and every xdist worker would start its own session (a JVM and
    Python workers each) on the same cores."""
    # xdist turns -n N (and -n auto) into N --tx entries before pytest_configure.
    workers = getattr(config.option, "numprocesses", None) or len(getattr(config.option, "tx", None) or [])
    if session.engine != "spark" or not workers or hasattr(config, "workerinput"):
        return
    where = (
        "--gate-engine spark"
        if config.getoption("gate_engine")
        else f'{session.root / "pyproject.toml"} [tool.ragate.gates] engine = "spark"'
    )
    raise UsageError(
        f"{where} cannot run under pytest-xdist (-n {workers}): Spark already spreads generation "
        "and scoring over its executors, and each xdist worker would start its own Spark session. "
        "Drop -n (set the Spark cores with [tool.ragate.spark] master), or keep -n with "
        "--gate-engine local"
    )


def _reporter_list(value: str) -> list[str]:
    from gates.reporters import parse_reporters

    try:
        return parse_reporters(value)
    except UsageError as exc:
        raise pytest.UsageError(f"--gate-reports: {exc}") from exc


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ragate", "ragate quality gates")
    group.addoption(
        "--gate-env",
        type=_gate_env,
        default=None,
        help=f"threshold profile to gate with: {', '.join(ENVIRONMENTS)} (default: ${ENV_VARIABLE} or ci)",
    )
    group.addoption(
        "--gate-profile", default=None, metavar="FILE.yaml", help="a profile file instead of --gate-env's"
    )
    group.addoption(
        "--gate-report",
        default="reports",
        metavar="DIR",
        help="where gate-report.json/.md/.junit.xml/.html go (default: reports)",
    )
    group.addoption(
        "--gate-reports",
        type=_reporter_list,
        default=None,
        metavar="NAMES",
        help="comma-separated reporters: json, markdown, junit, html, or one a package adds "
        "(default: json,markdown,junit,html)",
    )
    group.addoption(
        "--gate-no-cache", action="store_true", help="ignore and do not write the generation/judgment cache"
    )
    group.addoption(
        "--gate-engine",
        type=_gate_engine,
        default=None,
        help="where answers are generated and scored: local (default) or spark "
        "(a Spark session from [tool.ragate.spark]; default: [tool.ragate.gates] engine)",
    )
    group.addoption(
        "--gate-no-track",
        action="store_true",
        help="do not log the run to MLflow (default: $MLFLOW_TRACKING_URI or .ragate/mlflow.db)",
    )


def _selects_gates(config: pytest.Config) -> bool:
    markexpr = config.getoption("markexpr", "") or ""
    return bool(re.search(r"(?<!not )\bgate\b", markexpr))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``pytest -m gate`` over the configured testpaths runs gate items only: a test module
    that cannot hold one (its code, outside strings and comments, has no ``mark.gate``, no
    ``gate_case``/``gate_metric`` fixture, no ``gates.suite`` and no star import) is not
    imported, so a warm gate run does not pay for importing every unit test of the project.
    Named paths, and any other ``-m``, are collected as pytest always does."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    markexpr = (config.getoption("markexpr", "") or "").strip()
    if markexpr != "gate" or config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return None
    try:
        text = collection_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not any(sign in text for sign in _GATE_SIGNS):
        return True
    # A sign inside a string (a pytester source) or a comment does not make a gate module:
    # importing such unit tests would load their libraries (hypothesis, mlflow) for nothing.
    return None if _GATE_CODE.search(_code_only(text)) else True


_GATE_SIGNS = ("mark.gate", "gate_case", "gate_metric", "gates.suite", "import *")
_GATE_CODE = re.compile(r"\bmark\s*\.\s*gate|\bgate_case|\bgate_metric|\bgates\s*\.\s*suite\b|\bimport\s+\*")


def _code_only(text: str) -> str:
    """``text`` without its string literals and comments (the whole text when it does not
    tokenize: a module pytest would fail to import is collected, so its error shows)."""
    import io
    import tokenize

    skip = {tokenize.STRING, tokenize.COMMENT, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return text
    return " ".join(token.string for token in tokens if token.type not in skip)


def _is_ragate_project(folder: Path) -> bool:
    import tomllib

    pyproject = folder / "pyproject.toml"
    try:
        return pyproject.is_file() and "ragate" in tomllib.loads(pyproject.read_text("utf-8")).get("tool", {})
    except (OSError, ValueError):
        return False


def _project_root(config: pytest.Config) -> tuple[Path, str]:
    """The ragate project, found from the configuration where pytest was invoked, never
    from where an option's path points; and a problem to report when pytest's rootdir
    (hence the ``[tool.pytest.ini_options]`` it read) belongs elsewhere.

    pytest picks its rootdir before plugins load: in ``--gate-profile /elsewhere/p.yaml``
    it takes the path for a test path and roots the run in ``/elsewhere``.
    """
    from ragate_core.project import find_project_root

    here = find_project_root(Path(config.invocation_params.dir))
    rooted = find_project_root(Path(str(config.rootpath)))
    if not _is_ragate_project(here) or rooted == here:
        return (here if _is_ragate_project(here) else rooted), ""
    problem = (
        f"pytest chose {config.rootpath} as its rootdir (config file: {config.inipath or 'none'}), "
        f"but the ragate project here is {here}: its [tool.pytest.ini_options] and [tool.ragate] "
        "would not be the ones read. This happens when an option's path outside the project is "
        "written as a separate argument (--gate-profile PATH, --gate-report DIR): write "
        f"--gate-profile=PATH / --gate-report=DIR, or add --rootdir={here}"
    )
    return here, problem


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gate: a quality gate item (selected with -m gate)")
    env = config.getoption("gate_env") or os.environ.get(ENV_VARIABLE) or "ci"
    if env not in ENVIRONMENTS:
        raise pytest.UsageError(f"${ENV_VARIABLE}: {env!r} is not one of {', '.join(ENVIRONMENTS)}")
    root, problem = _project_root(config)
    report_dir = Path(config.getoption("gate_report"))
    session = GateSession(
        env=env,
        profile_arg=config.getoption("gate_profile") or env,
        report_dir=report_dir
        if report_dir.is_absolute()
        else Path(config.invocation_params.dir) / report_dir,
        use_cache=not config.getoption("gate_no_cache"),
        track=not config.getoption("gate_no_track"),
        engine=config.getoption("gate_engine"),
        reporters=config.getoption("gate_reports"),
        root=root,
    )
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(GateReporter(config), "ragate-gate-reporter")
    if not _gates_requested(config):
        return
    is_worker = hasattr(config, "workerinput")
    listing = config.option.collectonly or config.option.help or config.option.version
    if not is_worker and not listing:
        # Whatever happens next (a usage error, a crash, SIGKILL), the previous run's
        # verdict must not stay in place looking like this run's.
        session.intended = True
        _remove_old_reports(session.report_dir)
        _stop_on_sigterm(config)
    try:
        if problem and not is_worker:
            raise UsageError(problem)
        session.load_profile()  # validated at start: a bad profile stops the run at once
        session.engine = session.engine or _configured_engine(session.root)  # H4: spark engine
        _refuse_spark_under_xdist(config, session)  # H5
        if not listing:
            session.load_cases()  # and so does a bad dataset row or a duplicate case id
        if session.track and not is_worker and not listing and session.root is not None:
            from gates.tracking import TrackingProcess

            session.tracker = TrackingProcess(session.root)
    except UsageError as exc:
        session.stopped = str(exc)
        raise pytest.UsageError(str(exc)) from exc


def _check_judges(profile: GateProfile, root: Path) -> None:
    """``metrics.<name>.judge: llm`` needs a configured judge: checked at start with the rest
    of the profile (``UsageError`` naming the key), not after collection."""
    llm = [name for name, gate in profile.metrics.items() if gate.judge == "llm"]
    if llm:
        from gates.metrics.llm_metrics import llm_metric

        for name in llm:
            llm_metric(name, root, where=f"{profile.source}: metrics.{name}.judge")


def _remove_old_reports(directory: Path) -> None:
    """Remove the previous run's ``gate-report.*`` files (every reporter's) from ``directory``."""
    if not directory.is_dir():
        return
    for path in directory.glob("gate-report.*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                path.unlink()


_SIGTERM_KEY = pytest.StashKey[Any]()


def _stop_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (a cancelled CI job) stops the run as Ctrl-C does: the FAIL report gets written."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    config.stash[_SIGTERM_KEY] = signal.signal(signal.SIGTERM, interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_SIGTERM_KEY, None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
    session = config.stash.get(SESSION_KEY, None)
    if session is not None and session.tracker is not None:
        session.tracker.close()
    if session is not None and session.shard_dir is not None and not hasattr(config, "workerinput"):
        import shutil

        shutil.rmtree(session.shard_dir, ignore_errors=True)
    if session is None or not session.intended or session.report_paths:
        return
    # No verdict was reached (a usage error, a collection error, nothing gated): the
    # report says FAIL rather than nothing, so a summary step has something true to post.
    from gates.report import build_report, write_reports

    run_info: dict[str, Any] = {"stopped": session.stopped or "the run stopped before any gate decided"}
    if session.profile is not None:
        run_info |= {
            "profile": str(session.profile.source),
            "profile_sha256": session.profile.sha256,
            # Every gated metric then counts as missing: the report fails closed.
            "thresholds": {name: 0.0 for name in session.profile.metrics},
        }
    with contextlib.suppress(Exception):  # the error already printed is what matters here
        report = build_report(session.env, {}, {}, run_info)
        session.report_paths = write_reports(report, session.report_dir, session.reporters)


def _session(config: pytest.Config) -> GateSession:
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gate_case" not in metafunc.fixturenames:
        return
    from gates.engine import load_cases

    session = _session(metafunc.config)
    metric = _module_metric(metafunc.module)
    try:
        if _gates_requested(metafunc.config):
            cases = session.load_cases()
        else:  # only the ids, for the deselection count: no need to mask the questions
            cases = load_cases(session.load_profile(), session.root, mask=False)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from exc
    cases = [c for c in cases if metric in c.metrics]
    metafunc.parametrize("gate_case", [c.id for c in cases], ids=[c.id for c in cases], indirect=True)


def _module_metric(module: Any) -> str:
    metric = getattr(module, "METRIC", None)
    if not isinstance(metric, str):
        raise pytest.UsageError(f"{module.__file__}: a gate suite must set METRIC = '<metric name>'")
    return metric


@pytest.fixture(scope="session")
def gate_run(request: pytest.FixtureRequest) -> Any:
    """The session's :class:`~gates.engine.GateRun` (generation and scoring happen here, once)."""
    session = _session(request.config)
    if session.run is None:
        try:
            session.run = _compute_run(request.config, session)
        except UsageError as exc:
            # A usage error found while gating (no judge configured, a damaged cache, a
            # chain factory that does not import): one message and exit 4, not an error
            # and a traceback per gate item.
            # The summary section says what (GateReport.stopped); the exit line says where.
            session.stopped = str(exc)
            pytest.exit(
                "ragate: a usage error stopped the gate run (its message is in the ragate summary above)",
                returncode=pytest.ExitCode.USAGE_ERROR,
            )
        except (SparkUnavailable, ChainBuildError) as exc:  # master unreachable, factory raised: exit 1
            session.stopped = str(exc)
            pytest.exit(f"ragate: {exc}", returncode=pytest.ExitCode.TESTS_FAILED)
    return session.run


def _compute_run(config: pytest.Config, session: GateSession) -> Any:
    from filelock import FileLock

    from gates.chain import configured_chain_factory, configured_chain_spec
    from gates.engine import GateEngine

    cache_dir = session.cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = session.open_cache()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def progress(message: str) -> None:
        if reporter is not None and not hasattr(config, "workerinput"):
            # This runs inside a fixture, under output capture: unsuspended, the line would
            # land unseen in the first gate item's captured output.
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                reporter.write_line(f"ragate: {message}")

    for line in session.sampled:
        progress(line)
    engine = GateEngine(
        session.load_profile(),
        session.root,
        # Imported when the chain is first needed: a run whose answers are all cached (with
        # [tool.ragate.gates] chain_version declared) never imports the chain's module.
        lambda: configured_chain_factory(session.root)(),
        cache,
        progress,
        chain_spec=configured_chain_spec(session.root),
        cases=session.load_cases(),
        engine=session.engine or _configured_engine(session.root),
    )
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get(SHARDS_INPUT):
        from gates.engine import run_sharded

        # Each worker answers and scores its share, then all read every share: no worker
        # waits on a lock while another generates. Only preparing the chain (its index) is
        # serialised, so two workers never build one index at once.
        return run_sharded(
            engine,
            session.load_cases(),
            Path(workerinput[SHARDS_INPUT]),
            _worker_index(workerinput),
            int(workerinput.get("workercount") or 1),
            prepare_lock=FileLock(str(cache_dir / "prepare.lock")),
        )
    # Separate runs sharing one cache (two CI jobs) take turns; the second reads the first's answers.
    with FileLock(str(cache_dir / "gates.lock")):
        return engine.run()


SHARDS_INPUT = "ragate_shards"


def _worker_index(workerinput: dict[str, Any]) -> int:
    digits = re.sub(r"\D", "", str(workerinput.get("workerid", "gw0")))
    return int(digits or 0)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist (controller): give every worker the folder where they share their results."""
    session = node.config.stash.get(SESSION_KEY, None)
    if session is None or not _gates_requested(node.config):
        return
    if session.shard_dir is None:
        import tempfile

        session.shard_dir = Path(tempfile.mkdtemp(prefix="ragate-shards-"))
    node.workerinput[SHARDS_INPUT] = str(session.shard_dir)


@dataclass(frozen=True)
class CaseCheck:
    """What a per-case gate item asserts."""

    metric: str
    case_id: str
    question: str
    answer: str | None
    value: float | None
    threshold: float
    direction: str
    reason: str
    passed: bool
    # The metric's aggregate gate passes anyway: this case's failure is within its rules.
    tolerated: bool

    def explain(self) -> str:
        op = ">=" if self.direction == "higher_is_better" else "<="
        value = "unscored" if self.value is None else f"{self.value:.3f}"
        return (
            f"{self.metric} for case {self.case_id}: {value} (needs {op} {self.threshold:g})\n"
            f"  question: {self.question}\n  answer:   {self.answer}\n  reason:   {self.reason}"
        )


@pytest.fixture
def gate_case(request: pytest.FixtureRequest, gate_run: Any) -> CaseCheck:
    """One case of the running gate suite's metric, with its score and threshold."""
    from gates.metrics.base import get_metric, passes

    metric_name = _module_metric(request.module)
    result = gate_run.case(request.param)
    metric = get_metric(metric_name)
    score = result.scores.get(metric_name)
    value = score.value if score else None
    threshold = gate_run.thresholds[metric_name]
    passed = value is not None and passes(metric, value, threshold)
    record = result.to_dict()  # what reports hold: masked
    check = CaseCheck(
        metric=metric_name,
        case_id=result.case.id,
        question=result.case.question,  # masked where the case entered
        answer=record["answer"],
        value=value,
        threshold=threshold,
        direction=metric.direction,
        reason=record["reasons"][metric_name] if score else (record["error"] or "not scored"),
        passed=passed,
        tolerated=all(g.passed for g in gate_run.gates_for(metric_name)),
    )
    record["metric"] = metric_name
    request.node.user_properties.append((CASE_PROPERTY, record))
    return check


@dataclass(frozen=True)
class MetricCheck:
    """What an aggregate gate item asserts: every rule of one metric."""

    metric: str
    gates: tuple[GateResult, ...]
    flaky: tuple[str, ...]

    @property
    def passed(self) -> bool:
        from gates.results import decide

        return decide(self.gates)

    def explain(self) -> str:
        # Failing rules first: pytest's one-line summary shows the first line.
        ordered = sorted(self.gates, key=lambda g: g.passed)
        lines = [g.describe() for g in ordered] or [f"no gate rules ran for {self.metric}"]
        if self.flaky:
            lines.append(f"flaky across samples: {', '.join(self.flaky)}")
        return "\n".join(lines)


@pytest.fixture
def gate_metric(request: pytest.FixtureRequest, gate_run: Any) -> MetricCheck:
    """The aggregate gate results of the running suite's metric."""
    metric_name = _module_metric(request.module)
    if metric_name not in gate_run.profile.metrics:
        pytest.skip(f"{metric_name} is not gated in profile {gate_run.profile.env}")
    gates = tuple(gate_run.gates_for(metric_name))
    request.node.user_properties.append((GATES_PROPERTY, [g.to_dict() for g in gates]))
    request.node.user_properties.append((RUN_PROPERTY, _run_info(gate_run)))
    return MetricCheck(metric_name, gates, tuple(gate_run.flaky.get(metric_name, [])))


def _run_info(run: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from gates.metrics.base import get_metric
    from gates.reporters import metric_units

    return {
        "directions": {name: get_metric(name).direction for name in run.thresholds},
        "env": run.profile.env,
        "profile": str(run.profile.source),
        "profile_sha256": run.profile.sha256,
        "chain_version": run.chain_version,
        "thresholds": run.thresholds,
        # Units of the metrics that have one (latency ms, cost currency) for the reports.
        "stats": asdict(run.stats) | {"units": metric_units(run.profile)},
        "flaky": run.flaky,
        "champion": run.champion.to_dict() if getattr(run, "champion", None) else None,
    }


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _gates_requested(config):
        # Gate items call the model: they run when asked for (-m gate, --gate-env,
        # --gate-profile, $RAGATE_GATE_ENV), not as a side effect of a plain `pytest`.
        skipped = [item for item in items if item.get_closest_marker("gate")]
        if skipped:
            config.hook.pytest_deselected(items=skipped)
            items[:] = [item for item in items if not item.get_closest_marker("gate")]
    _session(config).gate_items = sum(1 for item in items if item.get_closest_marker("gate"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run of gate items only, none of which imported hypothesis, does not need hypothesis'
    pytest plugin: its terminal summary imports hypothesis (~1 s) in any run, to report
    examples no gate item can have. A warm gate run loads nothing a cache hit does not need."""
    import sys

    items = session.items
    if "hypothesis" in sys.modules or not items or not all(i.get_closest_marker("gate") for i in items):
        return
    plugin = session.config.pluginmanager.get_plugin("hypothesispytest")
    if plugin is not None:
        session.config.pluginmanager.unregister(plugin)


def _gates_requested(config: pytest.Config) -> bool:
    explicit = (
        config.getoption("gate_env") or config.getoption("gate_profile") or os.environ.get(ENV_VARIABLE)
    )
    return bool(explicit) or _selects_gates(config)


class GateReporter:
    """Collects gate results from test reports; writes the summary and the reports.

    Registered on every process; only the controller (not an xdist worker) writes.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state = _session(config)
        self.is_worker = hasattr(config, "workerinput")

    def _gated(self) -> bool:
        if self.config.option.collectonly:
            # Listing the gates decides nothing: no verdict, no report overwritten, exit 0.
            return False
        # Under xdist the controller collects nothing itself: the reports tell.
        return bool(self.state.gate_items or self.state.gates or self.state.cases)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        state = self.state
        for name, value in report.user_properties:
            if name == CASE_PROPERTY:
                record = state.cases.setdefault(
                    value["id"], {k: v for k, v in value.items() if k != "metric"}
                )
                record["scores"].update(value["scores"])
                record["reasons"].update(value["reasons"])
            elif name == GATES_PROPERTY:
                for data in value:
                    from gates.verdict import GateResult

                    gate = GateResult.from_dict(data)
                    state.gates[gate.name] = gate
            elif name == RUN_PROPERTY:
                state.run_info = value

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or not self._gated():
            return
        from gates.report import build_report, write_reports

        state = self.state
        run_info = dict(state.run_info)
        if state.stopped or exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR):
            # Interrupted (Ctrl-C, SIGTERM, a collection error) or stopped by a usage error.
            why = state.stopped or f"the run stopped before a verdict (exit {int(exitstatus)})"
            run_info["stopped"] = why
        if state.shard_dir is not None:  # xdist: where each worker's time went (bench_xdist reads it)
            from gates.engine import worker_timings

            timings = worker_timings(state.shard_dir)
            if timings:
                run_info["stats"] = {**(run_info.get("stats") or {}), "xdist_workers": timings}
        report = build_report(state.env, state.gates, state.cases, run_info)
        state.report = report
        state.report_paths = write_reports(report, state.report_dir, state.reporters)
        state.passed = report.passed
        if state.track:
            state.tracking = _track(state, report)
        if not report.passed and session.exitstatus == pytest.ExitCode.OK:
            # Fail closed: a run that gated nothing, or whose gates failed, is not a pass.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.is_worker or not self._gated():
            return
        from gates.report import build_report, summary_lines

        state = self.state
        terminalreporter.section(f"ragate gates (env: {state.env})")
        report = state.report or build_report(state.env, state.gates, state.cases, state.run_info)
        for line, colour in summary_lines(report, state.report_paths):
            terminalreporter.write_line(line, **({colour: True} if colour else {}))
        if state.profile is not None:
            from gates.profile import vacuous_metrics

            vacuous = vacuous_metrics(state.profile)
            if vacuous:
                terminalreporter.write_line(
                    f"ragate: {', '.join(vacuous)}: no rule of the profile can fail (e.g. min_mean 0), so "
                    "this verdict proves nothing about them; `ragate promote` refuses such a profile",
                    yellow=True,
                )
        if state.tracking:
            colour = "red" if state.tracking.startswith("tracking failed") else None
            terminalreporter.write_line(f"ragate: {state.tracking}", **({colour: True} if colour else {}))


def _track(state: GateSession, report: Any) -> str:
    """Log the run to MLflow; a tracking failure is reported, never the verdict's."""
    from gates.tracking import TrackingError, track_gate_run

    try:
        if state.tracker is not None:
            run = state.tracker.track(report, state.report_paths)
        else:
            run = track_gate_run(state.root, report, state.report_paths)
    except (TrackingError, UsageError) as exc:
        return f"tracking failed (the verdict above stands): {exc}"
    version = f"model version {run.model_version}" if run.model_version else "no chain, no model version"
    return f"tracked as MLflow run {run.run_id} in {run.uri} ({version})"
