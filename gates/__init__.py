"""ragate's gate engine: profiles, metrics, verdicts, reports and the pytest plugin."""

from __future__ import annotations

# The environments a gate profile ships for (gates/profiles/<env>.yaml).
ENVIRONMENTS = ("ci", "staging", "prod")
