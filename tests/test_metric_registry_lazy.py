"""Scoring one built-in metric imports only its own module (gates.metrics.base.BUILTIN_MODULES),
and that map names exactly what the built-in modules register."""

from __future__ import annotations

import subprocess
import sys

from gates.metrics import base


def test_the_map_is_what_the_modules_register() -> None:
    base._load_builtin()
    modules = {f"gates.metrics.{m}" for m in base.BUILTIN_MODULES.values()}
    builtin = {n for n, f in base._REGISTRY.items() if f.__module__ in modules}  # tests may add others
    assert builtin == set(base.BUILTIN_MODULES)
    for name, module in base.BUILTIN_MODULES.items():
        assert base._REGISTRY[name].__module__ == f"gates.metrics.{module}", name


def test_one_metric_imports_one_metric_module() -> None:
    code = (
        "import sys\n"
        "from gates.metrics.base import get_metric, is_metric\n"
        "assert is_metric('pii')\n"
        "get_metric('pii')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('gates.metrics.'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "gates.metrics.faithfulness" not in out and "gates.metrics.toxicity" not in out, out
    assert "gates.metrics.pii" in out, out


def test_an_unknown_name_is_looked_up_everywhere() -> None:
    assert not base.is_metric("pi") and base.is_metric("faithfulness")


def test_a_metric_listed_twice_is_a_usage_error(tmp_path) -> None:
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"id": "1", "question": "Q?", "answer": "A.", "contexts": ["A."]}\n')
    out = tmp_path / "o.jsonl"
    command = ["score", "--input", str(rows), "--output", str(out), "--metrics", "pii,pii"]
    run = subprocess.run([sys.executable, "-m", "gates.cli", *command], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "pii listed more than once; name each metric once" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "o.jsonl").exists()
