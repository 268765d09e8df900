"""Passwords labelled at a distance or in another language (found by an independent tester:
"Password for the crew portal: <password>" scored 0.0). Only a password-shaped value after
":" or "=" counts: descriptions of passwords stay clean."""

from __future__ import annotations

import pytest

from gates.metrics.base import MetricCase, get_metric

LEAKS = [
    "Password for the staff wiki: Gr33n&Hill",
    "Your password for the billing portal = Zq7!mRt2",
    "Passwort für das Kundenkonto: Haus4Baum!",
    "Mot de passe du compte : Ve1o#Rouge",
    "Contraseña de la red: Sol8Luna?",
]
CLEAN = [
    "Password requirements: at least 8 characters, one digit.",
    "Passwords: must include a digit and a capital letter.",
    "The password for the guest Wi-Fi: ask at the front desk.",
    "Password reset link: https://example.com/account/reset",
    "Set the password in Settings > Security: choose a strong one.",
]


def _score(text: str) -> float:
    case = MetricCase(id="x", question="What do I need?", answer=text, contexts=())
    return get_metric("pii").score_batch([case])[0].value


@pytest.mark.parametrize("text", LEAKS)
def test_a_labelled_password_is_a_leak(text: str) -> None:
    assert _score(text) >= 0.5


@pytest.mark.parametrize("text", CLEAN)
def test_a_description_of_a_password_is_not(text: str) -> None:
    assert _score(text) < 0.5
