"""ragate's gate engine: profiles, metrics, verdicts, reports and the pytest plugin.

``from gates import evaluate`` is the Python entry point (:mod:`gates.api`); it is
imported on first use, so importing ``gates`` (as the pytest plugin does) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gates.api import Evaluation, evaluate

__all__ = ["ENVIRONMENTS", "Evaluation", "evaluate"]

# The environments a gate profile ships for (gates/profiles/<env>.yaml).
ENVIRONMENTS = ("ci", "staging", "prod")

_LAZY = {"evaluate": "gates.api", "Evaluation": "gates.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gates' has no attribute {name!r}")
