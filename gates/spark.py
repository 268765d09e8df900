"""Scoring on Apache Spark: the same metrics, distributed over partitions.

``ragate score --engine spark --input X --output Y`` reads X (JSONL, CSV, Parquet, or a
table name in the session's catalog), scores every row with ``groupBy(batch)
.applyInPandas``, and writes Y in the same forms. Rows are cut into batches of
:data:`gates.scoring.SCORE_BATCH` consecutive rows in input order, and each batch goes
through :func:`gates.scoring.score_batches`, the local loop; a case's score does not depend
on the batch it is in (``tests/test_first_score_batches.py``), so every score and every
unscored reason equals the local run's (``tests/test_spark.py``). Each Python worker loads
each model once (``get_metric`` keeps one instance per process; Spark reuses its workers).

The batches are spread over :data:`TASKS_PER_CORE` tasks per core of the session
(:func:`spread`, range partitioning with an explicit count). A plain ``groupBy`` would
let adaptive query execution coalesce its shuffle: the batches of a few thousand rows
are far below its 1 MB minimum partition size, so every batch went to ONE task and
``local[2]`` scored no faster than ``local[1]`` (measured: ``benchmarks/results/
scale_quiet.json``, the plan showed ``AQEShuffleRead coalesced``).

The session comes from ``[tool.ragate.spark]`` in pyproject (or the options):

```toml
[tool.ragate.spark]
master = "local[2]"           # default local[<cores>]; "spark://host:7077", "yarn", ...
connect = false               # true: Databricks Connect (databricks-connect installed)
[tool.ragate.spark.conf]
"spark.driver.memory" = "2g"  # any Spark configuration
```

Errors: no Java 17+, a missing table or file, input without the needed columns, a row
``ragate score`` would refuse (a null ``id``, a float id...; a whole-number ``id`` column is
read as text) -> :class:`~ragate_core.errors.UsageError` (exit 2); an unreachable master ->
:class:`SparkUnavailable` (exit 1). Nothing is written unless scoring finished.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragate_core.errors import UsageError

REQUIRED_COLUMNS = ("id", "question", "answer", "contexts")
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".pq")
MIN_JAVA = 17
TASKS_PER_CORE = 4  # scoring tasks per core: small enough tasks that a slow core is evened out
# A local session's JVM only moves Arrow batches between the Python workers: its C2 compiler
# cost 1.3-1.9 CPU s per scoring run at 1,000 rows, taken from the workers on two cores.
# C1 only (HotSpot's TieredStopAtLevel=1) halved the JVM's CPU and took local[1] -> local[2]
# from 1.54x to 1.71x (toxicity) and 1.50x to 1.65x (pii) (benchmarks/results/
# scale_1k_tox_pii.json against scale_1k_tox_pii_jit1.json). Set on local masters only, and
# never over the user's own spark.driver.extraJavaOptions.
LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"


class SparkUnavailable(Exception):
    """The Spark master (or Databricks workspace) could not be reached; exit status 1."""


@dataclass(frozen=True)
class SparkSettings:
    """Where and how to start the session (``[tool.ragate.spark]``)."""

    master: str = ""
    connect: bool = False
    conf: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_project(cls, root: Path, master: str | None = None) -> SparkSettings:
        from ragate_core.project import tool_table

        table = dict(tool_table(root).get("spark", {}))
        unknown = sorted(set(table) - {"master", "connect", "conf"})
        if unknown:
            raise UsageError(
                f"{root / 'pyproject.toml'} [tool.ragate.spark]: unknown key(s) {', '.join(unknown)}; "
                "allowed: master, connect, conf"
            )
        conf = table.get("conf", {})
        if not isinstance(conf, dict):
            raise UsageError(f"{root / 'pyproject.toml'} [tool.ragate.spark] conf: must be a table")
        return cls(
            master=master or str(table.get("master") or ""),
            connect=bool(table.get("connect", False)),
            conf={str(k): str(v) for k, v in conf.items()},
        )

    @property
    def resolved_master(self) -> str:
        return self.master or f"local[{os.cpu_count() or 1}]"


def java_version(java: str | None = None) -> int:
    """The major version of the ``java`` that Spark will start (``JAVA_HOME`` first).

    Raises :class:`UsageError` when there is none, saying how to install one.
    """
    home = os.environ.get("JAVA_HOME")
    java = java or (str(Path(home) / "bin" / "java") if home else None) or shutil.which("java")
    if not java or not Path(java).exists():
        raise UsageError(
            f"Spark needs Java {MIN_JAVA}+ and none was found (no JAVA_HOME, no java on PATH); "
            "install one, e.g. `apt-get install openjdk-17-jre-headless` "
            "(scripts/bootstrap does this as root)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        raise UsageError(f"{java}: cannot read its version from `java -version`: {out.stderr.strip()[:200]}")
    major = int(found.group(1))
    if major == 1 and found.group(2):  # "1.8" style
        major = int(found.group(2))
    if major < MIN_JAVA:
        raise UsageError(f"{java} is Java {major}; Spark 4 needs Java {MIN_JAVA}+")
    return major


def _check_reachable(master: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``spark://`` / ``sc://`` master nobody listens on (Spark would retry for minutes)."""
    found = re.match(r"(spark|sc)://([^:/,]+):(\d+)", master)
    if not found:
        return
    host, port = found.group(2), int(found.group(3))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise SparkUnavailable(f"Spark master {master} is not reachable: {exc}") from exc


