"""Entry point of the Databricks gate job (databricks.yml): run the gates for one environment.

The bundle syncs the project's profiles, datasets and quality/ suites next to this file and
installs the ragate wheel on the cluster; this runs ``pytest -m gate`` there exactly as
``make gate`` does locally and exits with pytest's status (non-zero when a gate fails).

Usage: databricks_gate.py --gate-env staging [--gate-report DIR] [extra pytest options]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "NEMO_GUARDRAILS_NO_USAGE_STATS": "1",
    "ANONYMIZED_TELEMETRY": "False",
}


def main(argv: list[str]) -> int:
    import pytest

    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    project = Path(__file__).resolve().parents[1]  # the bundle's synced project folder
    os.chdir(project)
    return int(pytest.main(["-m", "gate", "-p", "no:cacheprovider", *argv]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
