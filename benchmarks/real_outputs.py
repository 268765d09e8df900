"""Real outputs of the shipped chain as labeled data for the answer metrics.

Three steps, each a sub-command:

    python benchmarks/real_outputs.py generate --model smollm2-135m-instruct --out RAW.jsonl
    python benchmarks/real_outputs.py merge --raw RAW1.jsonl RAW2.jsonl --labels LABELS.jsonl
    python benchmarks/real_outputs.py measure [--raw RAW1.jsonl RAW2.jsonl]

``generate`` runs the real chain (``rag.chain.build_chain``, guardrails on, as shipped)
over every golden question with one packaged model and the prompt style that suits it,
appending one raw row per answer (resumable: ids already in ``--out`` are skipped).

``merge`` joins raw rows with hand labels (one JSON object per answer: ``id`` as
``"<model>:<case id>"``, ``faithful``, ``correct``, ``kind``, ``wrong_span``,
``label_note``) into ``datasets/calibration/real_outputs.jsonl``, written atomically.
Labels are judged by a person reading the answer against its contexts (``faithful``)
and against the case's ground truth (``correct``), never by running a metric. Labels
already in the dataset are kept for answers that did not change.

How the labels were decided:

- ``faithful``: every claim of the answer is supported by its contexts (a claim about
  another subject than the one asked counts as unsupported: "1 business day" answered to
  a question about Pro, when 1 business day is Starter's). An abstention, a refusal, a
  blocked answer and a vacuous one ("you can use the following methods:") are faithful.
- ``correct``: right with respect to ``ground_truth``. An unanswerable case is correct
  exactly when it declines; an answerable one that declines is not. A yes/no answer with
  the ground truth's polarity and nothing wrong is correct even when it leaves out
  detail; an answer that leaves out the point of the ground truth (a list missing a
  plan, a location instead of a method) is not.
- ``kind`` of the first unfaithful claim: ``number`` (a quantity, price, duration, unit
  or limit other than the context's for that subject), ``entity`` (a wrong plan, role,
  feature, key, time zone, format), ``negation`` (a statement that denies what the
  context asserts, or the reverse), ``conflict`` (another contradiction: a wrong
  condition, action or mode), ``baseless`` (a claim the contexts do not cover at all),
  ``yes_no`` (a yes/no answer whose polarity the contexts do not support, including
  "Yes." to an unanswerable question); ``none`` when faithful.
- ``wrong_span``: the unsupported part, quoted from the answer.

``measure`` scores the dataset with today's metrics and writes
``benchmarks/results/real_outputs.json``: AUROC per split (the validation split is the
one that counts; nothing is tuned on it) and, per gate profile, the share of unfaithful
(validation) answers whose faithfulness passes the profile's per-case threshold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, write_result

GOLDEN = ROOT / "datasets" / "golden" / "qa.jsonl"
DATASET = ROOT / "datasets" / "calibration" / "real_outputs.jsonl"
PROFILES = ("ci", "staging", "prod")

# The packaged models and the prompt style each needs (see benchmarks/model_choice.py).
MODELS = {
    "smollm2-135m-instruct": "answer-v1",  # instruction-tuned: chat template
    "gemma3-270m": "answer-completion-v1",  # base model: completion prompt with examples
}
KINDS = ("number", "entity", "negation", "conflict", "baseless", "yes_no", "none")
LABEL_FIELDS = ("faithful", "correct", "kind", "wrong_span", "label_note")
FIELDS = (
    "id",
    "case_id",
    "model",
    "question",
    "answer",
    "contexts",
    "sources",
    "source_ids",
    "ground_truth",
    "answerable",
    "blocked",
    "rail",
    "faithful",
    "correct",
    "kind",
    "wrong_span",
    "split",
    "label_note",
)


def split_of(case_id: str) -> str:
    """``"validation"`` or ``"train"``, stable per question (both models' answers alike)."""
    return "validation" if int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % 2 == 0 else "train"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def generate(model: str, out: Path, index_dir: Path, limit: int | None) -> None:
    """Answer every golden question with ``model``; append raw rows to ``out``."""
    from rag.chain import build_chain
    from rag.config import load_config
    from rag.ingest import ingest, open_store

    cases = read_jsonl(GOLDEN)[:limit] if limit else read_jsonl(GOLDEN)
    done = {r["case_id"] for r in read_jsonl(out)} if out.is_file() else set()
    # Its own index (and model) folder: two generating processes never share one Chroma
    # path, nor assemble Gemma's weights into the same file at once.
    config = load_config(
        ROOT, index_dir=index_dir, cache_dir=index_dir.parent / "cache", model=model, prompt=MODELS[model]
    )
    ingest(config, store=open_store(config))
    chain = build_chain(config)
    print(f"{model}: {len(done)} done, {len(cases) - len(done)} to go; chain {chain.version()}", flush=True)
    with out.open("a", encoding="utf-8") as handle:
        for n, case in enumerate(cases, 1):
            if case["id"] in done:
                continue
            start = time.perf_counter()
            answer = chain.invoke(case["question"])
            row = {
                "id": f"{model}:{case['id']}",
                "case_id": case["id"],
                "model": model,
                "question": case["question"],
                "answer": answer.answer,
                "contexts": answer.contexts,
                "sources": answer.sources,
                "ground_truth": case["ground_truth"],
                "source_ids": case["source_ids"],
                "answerable": bool(case["source_ids"]),
                "blocked": answer.blocked,
                "rail": answer.rail,
                "latency_ms": answer.latency_ms,
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            took = time.perf_counter() - start
            print(f"{model} {n}/{len(cases)} {case['id']} {took:.1f}s: {answer.answer[:90]!r}", flush=True)


def check_label(label: dict[str, Any], where: str) -> None:
    for key in ("faithful", "correct"):
        if not isinstance(label.get(key), bool):
            raise SystemExit(f"{where}: {key!r} must be true or false, got {label.get(key)!r}")
    if label.get("kind") not in KINDS:
        raise SystemExit(f"{where}: kind must be one of {', '.join(KINDS)}, got {label.get('kind')!r}")
    if label["faithful"] != (label["kind"] == "none"):
        raise SystemExit(f"{where}: kind 'none' exactly when faithful (got {label['kind']!r})")


def merge(raw_paths: list[Path], labels_path: Path | None) -> None:
    """Join raw answers with labels into the dataset (labeled rows only, stable order)."""
    raws = {r["id"]: r for path in raw_paths for r in read_jsonl(path)}
    labels: dict[str, dict[str, Any]] = {}
    if DATASET.is_file():
        # Labels already in the dataset hold while the answer they judge is unchanged.
        for row in read_jsonl(DATASET):
            raw = raws.get(row["id"])
            if raw is None or raw["answer"] == row["answer"]:
                labels[row["id"]] = {k: row[k] for k in ("id", *LABEL_FIELDS)}
                raws.setdefault(row["id"], row)
    if labels_path is not None:
        for n, label in enumerate(read_jsonl(labels_path), 1):
            labels[label["id"]] = label
            if label["id"] not in raws:
                raise SystemExit(f"{labels_path}:{n}: no raw answer with id {label['id']!r}")
    order = {case["id"]: i for i, case in enumerate(read_jsonl(GOLDEN))}
    rows = []
    for key in sorted(labels, key=lambda k: (raws[k]["model"], order[raws[k]["case_id"]])):
        label, raw = labels[key], raws[key]
        check_label(label, f"label {key}")
        row = {**{k: raw.get(k) for k in FIELDS}, **{k: label.get(k, "") for k in LABEL_FIELDS}}
        row["split"] = split_of(raw["case_id"])
        rows.append({k: row[k] for k in FIELDS})
    DATASET.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(DATASET, rows)
    print(f"{DATASET.relative_to(ROOT)}: {len(rows)} labeled answers")
    print(json.dumps(label_stats(rows), indent=2))


def label_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        kinds: dict[str, int] = {}
        for r in mine:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        stats[model] = {
            "n": len(mine),
            "faithful_share": round(sum(r["faithful"] for r in mine) / len(mine), 4),
            "correct_share": round(sum(r["correct"] for r in mine) / len(mine), 4),
            "blocked": sum(bool(r["blocked"]) for r in mine),
            "kinds": dict(sorted(kinds.items())),
            "validation": sum(r["split"] == "validation" for r in mine),
        }
    return stats


def profile_threshold(env: str, metric: str) -> float | None:
    import yaml

    data = yaml.safe_load((ROOT / "gates" / "profiles" / f"{env}.yaml").read_text(encoding="utf-8"))
    gate = (data.get("metrics") or {}).get(metric) or {}
    return gate.get("threshold")


def measure_metric(name: str, label_key: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """AUROC per split, and per profile the share of bad answers that pass the threshold."""
    import numpy as np

    from gates.calibrate import auroc
    from gates.metrics.base import get_metric, metric_names, passes
    from gates.scoring import metric_case  # the row -> MetricCase of every scoring path

    if name not in metric_names():
        return {"skipped": f"metric {name!r} is not registered"}
    metric = get_metric(name)
    try:
        scores = metric.score_batch([metric_case(r) for r in rows])
    except Exception as exc:  # another metric's figures still count; this one reports why not
        return {"error": f"{type(exc).__name__}: {exc}"}
    sign = 1.0 if metric.direction == "higher_is_better" else -1.0
    out: dict[str, Any] = {"version": metric.version, "direction": metric.direction}
    for split in ("validation", "train", "all"):
        kept = [
            (r, s.value)
            for r, s in zip(rows, scores, strict=True)
            if (split == "all" or r["split"] == split) and s.value is not None
        ]
        n = sum(split == "all" or r["split"] == split for r in rows)
        labels = np.array([int(r[label_key]) for r, _ in kept])
        values = np.array([sign * v for _, v in kept], dtype=float)
        entry: dict[str, Any] = {
            "n": n,
            "unscored": n - len(kept),
            "good": int(labels.sum()),
            "bad": int(len(labels) - labels.sum()),
            "auroc": round(auroc(labels, values), 4),
            "per_model": {},
            "profiles": {},
        }
        for model in MODELS:
            sub = [(r, v) for r, v in kept if r["model"] == model]
            lab = np.array([int(r[label_key]) for r, _ in sub])
            val = np.array([sign * v for _, v in sub], dtype=float)
            entry["per_model"][model] = {"n": len(sub), "auroc": round(auroc(lab, val), 4)}
        bad = [(r, v) for r, v in kept if not r[label_key]]
        good = [(r, v) for r, v in kept if r[label_key]]
        for env in PROFILES:
            configured = profile_threshold(env, name)
            threshold = metric.default_threshold if configured is None else configured
            passing_bad = [r["id"] for r, v in bad if passes(metric, v, threshold)]
            by_kind: dict[str, list[int]] = {}
            for r, v in bad:
                counts = by_kind.setdefault(r["kind"], [0, 0])
                counts[0] += 1
                counts[1] += int(passes(metric, v, threshold))
            entry["profiles"][env] = {
                "threshold": threshold,
                "threshold_from": f"gates/profiles/{env}.yaml"
                if configured is not None
                else "metric default",
                "bad_pass_share": round(len(passing_bad) / len(bad), 4) if bad else None,
                # Per kind of unfaithfulness (the faithful label's kinds): [bad answers, passing].
                "bad_pass_by_kind": dict(sorted(by_kind.items())),
                "good_fail_share": (
                    round(sum(not passes(metric, v, threshold) for _, v in good) / len(good), 4)
                    if good
                    else None
                ),
                "bad_passing": passing_bad if split == "validation" else len(passing_bad),
            }
        out[split] = entry
    return out


def generation_stats(raw_paths: list[Path]) -> dict[str, Any]:
    """Latency of the generating runs (raw rows keep it; the dataset does not)."""
    from _common import percentile

    raws = [r for path in raw_paths for r in read_jsonl(path)]
    out = {}
    for model in sorted({r["model"] for r in raws}):
        latencies = [r["latency_ms"] for r in raws if r["model"] == model]
        out[model] = {
            "answers": len(latencies),
            "prompt": MODELS[model],
            "latency_ms_p50": round(percentile(latencies, 50), 1),
            "latency_ms_p95": round(percentile(latencies, 95), 1),
        }
    return out


def measure(raw_paths: list[Path]) -> None:
    rows = read_jsonl(DATASET)
    result = {
        "dataset": str(DATASET.relative_to(ROOT)),
        "split_rule": "validation when int(sha256(case_id), 16) % 2 == 0; nothing is fitted on it",
        "generation": generation_stats(raw_paths) if raw_paths else None,
        "labels": label_stats(rows),
        "faithfulness": measure_metric("faithfulness", "faithful", rows),
        "answer_correctness": measure_metric("answer_correctness", "correct", rows),
    }
    write_result("real_outputs", result)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="answer the golden questions with one model")
    gen.add_argument("--model", choices=sorted(MODELS), required=True)
    gen.add_argument("--out", type=Path, required=True, help="raw rows (JSONL), appended to")
    gen.add_argument("--index-dir", type=Path, required=True, help="a Chroma folder for this process")
    gen.add_argument("--limit", type=int, default=None, help="first N golden cases (default: all)")
    mer = sub.add_parser("merge", help="join raw answers with hand labels into the dataset")
    mer.add_argument("--raw", type=Path, nargs="+", required=True)
    mer.add_argument("--labels", type=Path, default=None)
    mea = sub.add_parser("measure", help="score the dataset and write benchmarks/results/real_outputs.json")
    mea.add_argument("--raw", type=Path, nargs="*", default=[], help="raw rows, for generation latency")
    args = parser.parse_args(argv)
    if args.command == "generate":
        generate(args.model, args.out, args.index_dir, args.limit)
    elif args.command == "merge":
        merge(args.raw, args.labels)
    else:
        measure(args.raw)


if __name__ == "__main__":
    sys.exit(main())
