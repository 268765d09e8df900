"""Where the project is and what its ``[tool.ragate]`` table says.

Both the system under test (``rag/``) and the harness (``gates/``) read the project's
``pyproject.toml``; neither owns it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ragate_core.errors import UsageError


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder upward holding a ``pyproject.toml`` with ``[tool.ragate]``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "ragate" in _read_toml(pyproject).get("tool", {}):
            return folder
    return here


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc


def tool_table(root: Path) -> dict[str, Any]:
    """The ``[tool.ragate]`` table of the project's pyproject (empty if none)."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    return dict(_read_toml(pyproject).get("tool", {}).get("ragate", {}))


def pytest_pythonpath(root: Path) -> list[Path]:
    """The folders of ``[tool.pytest.ini_options] pythonpath``, resolved against ``root``
    (what pytest puts on ``sys.path``; empty if none)."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return []
    entries = (
        _read_toml(pyproject).get("tool", {}).get("pytest", {}).get("ini_options", {}).get("pythonpath", [])
    )
    if isinstance(entries, str):
        entries = entries.split()
    return [(root / e).resolve() for e in entries if isinstance(e, str)]