def spark_session(settings: SparkSettings) -> Any:
    """A Spark session for ``settings`` (created, or the active one reused)."""
    if settings.connect:
        try:
            from databricks.connect import DatabricksSession  # type: ignore[import-not-found]
        except ImportError as exc:
            raise UsageError(
                "[tool.ragate.spark] connect = true needs databricks-connect: pip install databricks-connect"
            ) from exc
        try:
            return DatabricksSession.builder.getOrCreate()
        except Exception as exc:  # workspace, token or cluster: the service could not be used
            raise SparkUnavailable(f"Databricks Connect: {type(exc).__name__}: {exc}") from exc

    java_version()
    master = settings.resolved_master
    _check_reachable(master)
    # Workers must run this interpreter (the venv's): the system python3 lacks pyarrow.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    import warnings

    from pyspark.sql import SparkSession

    # pyspark 4.3 warns on any pandas >= 3; what ragate uses of it is tested (tests/test_spark.py).
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    cores = _local_cores(master)
    builder = (
        SparkSession.builder.appName("ragate")
        .master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local") and "spark.driver.extraJavaOptions" not in settings.conf:
        builder = builder.config("spark.driver.extraJavaOptions", LOCAL_JVM_OPTIONS)
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise SparkUnavailable(f"cannot start a Spark session on {master}: {problem}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


def _local_cores(master: str) -> int:
    found = re.fullmatch(r"local\[(\d+|\*)\]", master)
    if found and found.group(1) != "*":
        return int(found.group(1))
    return os.cpu_count() or 1


def _is_file_spec(spec: str) -> bool:
    return "/" in spec or spec.lower().endswith(FILE_SUFFIXES) or Path(spec).exists()


def check_input(spec: str) -> list[dict[str, Any]] | None:
    """What can be checked of an input file before a Spark session starts (seconds of JVM
    start-up): a JSONL or CSV file is read and validated whole (its rows are returned for
    :func:`read_input`); a Parquet file (not a folder of parts) has its schema read with
    pyarrow and checked for the needed columns, and its rows validated as ``ragate score``
    validates them (other columns are kept, as for a table). Tables and Parquet folders
    are checked by :func:`read_input`. Raises :class:`UsageError`."""
    from gates.schema import AnswerRow

    if not _is_file_spec(spec):
        return None
    path = Path(spec)
    if not path.exists():
        raise UsageError(f"--input {spec}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        if path.is_file():
            import pyarrow.parquet as pq

            try:
                columns = pq.read_schema(path).names
            except Exception as exc:  # pyarrow's ArrowInvalid and OSError alike
                raise UsageError(f"--input {spec}: not a Parquet file ({exc})") from exc
            _check_columns(columns, f"--input {spec}")
            from ragate_core.tables import iter_validated_records, parquet_records

            # Only the columns a row to score has (a table's other columns are not checked);
            # memory holds one record batch and the ids seen, not the file.
            wanted = [c for c in columns if c in AnswerRow.model_fields]
            named = parquet_records(pq.ParquetFile(path), spec, wanted)
            collections.deque(iter_validated_records(named, AnswerRow), maxlen=0)
        return None
    from ragate_core.tables import read_rows

    rows = [r.model_dump() for r in read_rows(path, AnswerRow)]
    if not rows:
        raise UsageError(f"--input {spec}: no rows to score")
    return rows


def _check_columns(columns: Sequence[str], where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UsageError(
            f"{where}: missing column(s) {', '.join(missing)}; a row to score needs "
            f"{', '.join(REQUIRED_COLUMNS)} "
            "(optional: ground_truth, answerable, source_ids, sources, latency_ms)"
        )


def read_input(spark: Any, spec: str, rows: list[dict[str, Any]] | None = None, checked: bool = False) -> Any:
    """A DataFrame of the rows to score, with ``_seq`` (input order, 0-based).

    JSONL and CSV are read and validated by :func:`ragate_core.tables.read_rows` (row numbers
    in errors; ``rows``: what :func:`check_input` read already); Parquet and tables are read
    by Spark, checked for the needed columns and their rows checked by the same rules
    (:func:`_checked_rows`: a bad row is refused, a whole-number ``id`` column becomes text).
    The rows of a single Parquet file are checked by :func:`check_input` (``checked``: it
    ran already), not again on the executors.
    """
    rows_checked = False
    if _is_file_spec(spec):
        path = Path(spec)
        if path.suffix.lower() in (".parquet", ".pq"):
            if not path.exists():
                raise UsageError(f"--input {spec}: no such file")
            if path.is_file():
                if not checked:
                    check_input(spec)
                rows_checked = True
            df = spark.read.parquet(str(path))
            where = f"--input {spec}"
        else:
            rows = rows if rows is not None else check_input(spec)
            import pandas as pd

            frame = pd.DataFrame(rows)
            frame["_seq"] = range(len(frame))
            return spark.createDataFrame(frame, schema=_row_schema(include_seq=True))
    else:
        from pyspark.errors import AnalysisException

        try:
            df = spark.table(spec)
        except AnalysisException as exc:
            problem = exc.getCondition()
            raise UsageError(f"--input {spec}: no such table in the Spark catalog ({problem})") from exc
        where = f"--input table {spec}"
    _check_columns(df.columns, where)
    from pyspark.sql import types as T

    indexed = df.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1]))
    schema = T.StructType([*df.schema.fields, T.StructField("_seq", T.LongType(), False)])
    # Rows are named as `ragate score` names a file's ("x.parquet: row 3"), or "table t: row 3".
    return _checked_rows(spark.createDataFrame(indexed, schema), where.removeprefix("--input "), rows_checked)


def _first_bad_row(records: Iterator[tuple[int, dict[str, Any]]], where: str) -> tuple[int, str] | None:
    """``(row number, message)`` of the first record :class:`~gates.schema.AnswerRow` refuses,
    worded as every other path words it (``ragate_core.tables.validate_records``); ``None``
    when every record fits."""
    from gates.schema import AnswerRow
    from ragate_core.tables import DataError, validate_records

    for number, record in records:
        try:
            validate_records([(f"{where}: row {number}", record)], AnswerRow)
        except DataError as exc:
            return number, str(exc)
    return None


def _checked_rows(df: Any, where: str, rows_checked: bool = False) -> Any:
    """``df`` (Parquet or a table, with ``_seq``) with its rows checked on the executors as
    ``ragate score`` checks a file's (unless ``rows_checked``: :func:`check_input` did it for a
    Parquet file), and a whole-number ``id`` column as text.

    Raises :class:`UsageError` for the first bad row (by input order) or a duplicate id."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from gates.schema import AnswerRow

    if not rows_checked:
        names = [c for c in df.columns if c in AnswerRow.model_fields]

        def first_bad(rows: Iterator[Any]) -> list[tuple[int, str]]:
            found = _first_bad_row(((r["_seq"] + 1, {n: r[n] for n in names}) for r in rows), where)
            return [found] if found else []

        bad = df.select(*names, "_seq").rdd.mapPartitions(first_bad).collect()
        if bad:
            raise UsageError(min(bad)[1])
    if isinstance(df.schema["id"].dataType, T.IntegralType):
        df = df.withColumn("id", F.col("id").cast("string"))
    if not rows_checked:
        twice = df.groupBy("id").count().where(F.col("count") > 1).limit(1).collect()
        if twice:
            raise UsageError(f"{where}: duplicate id {twice[0]['id']!r} ({twice[0]['count']} rows)")
    return df


def _row_schema(include_seq: bool) -> Any:
    from pyspark.sql import types as T

    from gates.schema import AnswerRow

    kinds = {
        "id": T.StringType(),
        "question": T.StringType(),
        "answer": T.StringType(),
        "contexts": T.ArrayType(T.StringType()),
        "ground_truth": T.StringType(),
        "answerable": T.BooleanType(),
        "source_ids": T.ArrayType(T.StringType()),
        "tags": T.ArrayType(T.StringType()),
        "sources": T.ArrayType(T.StringType()),
        "latency_ms": T.DoubleType(),
        "prompt_tokens": T.LongType(),
        "completion_tokens": T.LongType(),
        "blocked": T.BooleanType(),
        "rail": T.StringType(),
    }
    missing = set(AnswerRow.model_fields) - set(kinds)
    if missing:  # a new AnswerRow field must get a Spark type here
        raise RuntimeError(f"no Spark type for AnswerRow field(s) {sorted(missing)}")
    fields = [T.StructField(name, kinds[name], True) for name in AnswerRow.model_fields]
    if include_seq:
        fields.append(T.StructField("_seq", T.LongType(), False))
    return T.StructType(fields)


def _plain(value: Any) -> Any:
    """A pandas/arrow cell as plain Python (arrays -> lists, NaN -> None)."""
    if value is None:
        return None
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parallelism(spark: Any) -> int:
    """The session's default parallelism (its cores); the local core count where it cannot be read."""
    try:
        return max(1, int(spark.sparkContext.defaultParallelism))
    except Exception:  # Spark Connect (Databricks Connect) has no SparkContext on the client
        return os.cpu_count() or 1


def spread(df: Any, key: str, groups: int | None, spark: Any) -> Any:
    """``df`` range-partitioned on ``key`` into ``min(groups, TASKS_PER_CORE * cores)``
    partitions, so that a following ``groupBy(key)`` runs as that many tasks in parallel.

    A row's group never straddles two partitions (range partitioning keeps equal keys
    together), so the ``groupBy`` needs no other shuffle. The explicit partition count is
    what matters: adaptive query execution never coalesces a repartition with a given
    number, whereas it merges a ``groupBy``'s own small shuffle partitions into one task.
    ``groups`` is the number of distinct keys (>= 1), or None when it is not known without
    a Spark job of its own (partitions beyond the keys' count stay empty: idle tasks).
    """
    parts = TASKS_PER_CORE * parallelism(spark)
    parts = max(1, parts if groups is None else min(int(groups), parts))
    return df.repartitionByRange(parts, key)


def _score_group(metrics: Sequence[str], with_worker: bool = False) -> Any:
    """The function each Python worker runs on one batch (a pandas DataFrame)."""

    def score(frame: Any) -> Any:
        import time

        from gates.metrics.base import get_metric
        from gates.scoring import metric_case, score_batches

        start, cpu = time.time(), time.process_time()
        frame = frame.sort_values("_seq").reset_index(drop=True)
        records = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
        cases = [metric_case(r) for r in records]
        out = frame[["_seq"]].copy()
        for name in metrics:
            scores = score_batches(get_metric(name), cases, batch=max(len(cases), 1))
            out[f"score__{name}"] = [s.value for s in scores]
            out[f"reason__{name}"] = [s.reason for s in scores]
        if with_worker:
            from pyspark import TaskContext

            out["_worker"] = os.getpid()
            out["_partition"] = TaskContext.get().partitionId()
            out["_start"], out["_end"] = start, time.time()
            out["_cpu"] = time.process_time() - cpu
        return out

    return score


def score_frame(df: Any, metrics: Sequence[str], *, with_worker: bool = False) -> Any:
    """``df`` (with ``_seq``) joined with ``score__<metric>``/``reason__<metric>`` columns.

    The batches are scored by ``TASKS_PER_CORE`` tasks per core (:func:`spread`). With
    ``with_worker`` five more columns say where and when each row was scored: ``_worker``
    (the Python worker's pid), ``_partition`` (the task's partition), ``_start``/``_end``
    (epoch seconds) and ``_cpu`` (the worker's CPU seconds) of the scoring of the row's
    batch in Python; for benchmarks and tests, never written by :func:`score_on_spark`.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from gates.metrics.base import MetricCase
    from gates.scoring import SCORE_BATCH

    schema = T.StructType(
        [T.StructField("_seq", T.LongType(), False)]
        + [
            f
            for name in metrics
            for f in (
                T.StructField(f"score__{name}", T.DoubleType(), True),
                T.StructField(f"reason__{name}", T.StringType(), True),
            )
        ]
        + (
            [
                T.StructField("_worker", T.LongType(), False),
                T.StructField("_partition", T.LongType(), False),
                T.StructField("_start", T.DoubleType(), False),
                T.StructField("_end", T.DoubleType(), False),
                T.StructField("_cpu", T.DoubleType(), False),
            ]
            if with_worker
            else []
        )
    )
    # Only what a metric can read travels to the Python workers: a table's other columns
    # (ids, traces, timestamps) would be shuffled and converted for nothing. The join below
    # brings every input column back.
    readable = {f.name for f in dataclasses.fields(MetricCase)}
    needed = [c for c in df.columns if c in readable]
    batched = df.select(*needed, "_seq").withColumn("_batch", F.floor(F.col("_seq") / SCORE_BATCH))
    # No count of the rows first: a Spark job of its own (a whole read of an uncached
    # input) costing ~0.25 s of JVM CPU per call, which local[2] on two cores pays in wall
    # time (benchmarks/bench_scale.py records the JVM's CPU seconds per run).
    scores = (
        spread(batched, "_batch", None, df.sparkSession)
        .groupBy("_batch")
        .applyInPandas(_score_group(list(metrics), with_worker), schema)
    )
    return df.join(scores, on="_seq", how="inner")


def rows_of(frame: Any, metrics: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Output rows in input order, in ``ragate score``'s JSONL form (``scores``/``reasons``)."""
    for record in frame.sort_values("_seq").to_dict("records"):
        row = {
            k: _plain(v)
            for k, v in record.items()
            if not k.startswith(("score__", "reason__", "_")) and _plain(v) is not None
        }
        row["scores"] = {m: _plain(record[f"score__{m}"]) for m in metrics}
        row["reasons"] = {m: record[f"reason__{m}"] for m in metrics}
        yield row


def write_output(scored: Any, spec: str, metrics: Sequence[str]) -> int:
    """Write the scored rows to ``spec`` (a JSONL file, a Parquet file, or a new table); rows written."""
    if _is_file_spec(spec):
        path = Path(spec)
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            return _write_parquet(scored, path)
        from ragate_core.jsonl import write_jsonl

        return write_jsonl(path, rows_of(scored.toPandas(), metrics))
    from pyspark.errors import AnalysisException

    try:
        scored.drop("_seq").write.mode("errorifexists").saveAsTable(spec)
    except AnalysisException as exc:
        raise UsageError(f"--output table {spec}: {exc.getCondition()}: choose a new table name") from exc
    return int(scored.count())


def _write_parquet(scored: Any, path: Path) -> int:
    """Write a Parquet directory next to ``path`` and move it into place only when complete."""
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    target = staging / "data"
    scored.orderBy("_seq").drop("_seq").write.parquet(str(target))
    count = int(scored.count())
    target.rename(path)
    staging.rmdir()
    return count


def check_output(spec: str) -> None:
    """Refuse an output that cannot be written, before any work."""
    if not _is_file_spec(spec):
        return  # a table name: the catalog refuses an existing one when writing
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".parquet", ".pq"):
        raise UsageError(f"--output {spec}: write .jsonl, .parquet or a table name")
    if suffix in (".parquet", ".pq") and path.exists():
        raise UsageError(f"--output {spec}: exists already; choose a new path")
    if not path.parent.is_dir():
        raise UsageError(f"--output {spec}: folder {path.parent} does not exist")


