"""Guardrails around the chain: NeMo Guardrails with offline rails only.

Input rails (on the user's message, in order): ``mask_pii_input`` masks personal data
and secrets before anything else reads the message; ``injection``, ``data_request`` and
``toxic_input`` refuse prompt injections and jailbreaks, requests for other people's data
or the service's secrets, and abuse. Output rails (on the answer): ``toxic_output``
refuses a toxic answer, ``mask_pii_output`` masks personal data and secrets that are not
quoted from the documentation. See ``config/`` for the flows, :mod:`.actions` for the
actions and :mod:`.detectors` / :mod:`.pii` for the detectors.
"""

from __future__ import annotations

from rag.guardrails.rails import (
    INTERNAL_ERROR,
    GuardrailError,
    Guardrails,
    RailOutcome,
    default_guardrails,
    is_internal_error,
)

__all__ = [
    "INTERNAL_ERROR",
    "GuardrailError",
    "Guardrails",
    "RailOutcome",
    "default_guardrails",
    "is_internal_error",
]
