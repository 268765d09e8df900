"""The ``ragate`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
                "question": row.question,
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

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


# Commands defined by other modules of gates (score, calibrate, promote, ...).
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"ragate {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