def score_on_spark(
    input_spec: str, output_spec: str, metrics: Sequence[str], settings: SparkSettings
) -> tuple[int, int]:
    """Score ``input_spec`` into ``output_spec``; returns (rows, unscored judgments)."""
    check_output(output_spec)
    rows = check_input(input_spec)  # before the JVM starts: a bad file costs no session
    spark = spark_session(settings)
    df = read_input(spark, input_spec, rows, checked=True).cache()
    scored = score_frame(df, metrics).cache()
    unscored = 0
    for name in metrics:
        unscored += int(scored.filter(scored[f"score__{name}"].isNull()).count())
    rows = write_output(scored, output_spec, metrics)
    return rows, unscored


# --- Gate runs on Spark (``pytest -m gate --gate-engine spark``) ------------------------------
#
# The driver does what a local run does around the model calls: it reads the cache, decides
# what must be computed, writes new results back and builds the verdict. Only the rows the
# cache lacks go to Spark: first the questions to answer, then, per metric, the cases to
# score, cut into the same batches of SCORE_BATCH as a local run (in the same order), so
# each batch reaches ``Metric.score_batch`` with exactly the cases it gets locally.
# Answers and scores travel back pickled: they arrive as the objects a local run holds.

_WORKER_CHAINS: dict[str, Any] = {}
_WORKER_METRICS: dict[tuple[str, str], Any] = {}


