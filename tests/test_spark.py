"""The Spark engine: a real ``local[2]`` session gives the local scores (to the 6th decimal), and bad input
gets a clear message and exit code before anything is written."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._common import golden_shaped_rows
from gates.metrics.base import get_metric
from gates.scoring import SCORE_BATCH, metric_case, score_batches
from gates.spark import (
    LOCAL_JVM_OPTIONS,
    SparkSettings,
    SparkUnavailable,
    java_version,
    read_input,
    score_frame,
    score_on_spark,
    spark_session,
)
from ragate_core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("faithfulness", "answer_relevancy", "toxicity", "pii")
N_CASES = 300

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v java"], capture_output=True).returncode != 0,
    reason="no Java on this machine (scripts/bootstrap installs openjdk-17-jre-headless as root)",
)


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("warehouse")  # tables written by the tests go here
    settings = SparkSettings(master="local[2]", conf={"spark.sql.warehouse.dir": str(warehouse)})
    session = spark_session(settings)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> tuple[Path, list[dict]]:
    data = golden_shaped_rows(N_CASES)
    path = tmp_path_factory.mktemp("spark") / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    return path, data


def test_spark_scores_equal_the_local_scores(spark, rows, tmp_path) -> None:
    path, data = rows
    output = tmp_path / "scored.jsonl"
    count, unscored = score_on_spark(str(path), str(output), METRICS, SparkSettings(master="local[2]"))
    assert count == N_CASES
    scored = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in scored] == [r["id"] for r in data]  # ids kept, input order
    cases = [metric_case(r) for r in data]
    for name in METRICS:
        local = score_batches(get_metric(name), cases)
        for row, expected in zip(scored, local):
            got = row["scores"][name]
            if expected.value is None:
                assert got is None, (name, row["id"])
            else:
                # MiniLM vectors do not depend on the batch, the order or the process
                # (ragate_core.embeddings: equal-length groups, one torch thread).
                assert got == pytest.approx(expected.value, abs=1e-9), (name, row["id"])
            assert row["reasons"][name] == expected.reason, (name, row["id"])
    assert unscored == sum(s.value is None for n in METRICS for s in score_batches(get_metric(n), cases))


def test_spark_scoring_is_split_over_both_cores(spark, rows) -> None:
    """Every core scores: the batches go to several tasks and both Python workers of
    ``local[2]`` (adaptive query execution once coalesced them into one task)."""
    path, _ = rows
    df = read_input(spark, str(path)).cache()
    frame = score_frame(df, ["toxicity"], with_worker=True).toPandas()
    assert sorted(frame["_seq"]) == list(range(N_CASES))
    batches = -(-N_CASES // SCORE_BATCH)
    assert frame["_partition"].nunique() == batches  # one task per batch here (<= 4 per core)
    assert frame["_worker"].nunique() == 2  # both Python workers scored
    # A batch is scored whole, by one task, as the local run's score_batch call.
    assert (frame.groupby(frame["_seq"] // SCORE_BATCH)["_partition"].nunique() == 1).all()
    df.unpersist()


def test_columns_no_metric_reads_stay_on_the_jvm_and_come_back(spark, rows, tmp_path) -> None:
    """A table's other columns are not sent to the Python workers (only MetricCase's
    fields are), yet every one of them is in the output, on its own row."""
    _, data = rows
    extra = [{**r, "ticket_note": f"note {i}", "ticket_priority": i % 3} for i, r in enumerate(data[:70])]
    source = tmp_path / "extra.parquet"
    spark.createDataFrame(extra).write.parquet(str(source))
    df = read_input(spark, str(source)).cache()
    out = score_frame(df, ["pii"]).toPandas().set_index("id")
    assert len(out) == 70
    for row in extra:
        got = out.loc[row["id"]]
        assert (got["ticket_note"], got["ticket_priority"]) == (row["ticket_note"], row["ticket_priority"])
        expected = get_metric("pii").score_batch([metric_case(row)])[0]  # pii judges each case alone
        assert got["score__pii"] == pytest.approx(expected.value, abs=1e-9)
        assert got["reason__pii"] == expected.reason
    df.unpersist()


def test_parquet_and_table_round_trip(spark, rows, tmp_path) -> None:
    _, data = rows
    source = tmp_path / "in.parquet"
    spark.createDataFrame(data[:40]).write.parquet(str(source))
    out = tmp_path / "out.parquet"
    count, _ = score_on_spark(str(source), str(out), ("toxicity",), SparkSettings(master="local[2]"))
    assert count == 40
    back = spark.read.parquet(str(out)).toPandas()
    assert sorted(back["id"]) == sorted(r["id"] for r in data[:40])
    assert back["score__toxicity"].notna().all()

    spark.read.parquet(str(out)).write.saveAsTable("ragate_scored_in")
    count, _ = score_on_spark("ragate_scored_in", "ragate_scored_out", ("pii",), SparkSettings())
    assert count == 40
    assert spark.table("ragate_scored_out").count() == 40
    with pytest.raises(UsageError, match="ragate_scored_out"):
        score_on_spark("ragate_scored_in", "ragate_scored_out", ("pii",), SparkSettings())


def test_missing_table_and_missing_columns_are_usage_errors(spark, tmp_path) -> None:
    with pytest.raises(UsageError, match="no such table"):
        score_on_spark("no_such_table_here", str(tmp_path / "o.jsonl"), ("pii",), SparkSettings())
    bad = tmp_path / "bad.parquet"
    spark.createDataFrame([{"id": "1", "question": "q"}]).write.parquet(str(bad))
    output = tmp_path / "never.jsonl"
    with pytest.raises(UsageError, match=r"missing column\(s\) answer, contexts"):
        score_on_spark(str(bad), str(output), ("pii",), SparkSettings())
    assert not output.exists()


def test_existing_parquet_output_is_refused_before_any_work(tmp_path) -> None:
    existing = tmp_path / "out.parquet"
    existing.mkdir()
    with pytest.raises(UsageError, match="exists already"):
        score_on_spark("whatever_table", str(existing), ("pii",), SparkSettings())


def test_no_java_or_an_old_one_is_a_clear_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match=r"Java 17\+"):
        java_version(str(tmp_path / "no-java-here"))
    fake_java = tmp_path / "fake-java-11"  # a fake JVM: only prints an old version
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake_java.chmod(0o755)
    with pytest.raises(UsageError, match="is Java 11"):
        java_version(str(fake_java))
    assert java_version() >= 17


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_master_exits_1_and_writes_nothing(rows, tmp_path) -> None:
    path, _ = rows
    output = tmp_path / "out.jsonl"
    with pytest.raises(SparkUnavailable, match="not reachable"):
        spark_session(SparkSettings(master=f"spark://127.0.0.1:{_free_port()}"))
    result = subprocess.run(
        [sys.executable, "-m", "gates.cli", "score", "--engine", "spark", "--spark-master",
         f"spark://127.0.0.1:{_free_port()}", "--metrics", "pii",
         "--input", str(path), "--output", str(output)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "not reachable" in result.stderr and "Traceback" not in result.stderr
    assert not output.exists()


def test_cli_table_name_without_spark_is_a_usage_error(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gates.cli", "score", "--metrics", "pii", "--input", "some_table",
         "--output", str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "needs --engine spark" in result.stderr and "Traceback" not in result.stderr


def test_a_local_session_runs_its_jvm_with_c1_only(spark) -> None:
    """The local JVM only moves Arrow batches: C1 alone halved its CPU per scoring run
    (gates.spark.LOCAL_JVM_OPTIONS); a user's own extraJavaOptions would replace it."""
    assert spark.conf.get("spark.driver.extraJavaOptions") == LOCAL_JVM_OPTIONS
    jvm = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert LOCAL_JVM_OPTIONS in list(jvm.getInputArguments())


