"""The ``ragate`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gates import ENVIRONMENTS
from rag.errors import UsageError

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


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.config import load_config
    from rag.ingest import ingest

    config = load_config()
    corpus = args.corpus or config.path(config.corpus_dir)
    stats = ingest(config, corpus_dir=corpus)
    print(f"ingested {corpus}: {stats.summary()}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from gates.schema import QuestionRow
    from rag.chain import build_chain
    from rag.config import load_config
    from rag.jsonl import read_jsonl, write_jsonl

    if (args.input is None) == (args.question is None):
        raise UsageError(
            "ragate ask: give either a QUESTION or --input FILE.jsonl (with --output FILE.jsonl)"
        )
    if args.input is not None and args.output is None:
        raise UsageError("ragate ask --input: --output FILE.jsonl is required in batch mode")
    if args.output is not None and args.input is None:
        raise UsageError("ragate ask --output: only valid with --input FILE.jsonl")
    # Validate all input before the model loads, so a bad line fails in milliseconds.
    rows = read_jsonl(args.input, QuestionRow) if args.input else []
    chain = build_chain(load_config())
    # Fix (tests/test_cli.py): an index that was never built made every answer "I don't
    # know" with no hint of why; say what to run instead.
    collection = getattr(chain.store, "_collection", None)
    if collection is not None and collection.count() == 0:
        index_dir = chain.config.path(chain.config.index_dir)
        raise UsageError(f"{index_dir}: the index is empty; run `ragate ingest` first")
    if args.question is not None:
        result = chain.invoke(args.question)
        print(result.answer)
        if result.sources:
            print("\nsources: " + ", ".join(dict.fromkeys(result.sources)))
        if result.blocked:
            print(f"(blocked by rail: {result.rail})")
        return 0

    from tqdm import tqdm

    out = []
    for row in tqdm(rows, desc="ask", unit="q", file=sys.stderr, disable=None):
        result = chain.invoke(row.question)
        out.append(
            {
                "id": row.id,
                "question": result.question,  # as the rails masked it: no PII leaves in a file
                "answer": result.answer,
                "contexts": result.contexts,
                "sources": result.sources,
                "latency_ms": result.latency_ms,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "blocked": result.blocked,
                "rail": result.rail,
            }
        )
    write_jsonl(args.output, out)
    print(f"wrote {len(out)} answers to {args.output}", file=sys.stderr)
    return 0


def _metric_list(value: str) -> list[str]:
    from gates.metrics.base import metric_names

    names = [v.strip() for v in value.split(",") if v.strip()]
    known = metric_names()
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}"
        )
    return names


def cmd_score(args: argparse.Namespace) -> int:
    """Score existing answers without generating (``ragate score``)."""
    from gates.metrics.base import MetricCase, get_metric
    from gates.schema import AnswerRow
    from rag.jsonl import read_jsonl, write_jsonl

    rows = read_jsonl(args.input, AnswerRow)
    cases = [
        MetricCase(
            id=r.id,
            question=r.question,
            answer=r.answer,
            contexts=tuple(r.contexts),
            ground_truth=r.ground_truth,
            answerable=r.answerable
            if r.answerable is not None
            else (bool(r.source_ids) if r.source_ids is not None else None),
            latency_ms=r.latency_ms,
        )
        for r in rows
    ]
    scores = {name: get_metric(name).score_batch(cases) for name in args.metrics}
    out = []
    for i, row in enumerate(rows):
        data = row.model_dump(exclude_unset=True)
        data["scores"] = {name: scores[name][i].value for name in args.metrics}
        data["reasons"] = {name: scores[name][i].reason for name in args.metrics}
        out.append(data)
    write_jsonl(args.output, out)
    unscored = sum(v is None for row in out for v in row["scores"].values())
    print(
        f"scored {len(out)} rows with {', '.join(args.metrics)} -> {args.output} ({unscored} unscored)",
        file=sys.stderr,
    )
    return 1 if unscored else 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure each metric on the labeled calibration data (``ragate calibrate``)."""
    import json

    from gates.calibrate import FILES, calibrate_metric
    from gates.profile import load_profile
    from rag.config import find_project_root
    from rag.jsonl import write_text

    root = find_project_root()
    profile = load_profile(args.gate_env, root)
    data_dir = args.data or root / "datasets" / "calibration"
    results = []
    print(
        f"{'metric':<18} {'n':>4} {'viol.':>5} {'AUROC':>6} {'thr':>5} {'prec.':>6} {'recall':>6} {'FPR':>6}"
    )
    for name in args.metrics:
        gate = profile.metrics.get(name)
        threshold = gate.threshold if gate else None
        cal = calibrate_metric(name, data_dir / FILES[name], threshold)
        results.append(cal.to_dict())
        print(
            f"{name:<18} {cal.n:>4} {cal.n_violations:>5} {cal.auroc:>6.3f} {cal.threshold:>5.2f} "
            f"{cal.precision:>6.3f} {cal.recall:>6.3f} {cal.false_positive_rate:>6.3f}"
            + (f"  ({cal.unscored} unscored)" if cal.unscored else "")
        )
    write_text(args.output, json.dumps({"profile": args.gate_env, "metrics": results}, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Move an alias onto this chain version, only if its gate run passed."""
    from gates.engine import chain_version, configured_chain_factory
    from gates.tracking import promote
    from rag.config import find_project_root

    root = find_project_root()
    print(promote(root, args.to, chain_version(configured_chain_factory(root)())))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from gates.tracking import rollback
    from rag.config import find_project_root

    print(rollback(find_project_root()))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from gates.tracking import history
    from rag.config import find_project_root

    rows = history(find_project_root())
    print(f"{'version':>7}  {'aliases':<18} {'chain':<16}  ci     staging prod   description")
    for row in rows:
        gates = row["gates"]
        print(
            f"{row['version']:>7}  {','.join(row['aliases']) or '-':<18} {row['chain_version'] or '-':<16}  "
            f"{gates['ci']:<6} {gates['staging']:<7} {gates['prod']:<6} {row['description'][:60]}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
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
        type=_existing_file,
        required=True,
        metavar="FILE.jsonl",
        help="rows: id, question, answer, contexts",
    )
    p.add_argument(
        "--output", type=Path, required=True, metavar="FILE.jsonl", help="input rows plus scores and reasons"
    )
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"ragate {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        from gates.tracking import TrackingError

        if not isinstance(exc, TrackingError):
            raise
        print(f"ragate {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