def _worker_chain(factory: Any, root: str) -> Any:
    """One chain per Python worker (Spark reuses workers): built once, then reused.

    ``factory`` is the ``module:factory`` import string (imported here as on the driver,
    with the project folder on ``sys.path`` like pytest's rootdir), or a picklable callable.
    """
    if isinstance(factory, str):
        key = factory
    else:  # the same callable arrives as a new object with every task: key it by its bytes
        import hashlib

        from pyspark import cloudpickle

        key = hashlib.sha256(cloudpickle.dumps(factory)).hexdigest()
    if key not in _WORKER_CHAINS:
        if root and Path(root).is_dir() and root not in sys.path:
            sys.path.insert(0, root)
        if isinstance(factory, str):
            from gates.chain import load_chain_factory

            factory = load_chain_factory(factory)
        _WORKER_CHAINS[key] = factory()
    return _WORKER_CHAINS[key]


def _worker_metric(name: str, judge: str, profile: Any, root: str) -> Any:
    """The metric as :meth:`gates.engine.GateEngine._metric` builds it, once per worker."""
    if (name, judge) not in _WORKER_METRICS:
        if judge == "llm":
            from gates.metrics.llm_metrics import llm_metric

            metric = llm_metric(name, Path(root), where=f"{profile.source}: metrics.{name}.judge")
        else:
            from gates.metrics.base import get_metric

            metric = get_metric(name)
            configured = getattr(metric, "configured", None)
            metric = configured(profile) if callable(configured) else metric
        _WORKER_METRICS[(name, judge)] = metric
    return _WORKER_METRICS[(name, judge)]