ANSWER_SCHEMA = "question string, answer string, contexts array<string>"


@pytest.mark.parametrize(
    ("id_type", "rows", "words"),
    [
        ("long", [(1, "q", "a", ["c"]), (None, "q", "a", ["c"])], ("row 2: column 'id' is missing",)),
        ("double", [(1.0, "q", "a", ["c"])], ("row 1: column 'id'", "not a float")),
        ("string", [("a", "q", "a", ["c", None])], ("row 1: column 'contexts' item 1", "valid string")),
        ("string", [("a", None, "a", ["c"])], ("row 1: column 'question' is missing",)),
        ("long", [(1, "q", "a", ["c"]), (1, "q", "a", ["c"])], ("duplicate id '1'",)),
    ],
    ids=["null id", "float id", "null context", "null question", "duplicate id"],
)
def test_a_parquet_folder_is_checked_as_a_file_is(spark, tmp_path, id_type, rows, words) -> None:
    """The rule of tests/test_input_ids_and_nulls.py on a Parquet folder (checked by the
    session, not before it): a bad row is refused naming its row and column."""
    source = tmp_path / "in.parquet"
    spark.createDataFrame(rows, f"id {id_type}, {ANSWER_SCHEMA}").coalesce(1).write.parquet(str(source))
    with pytest.raises(UsageError) as caught:
        read_input(spark, str(source))
    for word in words:
        assert word in str(caught.value)


def test_whole_number_ids_of_a_parquet_folder_are_read_as_text(spark, tmp_path) -> None:
    source = tmp_path / "in.parquet"
    rows = [(7, "q", "a", ["c"]), (12, "q", "a", ["c"])]
    spark.createDataFrame(rows, f"id long, {ANSWER_SCHEMA}").coalesce(1).write.parquet(str(source))
    df = read_input(spark, str(source))
    assert dict(df.dtypes)["id"] == "string"
    assert [r["id"] for r in df.orderBy("_seq").collect()] == ["7", "12"]


def test_a_parquet_file_is_checked_before_spark_and_its_whole_number_ids_are_text(spark, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    answers = {"question": ["q", "q"], "answer": ["a", "a"], "contexts": [["c"], ["c"]]}
    pq.write_table(pa.table({"id": [7, 12], **answers}), good)
    pq.write_table(pa.table({"id": [1, 1], **answers}), bad)
    df = read_input(spark, str(good))
    assert dict(df.dtypes)["id"] == "string"
    assert [r["id"] for r in df.orderBy("_seq").collect()] == ["7", "12"]
    # Called without check_input first, read_input runs it: the file's rows are still checked.
    with pytest.raises(UsageError, match="duplicate id '1'"):
        read_input(spark, str(bad))
