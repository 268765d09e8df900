"""The ci gate before and after round two's refactor: same verdict, same per-case scores?

Issue 9's "done when": *the ci gate gives the same verdict and the same per-case scores as
before on the same cache-free run*. "Before" is the commit before round two's first commit
(``f39769b~1``); "after" is the tree under test. Each tree is exported read-only (never
checked out) and gated cache-free with tracking off, with the same virtual environment,
importing that tree's own code (``PYTHONPATH`` = the tree, run from the tree)::

    git archive f39769b~1 | tar -x -C /work/before
    git archive HEAD | tar -x -C /work/after      # or a copy of the working tree
    cd /work/before && PYTHONPATH=$PWD nice .venv/bin/pytest -m gate --gate-env ci \\
        --gate-no-cache --gate-no-track --gate-report /tmp/ci_before quality
    (the same in /work/after with --gate-report /tmp/ci_after)

then::

    python benchmarks/ci_before_after.py --before /tmp/ci_before/gate-report.json \\
        --after /tmp/ci_after/gate-report.json --before-tree /work/before --after-tree /work/after \\
        --before-commit d6b28f7 --after-commit fad4a66

writes ``benchmarks/results/ci_before_after.json``: both verdicts and gate results, per
metric how many cases score the same (exactly, and to 4 decimals), the largest
difference, every differing case (with whether its answer text changed), the metric
versions found in each tree, and the explanation of each difference (:data:`WHY`).
Latency is wall-clock time: it always differs and is reported, not compared.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path
from typing import Any

from _common import write_result

# Why a metric's per-case scores may differ between the two trees: a change made on purpose
# in round two (commit named), read from the diffs of the two trees. A metric not listed here
# is expected to score the same (its method did not change).
WHY: dict[str, str] = {
    "faithfulness": "changed on purpose: faithfulness v2 (question-aware claims, attribute binding, "
    "language-aware, fitted combiner), commit 2e75222",
    "toxicity": "changed on purpose: toxicity 1.0 -> 2.0, the metric now calls the one detector it shares "
    "with the rails (ragate_core.toxicity, written in f39769b; the metric switched to it in 2e75222): names "
    "replaced by neutral stand-ins before scoring, toxicity kinds",
    "pii": "changed on purpose: pii 1.1 -> 1.2, more detectors (government ids, short phone numbers, "
    "full names with a title/birth date/health detail, full postal addresses), commit 2e75222; "
    "a span inside a longer, as probable one of the same kind is part of it, commit fad4a66",
    "latency": "wall-clock time of each generation: differs on every run (machine load)",
}
EXACT = 1e-9  # "the same" score: equal up to float noise


def metric_versions(tree: Path) -> dict[str, str]:
    """``name -> version`` of every metric class under ``tree/gates/metrics`` (read, not imported)."""
    out: dict[str, str] = {}
    for path in sorted((tree / "gates" / "metrics").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            found: dict[str, str] = {}
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                ):
                    found[stmt.targets[0].id] = stmt.value.value
            if "name" in found and "version" in found:
                out[found["name"]] = found["version"]
    return out


def summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "passed": report["passed"],
        "missing": report.get("missing", []),
        "profile_sha256": report.get("profile_sha256"),
        "chain_version": report.get("chain_version", {}),
        "cases": len(report["cases"]),
        "gates": {
            f"{g['metric']}.{g['rule']}": {
                "observed": g.get("observed"),
                "threshold": g.get("threshold"),
                "passed": g.get("passed"),
                "n_scored": g.get("n_scored"),
                "n_unscored": g.get("n_unscored"),
            }
            for g in report["gates"]
        },
    }


def without_latency(report: dict[str, Any]) -> bool:
    """Whether every gate but latency's passed (and some gate ran)."""
    others = [g for g in report["gates"] if g["metric"] != "latency"]
    return bool(others) and all(g["passed"] for g in others)


def compare_metric(name: str, before: dict[str, dict], after: dict[str, dict]) -> dict[str, Any]:
    common = sorted(set(before) & set(after))
    same_exact = same_4dp = 0
    biggest = 0.0
    differing = []
    for case_id in common:
        b, a = before[case_id]["scores"].get(name), after[case_id]["scores"].get(name)
        same_answer = before[case_id].get("answer") == after[case_id].get("answer")
        if b is None or a is None:
            if b is None and a is None:
                same_exact += 1
                same_4dp += 1
            else:
                differing.append({"id": case_id, "before": b, "after": a, "same_answer": same_answer})
            continue
        diff = abs(a - b)
        biggest = max(biggest, diff)
        same_exact += diff <= EXACT
        same_4dp += round(a, 4) == round(b, 4)
        if diff > EXACT:
            differing.append(
                {"id": case_id, "before": round(b, 6), "after": round(a, 6), "same_answer": same_answer}
            )
    return {
        "cases_compared": len(common),
        "same_exactly": same_exact,
        "same_to_4_decimals": same_4dp,
        "max_abs_difference": round(biggest, 6),
        "differing_cases": differing if name != "latency" else len(differing),
        "why_different": (WHY.get(name, "UNEXPLAINED: method unchanged") if differing else ""),
        "method_changed_note": WHY.get(name, "") if not differing else "",
    }