def _generate_partition(factory: Any, root: str, concurrency: int, repeats: int, temperature: Any) -> Any:
    """What each Spark task runs: answer its questions (``prompt``) with the worker's chain."""

    def generate(frames: Iterator[Any]) -> Iterator[Any]:
        import pickle
        from concurrent.futures import ThreadPoolExecutor

        import pandas as pd

        from gates.chain import call_chain

        chain = _worker_chain(factory, root)
        sampled = repeats > 1 or temperature is not None

        def answer(row: tuple[int, str, int]) -> tuple[int, bytes | None, str | None]:
            seq, prompt, repeat = row
            try:
                # As GateEngine._invoke: the call timed, its wall time the latency when the
                # chain reports none.
                result = call_chain(chain, prompt, repeat=repeat, temperature=temperature, sampled=sampled)
                return seq, pickle.dumps(result), None
            except Exception as exc:  # unscored for every metric on the driver, never dropped
                return seq, None, f"{type(exc).__name__}: {exc}"

        for frame in frames:
            rows = list(zip(frame["seq"].tolist(), frame["prompt"].tolist(), frame["repeat"].tolist()))
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                done = list(pool.map(answer, rows))
            yield pd.DataFrame(done, columns=["seq", "answer", "error"])

    return generate


def _score_partition(judges: Mapping[str, str], profile: Any, root: str) -> Any:
    """What each Spark task runs on one (metric, batch) group: one ``score_batch`` call."""

    def score(frame: Any) -> Any:
        import pickle

        import pandas as pd
        from pyspark import TaskContext

        from gates.scoring import score_batches

        frame = frame.sort_values("pos")
        name = str(frame["metric"].iloc[0])
        metric = _worker_metric(name, judges[name], profile, root)
        cases = [pickle.loads(blob) for blob in frame["case"]]
        scores = score_batches(metric, cases, batch=max(len(cases), 1))
        return pd.DataFrame(
            {
                "metric": name,
                "pos": frame["pos"].tolist(),
                "score": [pickle.dumps(s) for s in scores],
                "worker": os.getpid(),
                "task": TaskContext.get().partitionId(),
            }
        )

    return score


