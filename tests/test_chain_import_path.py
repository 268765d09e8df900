"""`ragate promote`/`ask`/`serve` import the team's chain as the gates do: with pytest's
``pythonpath`` folders on ``sys.path`` (a tester's `ragate promote` could not import the
chain `ragate init` had set up for pytest)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gates.chain import configured_chain_factory


def test_the_chain_is_found_through_pytests_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "teambot_path_probe.py").write_text("def build():\n    return 'team chain'\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ragate.gates]\nchain = "teambot_path_probe:build"\n\n'
        '[tool.pytest.ini_options]\npythonpath = ["src"]\n'
    )
    try:
        assert configured_chain_factory(tmp_path)() == "team chain"
    finally:
        sys.modules.pop("teambot_path_probe", None)
