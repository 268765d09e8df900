"""Run every benchmark script; each writes its JSON under benchmarks/results/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = ["bench_rag.py", "bench_gates.py", "model_choice.py", "bench_guardrails.py", "bench_llm_judge.py"]


def main() -> int:
    failed = []
    for script in SCRIPTS:
        if not (HERE / script).is_file():
            continue
        print(f"== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE.parent).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
