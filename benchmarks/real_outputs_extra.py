"""More real outputs for faithfulness: the shipped chain answering questions written apart
from the golden set (measured with faithfulness 3.1.1; a 3.2 tuned with them was not taken).

    python benchmarks/real_outputs_extra.py generate --model gemma3-270m --out RAW.jsonl --index-dir DIR
    python benchmarks/real_outputs_extra.py merge --raw RAW1.jsonl RAW2.jsonl --labels LABELS.jsonl
    python benchmarks/real_outputs_extra.py measure [--newuser /work/newuser-data]

The questions below were written from the corpus before any answer was generated: facts
that differ per plan, person or product (where a small model names the wrong one), yes/no
questions whose true answer is "no" or that carry a false premise, and a few the corpus
does not answer. ``generate`` runs ``benchmarks/real_outputs.py``'s generator (the real
chain, guardrails on, as shipped) over them. ``merge`` writes the labeled rows to
``datasets/calibration/real_outputs_extra.jsonl`` (same fields and label rules as
``real_outputs.jsonl``; see that script's docstring). The split of a row is fixed by the
hash of its question id (``real_outputs.split_of``), decided before any score was seen.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import real_outputs as base
from _common import ROOT

DATASET = ROOT / "datasets" / "calibration" / "real_outputs_extra.jsonl"

# (id, question, ground truth, source ids)
QUESTIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "xq-001",
        "How quickly does support answer on the Starter plan?",
        "Within 1 business day.",
        ("support-hours",),
    ),
    (
        "xq-002",
        "How many automation runs does the Business plan include?",
        "75,000 automation runs per month.",
        ("automations",),
    ),
    (
        "xq-003",
        "What is the API rate limit on the Starter plan?",
        "300 requests per minute.",
        ("api-rate-limits",),
    ),
    (
        "xq-004",
        "How much storage does the Business plan include?",
        "2 TB of storage per workspace.",
        ("storage-limits",),
    ),
    (
        "xq-005",
        "What is the largest file I can upload on the Free plan?",
        "25 MB per file.",
        ("storage-limits",),
    ),
    ("xq-006", "How long is activity history kept on the Starter plan?", "180 days.", ("data-retention",)),
    ("xq-007", "How long are audit log entries kept on Enterprise?", "3 years.", ("audit-log",)),
    (
        "xq-008",
        "How many custom fields can a project have on the Starter plan?",
        "Up to 10 custom fields.",
        ("custom-fields",),
    ),
    (
        "xq-009",
        "Which shortcut adds a task from anywhere with the desktop app on a Mac?",
        "Cmd+Shift+Space.",
        ("desktop-app",),
    ),
    (
        "xq-010",
        "How many GitHub repositories can I connect on the Pro plan?",
        "An unlimited number.",
        ("integrations-github",),
    ),
    (
        "xq-011",
        "How many Slack channels can one project post to?",
        "Up to 5 Slack channels.",
        ("integrations-slack",),
    ),
    ("xq-012", "Which Windows version does the desktop app need?", "Windows 10 or later.", ("desktop-app",)),
    ("xq-013", "Which iOS version does the iPhone app need?", "iOS 16 or later.", ("mobile-apps",)),
    (
        "xq-014",
        "How many requests per minute does the search endpoint allow?",
        "30 requests per minute on every plan.",
        ("api-rate-limits",),
    ),
    ("xq-015", "How long is a code from an authenticator app valid?", "30 seconds.", ("two-factor-auth",)),
    (
        "xq-016",
        "How long are unsynced offline changes kept on my device?",
        "Up to 5 days.",
        ("offline-mode",),
    ),
    (
        "xq-017",
        "When does a guest invitation expire?",
        "After 10 days if it is not accepted.",
        ("guest-access",),
    ),
    (
        "xq-018",
        "How many guests can a workspace with 10 paid seats have?",
        "Up to 30 guests.",
        ("guest-access",),
    ),
    ("xq-019", "How many days does a trial extension add?", "7 more days.", ("free-trial",)),
    (
        "xq-020",
        "At what time are scheduled copies of recurring tasks created?",
        "At 00:00 in the workspace time zone.",
        ("recurring-tasks",),
    ),
    ("xq-021", "What is the maximum size of a CSV file I can import?", "10 MB.", ("import-from-csv",)),
    ("xq-022", "How long after an import can I undo it?", "Within 1 hour.", ("import-from-csv",)),
    ("xq-023", "When does a running timer stop by itself?", "After 10 hours.", ("time-tracking",)),
    (
        "xq-024",
        "How many items do list endpoints return per page by default?",
        "50 items per page.",
        ("api-rate-limits",),
    ),
    (
        "xq-025",
        "Can guests create new projects?",
        "No, guests cannot create new projects.",
        ("guest-access",),
    ),
    (
        "xq-026",
        "Is the calendar view available on the Free plan?",
        "Yes, the calendar view is available on every plan.",
        ("views",),
    ),
    (
        "xq-027",
        "Does Tasklane store my source code when I use the GitHub integration?",
        "No, Tasklane does not store your source code.",
        ("integrations-github",),
    ),
    (
        "xq-028",
        "Are attachments copied when a recurring task repeats?",
        "No, attachments are not copied.",
        ("recurring-tasks",),
    ),
    (
        "xq-029",
        "Can I upload attachments while offline?",
        "No, you cannot upload attachments while offline.",
        ("offline-mode",),
    ),
    (
        "xq-030",
        "Can I export the audit log as a CSV file?",
        "Yes, up to 50,000 entries per export.",
        ("audit-log",),
    ),
    (
        "xq-031",
        "Can admins edit other people's time entries?",
        "Yes, admins can edit everyone's time entries.",
        ("time-tracking",),
    ),
    (
        "xq-032",
        "Is the workload view included in the Pro plan?",
        "No, the workload view is on the Business and Enterprise plans.",
        ("views",),
    ),
    (
        "xq-033",
        "Do webhooks work with plain HTTP URLs?",
        "No, the webhook URL must use HTTPS; plain HTTP URLs are rejected.",
        ("webhooks",),
    ),
    (
        "xq-034",
        "Is the Slack integration limited to paid plans?",
        "No, it is available on every plan, including Free.",
        ("integrations-slack",),
    ),
    (
        "xq-035",
        "Can I mark time entries as billable on the Pro plan?",
        "No, billable time entries are on the Business and Enterprise plans.",
        ("time-tracking",),
    ),
    (
        "xq-036",
        "Is the daily digest sent at 09:00?",
        "No, it is sent at 08:00 in your local time zone.",
        ("notifications",),
    ),
    (
        "xq-037",
        "Is the GitHub integration available on the Free plan?",
        "No, it is not available on the Free plan.",
        ("integrations-github",),
    ),
    (
        "xq-038",
        "How do I use the live chat support included in the Starter plan?",
        "Live chat is for Business plan customers; Starter has e-mail support within 1 business day.",
        ("support-hours",),
    ),
    (
        "xq-039",
        "How do I turn on SMS codes for two-factor authentication?",
        "Tasklane does not send 2FA codes by SMS; use an authenticator app or a security key.",
        ("two-factor-auth",),
    ),
    (
        "xq-040",
        "Can I keep using Tasklane in a browser tab while offline?",
        "No, the web app does not support offline mode.",
        ("offline-mode",),
    ),
    ("xq-041", "Can I export my timeline view as a PDF?", "The documentation does not say.", ()),
    (
        "xq-042",
        "Does Tasklane offer a dedicated account manager on the Pro plan?",
        "The documentation does not say; a named customer success manager is an Enterprise feature.",
        (),
    ),
)


def write_questions(path: Path) -> None:
    rows = [
        {"id": i, "question": q, "ground_truth": gt, "source_ids": list(src), "tags": ["extra"]}
        for i, q, gt, src in QUESTIONS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def merge(raw_paths: list[Path], labels_path: Path) -> None:
    """Join raw answers with hand labels into ``real_outputs_extra.jsonl`` (atomically)."""
    raws = {r["id"]: r for path in raw_paths for r in base.read_jsonl(path)}
    order = {q[0]: n for n, q in enumerate(QUESTIONS)}
    rows: list[dict[str, Any]] = []
    labels = base.read_jsonl(labels_path)
    for n, label in enumerate(labels, 1):
        raw = raws.get(label["id"])
        if raw is None:
            raise SystemExit(f"{labels_path}:{n}: no raw answer with id {label['id']!r}")
        base.check_label(label, f"{labels_path}:{n}")
        row = {**{k: raw.get(k) for k in base.FIELDS}, **{k: label.get(k, "") for k in base.LABEL_FIELDS}}
        row["split"] = base.split_of(raw["case_id"])
        rows.append({k: row[k] for k in base.FIELDS})
    rows.sort(key=lambda r: (r["model"], order[r["case_id"]]))
    base.write_jsonl_atomic(DATASET, rows)
    print(f"{DATASET.relative_to(ROOT)}: {len(rows)} labeled answers")
    print(json.dumps(base.label_stats(rows), indent=2))


def measure(newuser: Path | None) -> None:
    """Faithfulness per labeled file and split (AUROC with its bootstrap 95% interval; at the
    metric's threshold the unfaithful answers that pass and the faithful ones that fail), the
    real answers pooled, and, with ``--newuser DIR``, the tester's faithfulness set (seen, so
    not held out). Writes ``benchmarks/results/faithfulness_real.json``."""
    import numpy as np

    from gates.calibrate import DATASETS, CalibrationRow, auroc, bootstrap_auroc, read_rows
    from gates.metrics.base import get_metric, passes
    from gates.scoring import score_batches

    metric = get_metric("faithfulness")

    def figures(labels: list[int], values: list[float]) -> dict[str, Any]:
        y, v = np.array(labels), np.array(values, dtype=float)
        low, high = bootstrap_auroc(y, v)
        ok = np.array([passes(metric, x, metric.default_threshold) for x in v], dtype=bool)
        return {
            "n": len(y),
            "unfaithful": int((y == 0).sum()),
            "auroc": round(auroc(y, v), 4),
            "auroc_95ci": [low, high],
            "unfaithful_passing": int((ok & (y == 0)).sum()),
            "faithful_failing": int((~ok & (y == 1)).sum()),
        }

    out: dict[str, Any] = {
        "metric_version": metric.version,
        "threshold": metric.default_threshold,
        "files": {},
    }
    pooled: dict[str, tuple[list[int], list[float]]] = {"train": ([], []), "validation": ([], [])}
    root = ROOT / "datasets" / "calibration"
    for dataset in DATASETS["faithfulness"]:
        rows = read_rows(root / dataset.file, dataset)
        scores = score_batches(metric, [r.case() for r in rows])
        for split in ("train", "validation"):
            kept = [(r.label_of(dataset.label), s.value) for r, s in zip(rows, scores) if r.split == split]
            labels, values = [k for k, _ in kept], [v for _, v in kept]
            out["files"][f"{dataset.file}:{split}"] = figures(labels, values)
            if dataset.file.startswith("real_outputs"):
                pooled[split][0].extend(labels)
                pooled[split][1].extend(values)
    out["real_answers_pooled"] = {split: figures(*pooled[split]) for split in pooled}
    if newuser is not None:
        rows = base.read_jsonl(newuser / "faithfulness.jsonl")
        labels = {r["id"]: int(r["faithful"]) for r in base.read_jsonl(newuser / "faithfulness_labels.jsonl")}
        cases = [CalibrationRow(**{**r, "faithful": bool(labels[r["id"]])}).case() for r in rows]
        values = [s.value for s in score_batches(metric, cases)]
        out["newuser_faithfulness_seen"] = figures([labels[r["id"]] for r in rows], values)
    from _common import write_result

    write_result("faithfulness_real", out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="answer the extra questions with one model")
    gen.add_argument("--model", choices=sorted(base.MODELS), required=True)
    gen.add_argument("--out", type=Path, required=True, help="raw rows (JSONL), appended to")
    gen.add_argument("--index-dir", type=Path, required=True, help="a Chroma folder for this process")
    mer = sub.add_parser("merge", help="join raw answers with hand labels")
    mer.add_argument("--raw", type=Path, nargs="+", required=True)
    mer.add_argument("--labels", type=Path, required=True)
    mea = sub.add_parser("measure", help="faithfulness figures per file and split")
    mea.add_argument("--newuser", type=Path, default=None, help="a folder with the tester's faithfulness set")
    args = parser.parse_args(argv)
    if args.command == "measure":
        measure(args.newuser)
    elif args.command == "generate":
        with tempfile.TemporaryDirectory() as tmp:
            questions = Path(tmp) / "questions.jsonl"
            write_questions(questions)
            base.GOLDEN = questions  # the generator reads its questions from this module global
            base.generate(args.model, args.out, args.index_dir, None)
    else:
        merge(args.raw, args.labels)


if __name__ == "__main__":
    sys.exit(main())
