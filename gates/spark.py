"""Scoring on Apache Spark: the same metrics, distributed over partitions.

``ragate score --engine spark --input X --output Y`` reads X (JSONL, CSV, Parquet, or a
table name in the session's catalog), scores every row with ``groupBy(batch)
.applyInPandas``, and writes Y in the same forms. Rows are cut into the batches
``ragate score`` uses locally (:data:`gates.scoring.SCORE_BATCH` consecutive rows in input
order), and each batch goes through :func:`gates.scoring.score_batches`, so every score and
every unscored reason equals the local run's. Each Python worker loads each model once
(``get_metric`` keeps one instance per process; Spark reuses its Python workers).

The session comes from ``[tool.ragate.spark]`` in pyproject (or the options):

```toml
[tool.ragate.spark]
master = "local[2]"           # default local[<cores>]; "spark://host:7077", "yarn", ...
connect = false               # true: Databricks Connect (databricks-connect installed)
[tool.ragate.spark.conf]
"spark.driver.memory" = "2g"  # any Spark configuration
```

Errors: no Java 17+, a missing table or file, input without the needed columns ->
:class:`~ragate_core.errors.UsageError` (exit 2); an unreachable master ->
:class:`SparkUnavailable` (exit 1). Nothing is written unless scoring finished.
"""

from __future__ import annotations

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


def read_input(spark: Any, spec: str) -> Any:
    """A DataFrame of the rows to score, with ``_seq`` (input order, 0-based).

    JSONL and CSV are read and validated by :func:`ragate_core.tables.read_rows` (row numbers
    in errors); Parquet and tables are read by Spark and checked for the needed columns.
    """
    from gates.schema import AnswerRow

    if _is_file_spec(spec):
        path = Path(spec)
        if not path.exists():
            raise UsageError(f"--input {spec}: no such file")
        if path.suffix.lower() in (".parquet", ".pq"):
            df = spark.read.parquet(str(path))
            where = f"--input {spec}"
        else:
            from ragate_core.tables import read_rows

            rows = [r.model_dump() for r in read_rows(path, AnswerRow)]
            if not rows:
                raise UsageError(f"--input {spec}: no rows to score")
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
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UsageError(
            f"{where}: missing column(s) {', '.join(missing)}; a row to score needs "
            f"{', '.join(REQUIRED_COLUMNS)} "
            "(optional: ground_truth, answerable, source_ids, sources, latency_ms)"
        )
    from pyspark.sql import types as T

    indexed = df.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1]))
    schema = T.StructType([*df.schema.fields, T.StructField("_seq", T.LongType(), False)])
    return spark.createDataFrame(indexed, schema)


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


def _score_group(metrics: Sequence[str]) -> Any:
    """The function each Python worker runs on one batch (a pandas DataFrame)."""

    def score(frame: Any) -> Any:
        from gates.metrics.base import get_metric
        from gates.scoring import metric_case, score_batches

        frame = frame.sort_values("_seq").reset_index(drop=True)
        records = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
        cases = [metric_case(r) for r in records]
        out = frame[["_seq"]].copy()
        for name in metrics:
            scores = score_batches(get_metric(name), cases, batch=max(len(cases), 1))
            out[f"score__{name}"] = [s.value for s in scores]
            out[f"reason__{name}"] = [s.reason for s in scores]
        return out

    return score


def score_frame(df: Any, metrics: Sequence[str]) -> Any:
    """``df`` (with ``_seq``) joined with ``score__<metric>``/``reason__<metric>`` columns."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

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
    )
    batched = df.withColumn("_batch", F.floor(F.col("_seq") / SCORE_BATCH))
    scores = batched.groupBy("_batch").applyInPandas(_score_group(list(metrics)), schema)
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
    spark = spark_session(settings)
    df = read_input(spark, input_spec).cache()
    scored = score_frame(df, metrics).cache()
    unscored = 0
    for name in metrics:
        unscored += int(scored.filter(scored[f"score__{name}"].isNull()).count())
    rows = write_output(scored, output_spec, metrics)
    return rows, unscored