def generate_and_score(
    engine: Any, chain: Any, version: dict[str, str], cases: Sequence[Any], stats: Any
) -> list[Any]:
    """A gate run's generation and scoring on Spark: the :class:`~gates.engine.CaseResult`
    list that :meth:`gates.engine.GateEngine.run` computes locally, with the same cache reads
    and writes, stats and progress lines; only the uncached work runs on the executors.

    The session comes from ``[tool.ragate.spark]`` (:class:`SparkSettings`). Raises
    :class:`UsageError` (no Java, bad settings) or :class:`SparkUnavailable`.
    """
    import time

    settings = SparkSettings.from_project(engine.root)
    spark = spark_session(settings)
    start = time.perf_counter()
    results = _generate_on_spark(spark, engine, chain, version, cases, stats, settings.resolved_master)
    stats.generate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    _score_on_spark(spark, engine, results, stats)
    stats.score_seconds = time.perf_counter() - start
    return results


def _engine_root(engine: Any) -> str:
    return str(Path(engine.root).resolve())


def _generate_on_spark(
    spark: Any,
    engine: Any,
    chain: Any,
    version: dict[str, str],
    cases: Sequence[Any],
    stats: Any,
    master: str,
) -> list[Any]:
    import pickle

    import pandas as pd

    from gates.chain import Answer
    from gates.engine import mask_text

    # H3-cache: the engine's cache read (masked answers used only when fully judged).
    results, keys = engine.cached_results(version, cases, stats)
    todo = [i for i, r in enumerate(results) if r.answer is None]
    engine.progress(
        f"generating {len(todo)} answers ({stats.generation_cache_hits} cached) on Spark {master}"
    )
    fresh: dict[str, Answer] = {}
    if todo:
        from pyspark.sql import types as T

        sampling = engine.profile.sampling
        frame = pd.DataFrame(
            {
                "seq": todo,
                "prompt": [results[i].case.prompt for i in todo],
                "repeat": [results[i].case.repeat for i in todo],
            }
        )
        schema_in = T.StructType(
            [
                T.StructField("seq", T.LongType(), False),
                T.StructField("prompt", T.StringType(), False),
                T.StructField("repeat", T.LongType(), False),
            ]
        )
        schema_out = T.StructType(
            [
                T.StructField("seq", T.LongType(), False),
                T.StructField("answer", T.BinaryType(), True),
                T.StructField("error", T.StringType(), True),
            ]
        )
        parts = max(1, min(len(todo), parallelism(spark) * TASKS_PER_CORE))
        factory = engine.chain_spec or engine.chain_factory
        answers = (
            spark.createDataFrame(frame, schema=schema_in)
            .repartition(parts)
            .mapInPandas(
                _generate_partition(
                    factory,
                    _engine_root(engine),
                    engine.profile.concurrency,
                    sampling.repeats,
                    sampling.temperature,
                ),
                schema_out,
            )
            .toPandas()
        )
        for seq, blob, error in zip(answers["seq"], answers["answer"], answers["error"]):
            result = results[int(seq)]
            if blob is not None and not (isinstance(blob, float) and math.isnan(blob)):
                result.answer = pickle.loads(bytes(blob))
                fresh[keys[int(seq)]] = result.answer
            else:
                # The message may quote the question it failed on: masked like the question.
                result.error = mask_text(f"generation failed: {error}", names=True)
    engine.store_answers(fresh)  # as the local run stores them: personal data masked
    stats.generated = len(fresh)
    stats.model_seconds = sum(a.latency_ms for a in fresh.values()) / 1000.0
    return results


