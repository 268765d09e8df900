"""ragate's gate engine: profiles, metrics, verdicts, reports and the pytest plugin."""

from __future__ import annotations
