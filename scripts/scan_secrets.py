"""Fail when a tracked file holds something that looks like a secret (detect-secrets).

Labeled PII data and the tests of the PII metric hold *fictional* keys and cards on
purpose: they are listed below, and nothing else is exempt.
"""

from __future__ import annotations

import json
import subprocess
import sys

# Paths (regular expressions) whose secrets are fictional test data, on purpose.
FICTIONAL = [
    r"^datasets/calibration/",
    r"^datasets/adversarial/",
    r"^tests/test_metric_pii\.py$",
    r"^tests/test_pii_[a-z_]+\.py$",  # fictional keys and cards the PII tests must find
    r"^tests/test_guardrails.*\.py$",
    r"^gates/metrics/pii\.py$",
    r"^benchmarks/results/",  # measured figures; the hex strings in them are content hashes
    r"^gates/metrics/data/\w+_model\.json$",  # fitted metric models: sha256 of their training files
]


def main() -> int:
    files = subprocess.run(["git", "ls-files"], check=True, capture_output=True, text=True).stdout.split()
    # The keyword detector flags every `api_key_env = "OPENAI_API_KEY"` (the *name* of a
    # variable) and the word "secrets" itself; the key-format and entropy detectors (AWS,
    # GitHub, Slack, Stripe, JWT, private keys, high-entropy strings) stay on.
    cmd = [
        sys.executable, "-m", "detect_secrets", "scan",
        "--disable-plugin", "KeywordDetector",
        "--exclude-files", "|".join(FICTIONAL),
        *files,
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    results = json.loads(out)["results"]
    for path, found in sorted(results.items()):
        for item in found:
            print(f"{path}:{item['line_number']}: possible secret ({item['type']})")
    if results:
        count = sum(map(len, results.values()))
        print(
            f"secret scan: {count} possible secrets; remove them or, if fictional, "
            "add the path to FICTIONAL in scripts/scan_secrets.py",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: {len(files)} tracked files, no secrets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