def _score_on_spark(spark: Any, engine: Any, results: list[Any], stats: Any) -> None:
    import pickle

    import pandas as pd

    from gates.engine import to_score
    from gates.metrics.base import MetricCase, Score, judgment_key_and_reads
    from gates.scoring import SCORE_BATCH, judgment_entries

    Miss = tuple[Any, MetricCase, str, bool]  # result, case, judgment key, whether it reads the answer
    plan: dict[str, tuple[list[tuple[Any, str]], dict[str, Any], list[Miss]]] = {}
    rows: list[tuple[str, int, int, int, bytes]] = []
    groups = 0  # (metric, batch) groups so far: each row's "group" numbers its batch across metrics
    for name, metric in engine.metrics.items():
        todo = [(r, *judgment_key_and_reads(metric, mc), mc) for r, mc in to_score(name, metric, results)]
        cached = engine.cache.get_many("judgment", [k for _, k, _, _ in todo])
        stats.judgment_cache_hits += sum(k in cached for _, k, _, _ in todo)
        misses = [(r, mc, k, reads) for r, k, reads, mc in todo if k not in cached]
        engine.progress(f"scoring {name}: {len(misses)} cases ({len(todo) - len(misses)} cached) on Spark")
        plan[name] = ([(r, k) for r, k, _, _ in todo], cached, misses)
        # The local run's batches: misses in order, SCORE_BATCH at a time.
        rows.extend(
            (name, i // SCORE_BATCH, groups + i // SCORE_BATCH, i, pickle.dumps(mc))
            for i, (_, mc, _, _) in enumerate(misses)
        )
        groups += math.ceil(len(misses) / SCORE_BATCH)

    scored: dict[tuple[str, int], Score] = {}
    if rows:
        from pyspark.sql import types as T

        schema_in = T.StructType(
            [
                T.StructField("metric", T.StringType(), False),
                T.StructField("batch", T.LongType(), False),
                T.StructField("group", T.LongType(), False),
                T.StructField("pos", T.LongType(), False),
                T.StructField("case", T.BinaryType(), False),
            ]
        )
        schema_out = T.StructType(
            [
                T.StructField("metric", T.StringType(), False),
                T.StructField("pos", T.LongType(), False),
                T.StructField("score", T.BinaryType(), False),
                T.StructField("worker", T.LongType(), False),
                T.StructField("task", T.LongType(), False),
            ]
        )
        judges = {name: gate.judge for name, gate in engine.profile.metrics.items()}
        frame = pd.DataFrame(rows, columns=["metric", "batch", "group", "pos", "case"])
        out = (
            spread(spark.createDataFrame(frame, schema_in), "group", groups, spark)
            .groupBy("group")  # one (metric, batch) each, as the local run's score_batch calls
            .applyInPandas(_score_partition(judges, engine.profile, _engine_root(engine)), schema_out)
            .toPandas()
        )
        scored = {
            (str(m), int(p)): pickle.loads(bytes(s))
            for m, p, s in zip(out["metric"], out["pos"], out["score"])
        }
        engine.progress(
            f"scored {len(rows)} case-metrics in {groups} batches: {out['task'].nunique()} tasks "
            f"on {out['worker'].nunique()} Python worker(s)"
        )

    for name, (todo_keys, cached, misses) in plan.items():
        metric = engine.metrics[name]
        fresh: dict[str, Any] = {}
        scores = [
            scored.get((name, i)) or Score(name, metric.version, None, "error: no score came back from Spark")
            for i in range(len(misses))
        ]
        # Cached as the local run caches them: reasons quoting personal data masked.
        entries = judgment_entries([m[1] for m in misses], scores, [m[3] for m in misses], engine.cache)
        for (_, _, key, _), score, entry in zip(misses, scores, entries):
            cached[key] = entry
            if score.scored:  # errors are retried next run, never cached
                fresh[key] = entry
        engine.cache.put_many("judgment", fresh)
        stats.judgments += len(misses)
        for r, key in todo_keys:
            entry = cached[key]
            r.scores[name] = Score(
                name, metric.version, entry["value"], entry["reason"], entry.get("details", {})
            )