# Scores answer-only metrics in another tree's own code (run as a child process importing
# that tree): which commit moved a score, on the very answers of the run.
RESCORE = """
import json, sys
import gates
from gates.metrics.base import MetricCase, get_metric
names, cases = json.load(sys.stdin)
out = {"gates_from": gates.__file__}
for name in names:
    scores = get_metric(name).score_batch([MetricCase(c["id"], c["question"], c["answer"]) for c in cases])
    out[name] = {c["id"]: s.value for c, s in zip(cases, scores)}
print(json.dumps(out))
"""


def rescore(tree: Path, metrics: list[str], cases: list[dict[str, Any]]) -> dict[str, Any]:
    """``metrics`` (ones that read only the answer) scored on ``cases`` by ``tree``'s code."""
    import os
    import subprocess

    payload = json.dumps([metrics, [{k: c[k] for k in ("id", "question", "answer")} for c in cases]])
    done = subprocess.run(
        [sys.executable, "-c", RESCORE],
        input=payload,
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    if done.returncode != 0:
        raise SystemExit(f"rescoring in {tree} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def steps(
    before: dict[str, dict], trees: list[tuple[str, Path]], metrics: list[str], cases: list[dict[str, Any]]
) -> dict[str, Any]:
    """Per metric and tree: how many of the run's cases score as in the before report."""
    out: dict[str, Any] = {}
    for label, tree in trees:
        found = rescore(tree, metrics, cases)
        entry: dict[str, Any] = {"tree": str(tree), "gates_from": found["gates_from"]}
        for name in metrics:
            values = found[name]
            same = [
                abs((values[i] or 0.0) - (before[i]["scores"].get(name) or 0.0)) <= EXACT
                and (values[i] is None) == (before[i]["scores"].get(name) is None)
                for i in values
            ]
            entry[name] = {
                "same_as_before_report": sum(same),
                "of": len(same),
                "values": {i: None if v is None else round(v, 6) for i, v in values.items()},
            }
        out[label] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="gate-report.json of the before run")
    parser.add_argument("--after", type=Path, required=True, help="gate-report.json of the after run")
    parser.add_argument("--before-tree", type=Path, required=True, help="the exported before tree")
    parser.add_argument("--after-tree", type=Path, required=True, help="the exported after tree")
    parser.add_argument("--before-commit", required=True)
    parser.add_argument("--after-commit", required=True)
    parser.add_argument("--note", action="append", default=[], help="a line for the result's notes")
    parser.add_argument(
        "--rescore",
        action="append",
        default=[],
        metavar="LABEL=TREE",
        help="also score --rescore-metrics on the run's answers with TREE's code (repeatable)",
    )
    parser.add_argument("--rescore-metrics", default="toxicity,pii", help="answer-only metrics to rescore")
    args = parser.parse_args(argv)

    before = json.loads(args.before.read_text(encoding="utf-8"))
    after = json.loads(args.after.read_text(encoding="utf-8"))
    cases_before = {c["id"]: c for c in before["cases"]}
    cases_after = {c["id"]: c for c in after["cases"]}
    metrics = sorted(set(before.get("thresholds", {})) | set(after.get("thresholds", {})))
    versions_before, versions_after = metric_versions(args.before_tree), metric_versions(args.after_tree)
    common = sorted(set(cases_before) & set(cases_after))
    changed = [i for i in common if cases_before[i].get("answer") != cases_after[i].get("answer")]
    result = {
        "how": (
            "each tree exported with git archive, gated with the same venv importing its own code: "
            "pytest -m gate --gate-env ci --gate-no-cache --gate-no-track quality (niced, in parallel)"
        ),
        "before": {"commit": args.before_commit, **summary(before)},
        "after": {"commit": args.after_commit, **summary(after)},
        "same_verdict": before["passed"] == after["passed"],
        # Latency is wall-clock time on a shared machine: the verdict of every other gate.
        "same_verdict_without_latency": without_latency(before) == without_latency(after),
        "verdict_without_latency": {"before": without_latency(before), "after": without_latency(after)},
        "same_case_ids": set(cases_before) == set(cases_after),
        "only_before": sorted(set(cases_before) - set(cases_after)),
        "only_after": sorted(set(cases_after) - set(cases_before)),
        "same_answers": len(common) - len(changed),
        "different_answers": changed,
        "metric_versions": {
            m: {"before": versions_before.get(m), "after": versions_after.get(m)} for m in metrics
        },
        "per_metric": {m: compare_metric(m, cases_before, cases_after) for m in metrics},
        "notes": args.note,
    }
    if args.rescore:
        trees = [(label, Path(tree)) for label, _, tree in (r.partition("=") for r in args.rescore)]
        wanted = [m for m in args.rescore_metrics.split(",") if m]
        answered = [cases_after[i] for i in common if i not in changed]
        result["rescored_on_the_same_answers"] = steps(cases_before, trees, wanted, answered)
    write_result("ci_before_after", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
