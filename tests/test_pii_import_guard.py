"""Building the presidio analyzer imports neither transformers nor torch (presidio and thinc
import them only inside ``try/except ImportError``, for features the masker does not use),
and both still import normally afterwards."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from ragate_core.pii import analyzer, mask_pii
analyzer()
print(mask_pii("Call Jane Roe at jane.roe@example.org", names=True)[0])
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
import torch  # importable afterwards: the block is lifted
print("torch", bool(torch.__version__))
"""


def test_the_analyzer_loads_without_torch_or_transformers_and_they_import_afterwards() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    masked, loaded, torch = run.stdout.strip().splitlines()[-3:]
    assert masked == "Call <PERSON> at <EMAIL_ADDRESS>"
    assert loaded == "[]"
    assert torch == "torch True"
