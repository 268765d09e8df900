"""The ``ragate`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gates import ENVIRONMENTS
from ragate_core.errors import UsageError

EXIT_USAGE = 2


def _nonblank(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("the question is empty; give a question in quotes")
    return value


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return path


def _input_spec(value: str) -> Path | str:
    """A file (which must exist), or a bare name: a table in the Spark catalog (``--engine spark``)."""
    path = Path(value)
    if path.is_file():
        return path
    from gates.spark import FILE_SUFFIXES  # only now: Spark's module is not light

    if "/" in value or value.lower().endswith(FILE_SUFFIXES) or path.exists():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return value


JSONL_SUFFIXES = (".jsonl", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


def _check_output(args: argparse.Namespace, suffixes: tuple[str, ...] = JSONL_SUFFIXES) -> None:
    """``--output`` must be a new or replaceable file of a format written here (``suffixes``),
    never the input: checked before any work."""
    output, source = args.output, args.input
    if output is None:
        return
    if output.is_dir():
        raise UsageError(
            f"--output {output}: is a directory; give a file path (for example {output}/out.jsonl)"
        )
    if output.suffix.lower() not in suffixes:
        raise UsageError(
            f"--output {output}: the format follows the suffix, and "
            f"{repr(output.suffix) + ' is not one' if output.suffix else 'it has none'} written here; "
            f"give a path ending in {' or '.join(suffixes)}"
        )
    if source is not None and output.resolve() == source.resolve():
        raise UsageError(f"--output {output}: is the --input file; write the results to another file")
    if output.parent.exists() and not output.parent.is_dir():
        raise UsageError(f"--output {output}: {output.parent} is not a directory")


def write_parquet(path: Path, rows: list[dict[str, Any]], metrics: list[str]) -> None:
    """Scored rows as one Parquet file, in the columns ``--engine spark`` writes: the input's
    columns, then ``score__<metric>`` (double, null when unscored) and ``reason__<metric>``.
    Written beside ``path`` and moved into place only when complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = []
    for row in rows:
        data = {k: v for k, v in row.items() if k not in ("scores", "reasons")}
        for name in metrics:
            data[f"score__{name}"] = row["scores"][name]
            data[f"reason__{name}"] = row["reasons"][name]
        flat.append(data)
    table = pa.Table.from_pylist(flat)
    for name in metrics:  # a column of nulls only would get no type
        i = table.schema.get_field_index(f"score__{name}")
        table = table.set_column(i, f"score__{name}", table.column(i).cast(pa.float64()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _require_rows(rows: list, path: Path) -> None:
    if not rows:
        raise UsageError(f"{path}: no rows (the file is empty or holds only blank lines)")


def _configured_chain() -> tuple[object, str]:
    """The chain the gates would judge: ``[tool.ragate.gates] chain``, built by its factory."""
    from gates.chain import configured_chain_factory, configured_chain_spec
    from ragate_core.project import find_project_root

    root = find_project_root()
    return configured_chain_factory(root)(), configured_chain_spec(root)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Bring the configured chain up to date (``chain.prepare()``; for ragate's chain: the index)."""
    import inspect

    chain, spec = _configured_chain()
    prepare = getattr(chain, "prepare", None)
    if prepare is None:
        print(f"{spec}: the chain has no prepare(); nothing to ingest")
        return 0
    if args.corpus is not None:
        if "corpus_dir" not in inspect.signature(prepare).parameters:
            raise UsageError(
                f"--corpus: the chain {spec} takes no corpus folder (its prepare() has no corpus_dir)"
            )
        fingerprint = prepare(corpus_dir=args.corpus)
    else:
        fingerprint = prepare()
    # A chain may say what preparing did (ragate's: the ingest statistics).
    print(getattr(chain, "prepare_summary", None) or f"prepared {spec}: {fingerprint}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from gates.chain import Answer
    from gates.schema import QuestionRow
    from ragate_core.jsonl import read_jsonl, write_jsonl

    if (args.input is None) == (args.question is None):
        raise UsageError(
            "ragate ask: give either a QUESTION or --input FILE.jsonl (with --output FILE.jsonl)"
        )
    if args.input is not None and args.output is None:
        raise UsageError("ragate ask --input: --output FILE.jsonl is required in batch mode")
    if args.output is not None and args.input is None:
        raise UsageError("ragate ask --output: only valid with --input FILE.jsonl")
    _check_output(args)
    # Validate all input before the model loads, so a bad line fails in milliseconds.
    rows = read_jsonl(args.input, QuestionRow) if args.input else []
    if args.input is not None:
        _require_rows(rows, args.input)
    chain, _ = _configured_chain()
    # A chain that is not ready (ragate's: an index never built) raises UsageError saying
    # what to run.
    if args.question is not None:
        result = Answer.of(chain.invoke(args.question))
        print(result.answer)
        if result.sources:
            print("\nsources: " + ", ".join(dict.fromkeys(result.sources)))
        if result.blocked:
            print(f"(blocked by rail: {result.rail})")
        return 0

    from tqdm import tqdm

    from gates.engine import mask_text

    out = []
    failed: list[tuple[str, str]] = []
    for row in tqdm(rows, desc="ask", unit="q", file=sys.stderr, disable=None):
        try:
            result = Answer.of(chain.invoke(row.question))
        except UsageError:
            raise  # the chain is not ready (no index...): nothing to write
        except Exception as exc:  # one question's failure (a rail's timeout...) loses no other answer
            failed.append((row.id, mask_text(f"{type(exc).__name__}: {exc}", names=True)))
            continue
        out.append(
            {
                "id": row.id,
                # Masked as the input rail masks it (names too): no PII leaves in a file.
                "question": mask_text(row.question, names=True),
                "answer": result.answer,
                "contexts": list(result.contexts),
                "sources": list(result.sources),
                "latency_ms": result.latency_ms,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "blocked": result.blocked,
                "rail": result.rail,
            }
        )
    write_jsonl(args.output, out)
    print(f"wrote {len(out)} answers to {args.output}", file=sys.stderr)
    if failed:
        # Failed questions are left out of the output (an answer row needs an answer) and
        # named here; the exit status says the batch is incomplete, as `ragate score` does.
        print(f"{len(failed)} of {len(rows)} questions failed, not in the output:", file=sys.stderr)
        for case_id, why in failed:
            print(f"  {case_id}: {why}", file=sys.stderr)
        return 1
    return 0


def _metric_list(value: str) -> list[str]:
    from gates.metrics.base import is_metric, metric_names

    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if not is_metric(n)]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(metric_names())}"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} listed more than once; name each metric once")
    return names


def cmd_score(args: argparse.Namespace) -> int:
    """Score existing answers without generating (``ragate score``)."""
    if args.engine == "spark":
        return _score_on_spark(args)
    if isinstance(args.input, str):
        raise UsageError(f"--input {args.input}: no such file (a table name needs --engine spark)")
    from gates.metrics.base import get_metric
    from gates.schema import AnswerRow
    from gates.scoring import metric_case, score_batches
    from ragate_core.jsonl import write_jsonl
    from ragate_core.tables import read_rows

    _check_output(args, JSONL_SUFFIXES + PARQUET_SUFFIXES)
    rows = read_rows(args.input, AnswerRow)  # .jsonl, .csv or .parquet
    _require_rows(rows, args.input)
    # Every field MetricCase reads (ground_truth, answerable, source_ids, sources, ...).
    cases = [metric_case(r.model_dump()) for r in rows]
    scores = {name: score_batches(get_metric(name), cases) for name in args.metrics}
    out = []
    for i, row in enumerate(rows):
        data = row.model_dump(exclude_unset=True)
        data["scores"] = {name: scores[name][i].value for name in args.metrics}
        data["reasons"] = {name: scores[name][i].reason for name in args.metrics}
        out.append(data)
    if args.output.suffix.lower() in PARQUET_SUFFIXES:
        write_parquet(args.output, out, args.metrics)
    else:
        write_jsonl(args.output, out)
    # A case outside a metric's scope (retrieval metrics on an unanswerable case) is not an error.
    unscored = sum(
        s.value is None and not s.details.get("not_applicable") for v in scores.values() for s in v
    )
    print(
        f"scored {len(out)} rows with {', '.join(args.metrics)} -> {args.output} ({unscored} unscored)",
        file=sys.stderr,
    )
    return 1 if unscored else 0


def _score_on_spark(args: argparse.Namespace) -> int:
    """``ragate score --engine spark``: the same scores, computed on a Spark session."""
    from gates.spark import SparkSettings, score_on_spark
    from ragate_core.project import find_project_root

    if str(args.output) == str(args.input):
        raise UsageError(f"--output {args.output}: is the --input; write the results elsewhere")
    settings = SparkSettings.from_project(find_project_root(), master=args.spark_master)
    rows, unscored = score_on_spark(str(args.input), str(args.output), args.metrics, settings)
    print(
        f"scored {rows} rows with {', '.join(args.metrics)} on Spark ({settings.resolved_master}) "
        f"-> {args.output} ({unscored} unscored)",
        file=sys.stderr,
    )
    return 1 if unscored else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure each metric on the labeled calibration data (``ragate calibrate``); with
    ``--suggest`` suggest thresholds, with ``--fit`` refit the faithfulness combiner."""
    from gates.calibrate import run

    return run(args)


def cmd_promote(args: argparse.Namespace) -> int:
    """Move an alias onto this chain version, only if its gate run passed."""
    from gates.chain import chain_version
    from gates.tracking import promote
    from ragate_core.project import find_project_root

    chain, spec = _configured_chain()
    # The same identity the gate run recorded: the chain's version and its factory's import string.
    print(promote(find_project_root(), args.to, chain_version(chain, spec)))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from gates.tracking import rollback
    from ragate_core.project import find_project_root

    print(rollback(find_project_root()))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from gates.tracking import history
    from ragate_core.project import find_project_root

    rows = history(find_project_root())
    print(f"{'version':>7}  {'aliases':<18} {'chain':<16}  ci     staging prod   description")
    for row in rows:
        gates = row["gates"]
        print(
            f"{row['version']:>7}  {','.join(row['aliases']) or '-':<18} {row['chain_version'] or '-':<16}  "
            f"{gates['ci']:<6} {gates['staging']:<7} {gates['prod']:<6} {row['description'][:60]}"
        )
    return 0


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``ragate`` parser; ``only`` (a command's name) leaves out the other commands that
    live in their own modules."""
    parser = argparse.ArgumentParser(
        prog="ragate",
        description="ragate: a quality gate for RAG chatbots (offline, pytest-centric).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="index the corpus into Chroma (incremental)")
    p.add_argument(
        "--corpus", type=Path, metavar="DIR", help="folder of .md/.txt files (default: config corpus_dir)"
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question, or a JSONL file of questions")
    p.add_argument("question", nargs="?", type=_nonblank, help="the question to answer")
    p.add_argument(
        "--input", type=_existing_file, metavar="FILE.jsonl", help="rows with at least id and question"
    )
    p.add_argument(
        "--output", type=Path, metavar="FILE.jsonl", help="where batch answers go (written atomically)"
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("score", help="score existing answers (no generation)")
    p.add_argument(
        "--metrics",
        type=_metric_list,
        default="faithfulness,answer_relevancy,toxicity,pii",
        help="comma-separated metric names (default: faithfulness,answer_relevancy,toxicity,pii)",
    )
    p.add_argument(
        "--input",
        type=_input_spec,
        required=True,
        metavar="FILE",
        help="rows: id, question, answer, contexts (.jsonl, .csv or .parquet; with --engine spark also "
        "a table name)",
    )
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        metavar="FILE.jsonl",
        help="input rows plus scores and reasons: .jsonl, or .parquet (score__<metric> and "
        "reason__<metric> columns); with --engine spark also a new table name",
    )
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: this process (default); spark: a Spark session ([tool.ragate.spark], default local[N])",
    )
    p.add_argument("--spark-master", metavar="URL", help="Spark master, e.g. local[2] or spark://host:7077")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("calibrate", help="AUROC, precision and recall of each metric on labeled data")
    p.add_argument("--metrics", type=_metric_list, default="faithfulness,answer_relevancy,toxicity,pii")
    p.add_argument(
        "--gate-env", default="ci", choices=ENVIRONMENTS, help="profile whose thresholds to use (default: ci)"
    )
    p.add_argument(
        "--data", type=Path, metavar="DIR", help="calibration folder (default: datasets/calibration)"
    )
    p.add_argument("--output", type=Path, default=Path("reports/calibration.json"), metavar="FILE.json")
    p.add_argument(
        "--split",
        choices=["all", "train", "validation"],
        default="all",
        help="split of each labeled file to report (default: all = train and validation apart)",
    )
    p.add_argument(
        "--judge",
        choices=["offline", "llm"],
        default="offline",
        help="measure the offline metrics or their LLM-judge tier; exit 2 when no judge answers",
    )
    p.add_argument(
        "--suggest",
        action="store_true",
        help="print the per-case threshold whose false pass rate on the validation split is <= --target",
    )
    p.add_argument(
        "--target",
        type=float,
        default=0.05,
        metavar="RATE",
        help="false pass rate for --suggest (default 0.05)",
    )
    p.add_argument("--fit", action="store_true", help="refit the faithfulness combiner on the train splits")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "promote", help="move the staging or champion alias onto this chain, if its gates passed"
    )
    p.add_argument(
        "--to",
        required=True,
        choices=["staging", "champion"],
        help="staging needs the staging gates, "
        "champion the prod gates, passed for exactly this chain version",
    )
    p.set_defaults(func=cmd_promote)
    p = sub.add_parser(
        "rollback", help="move champion back to the previous version that passed the prod gates"
    )
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser("history", help="registered chain versions, their aliases and gate verdicts")
    p.set_defaults(func=cmd_history)
    for name, (module, adder) in PLUGGED_COMMANDS.items():
        if only is None or only == name:
            import importlib

            getattr(importlib.import_module(module), adder)(sub)
    # No prefix matching: --metric is not --metrics (a typo should be an error, not a guess).
    parser.allow_abbrev = False
    for command in sub.choices.values():
        command.allow_abbrev = False
    return parser


# Commands whose parsers live in their own modules, imported only when the command is asked
# for (or for --help): `ragate score` does not pay for `ragate serve`'s imports.
PLUGGED_COMMANDS = {
    "init": ("gates.init", "add_init_parser"),
    "serve": ("gates.serve", "add_serve_parser"),
    "feedback": ("gates.feedback", "add_feedback_parser"),
    "monitor": ("gates.monitor", "add_monitor_parser"),
}
BUILTIN_COMMANDS = ("ingest", "ask", "score", "calibrate", "promote", "rollback", "history")


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named on the line when it is known (so only its parser is built), else None."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in BUILTIN_COMMANDS or first in PLUGGED_COMMANDS else None


def _refuse_unknown_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Exit 2 naming an unknown ``--option`` of the command (and the closest known one)
    before argparse reports a required option as missing ("--too champion" is a typo of
    ``--to``, not a missing ``--to``)."""
    import difflib

    command = _command_of(argv)
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if command is None or not subparsers or command not in subparsers[0].choices:
        return
    known: list[str] = []
    pending = [subparsers[0].choices[command]]
    while pending:  # the command's options and those of its own subcommands ("feedback export")
        current = pending.pop()
        for action in current._actions:
            known += action.option_strings
            if isinstance(action, argparse._SubParsersAction):
                pending += list(action.choices.values())
    for token in argv:
        if token == "--":  # what follows is arguments, not options
            return
        option = token.split("=", 1)[0]
        if option.startswith("--") and option not in known:
            close = difflib.get_close_matches(option, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            subparsers[0].choices[command].error(f"unknown option {option}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv))
    _refuse_unknown_options(parser, argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        # Ctrl-C: no traceback; nothing half-written (outputs are written atomically).
        print(f"ragate {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ragate history | head -1`: the reader has gone; stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UsageError as exc:
        print(f"ragate {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        from gates.spark import SparkUnavailable
        from gates.tracking import TrackingError

        if not isinstance(exc, TrackingError | SparkUnavailable):
            raise
        print(f"ragate {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
