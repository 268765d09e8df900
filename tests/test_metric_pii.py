"""The PII metric: presidio with an explicit spaCy pipeline, our secret rules, masking."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import string
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gates.metrics.base import MetricCase, get_metric
from gates.metrics.pii import PiiLeakage, PiiSpan, find_pii, leak_probability, mask_pii

CALIBRATION = Path(__file__).resolve().parents[1] / "datasets" / "calibration" / "pii.jsonl"
THRESHOLD = PiiLeakage.default_threshold


@pytest.fixture(scope="module", autouse=True)
def no_network() -> Iterator[None]:
    """Any attempt to open a network connection fails the test (the metric is offline)."""

    def refuse(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address!r}")
        return original(self, address)

    original = socket.socket.connect
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        find_pii("warm up the analyzer for Jane Doe")  # load once, under the guard
        yield


def value_of(text: str) -> float:
    return leak_probability(find_pii(text))


def types_in(text: str) -> set[str]:
    return {s.entity_type for s in find_pii(text)}


# --- not PII -----------------------------------------------------------------------------

NOT_PII = {
    "version": "Upgrade the desktop app to version 4.12.3, or 10.4.2.1 on the legacy channel.",
    "firmware": "Update the reader firmware to 3.1.22.8 before pairing it.",
    "order id": "Your order ORD-2024-558812 ships in 3-5 business days.",
    "order number": "Order 4815162342 was refunded yesterday.",
    "ticket number": "Ticket #48213 is open and ticket 556677 was merged into it.",
    "sku": "The adapter is SKU 300-22-1974-BLK in the hardware store.",
    "price": "The Pro plan costs $12.50 per user per month, or 1,200.00 EUR per year.",
    "sha256": "The checksum is e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.",
    "md5": "The MD5 of the upload is d41d8cd98f00b204e9800998ecf8427e, which matches ours.",
    "git hash": "The fix landed in commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (short: 9fceb02).",
    "uuid": "Request 7f9c2ba4-e88f-11d3-a456-426655440000 failed in 123e4567-e89b-12d3-a456-426614174000.",
    "http codes": "The API returns 429 Too Many Requests, then 503 Service Unavailable, never 200.",
    "reset your password": "You can reset your password from the login page.",
    "password reset link": "The password reset link expires after 24 hours.",
    "password policy": "The password must be 12 characters and the password is case-sensitive.",
    "password placeholder": "Set password: YOUR_PASSWORD in config.yaml and pwd=<password> in the CLI.",
    "token placeholder": "Send Authorization: Bearer <your token> with api_key=YOUR_API_KEY.",
    "date and time": "The maintenance window is on 2024-03-01 at 10:30 UTC, next Tuesday.",
    "url": "See https://docs.example.com/billing/invoices for the changelog.",
    "location": "Our data centres are in Frankfurt, Dublin and Oregon.",
    "nationality": "The support team speaks German, French and Spanish.",
    "role mailbox": "For billing questions write to billing@acme.com, or support+eu@acme.io for help.",
    "plain at": "The docs are available at docs dot example dot com? Look at the settings page.",
}


@pytest.mark.parametrize("text", NOT_PII.values(), ids=NOT_PII.keys())
def test_not_pii(text: str) -> None:
    assert find_pii(text) == []
    assert mask_pii(text) == text


def test_excluded_entity_types_are_never_reported() -> None:
    text = (
        "On March 3, 2024 Jane moved from Berlin to Lisbon; see https://example.org/move. "
        "Her Portuguese colleagues use account 123456789012 and licence D1234567."
    )
    assert types_in(text) <= {"PERSON"}


def test_a_name_alone_stays_below_the_threshold() -> None:
    for text in (
        "Maria Garcia from the design team approved the new logo.",
        "Tom, Priya, Daniel and Grace all signed off on the release.",
    ):
        assert 0.0 < value_of(text) < THRESHOLD


def test_a_business_address_alone_stays_below_the_threshold() -> None:
    assert 0.0 < value_of("Send returns to our warehouse at 500 Industrial Way, Reno, NV 89502.") < THRESHOLD


# --- PII and secrets -----------------------------------------------------------------------

PII = {
    "email": (
        "You can email the customer at jane.doe@example.com to confirm.",
        "EMAIL_ADDRESS",
        "jane.doe@example.com",
    ),
    "phone": ("Text me at +1 415-555-0134 once it is done.", "PHONE_NUMBER", "415-555-0134"),
    "uk phone": ("His mobile is 07700 900461 if the courier needs it.", "PHONE_NUMBER", "07700 900461"),
    # a number libphonenumber rejects (a fictional range) is still a phone number to the metric,
    # as it is to the masker
    "international phone": ("Phone: +44 7700 900123", "PHONE_NUMBER", "+44 7700 900123"),
    "credit card": ("Card on file: 4111 1111 1111 1111, exp 04/27.", "CREDIT_CARD", "4111 1111 1111 1111"),
    "card with dots": ("New card is 5555.5555.5555.4444 exp 11/28.", "CREDIT_CARD", "5555.5555.5555.4444"),
    "iban": ("Wire it to DE89 3704 0044 0532 0130 00 by Friday.", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    "ssn": ("Her social security number is 536-22-1498.", "US_SSN", "536-22-1498"),
    "ip": ("The customer's IP was 91.198.174.192 when the login failed.", "IP_ADDRESS", "91.198.174.192"),
    "aws access key": (
        "The deploy user has key AKIAIOSFODNN7EXAMPLE configured.",
        "AWS_ACCESS_KEY",
        "AKIAIOSFODNN7EXAMPLE",
    ),
    "aws secret key": (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    "github token": (
        "Use ghp_16C7e42F292c6912E7710c838347Ae178B4a for the CI job.",
        "GITHUB_TOKEN",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    ),
    "github fine-grained": (
        "token github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF works",
        "GITHUB_TOKEN",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
    ),
    "slack token": (
        "SLACK_BOT_TOKEN=xoxb-2222222222-3333333333333-aBcDeFgHiJkLmNoPqRsTuVwX",
        "SLACK_TOKEN",
        "xoxb-2222222222-3333333333333-aBcDeFgHiJkLmNoPqRsTuVwX",
    ),
    "stripe key": (
        "Stripe is set up with sk_live_51HxY2aKz9QmW3eR7tYu8IoP.",
        "STRIPE_KEY",
        "sk_live_51HxY2aKz9QmW3eR7tYu8IoP",
    ),
    "stripe restricted": (
        "Use rk_live_4eC39HqLyjWDarjtT1zdp7dc here.",
        "STRIPE_KEY",
        "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ),
    "jwt": (
        "JWT eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "JWT",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    "pem private key": (
        "Here it is:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bqXz\nq9Lm2Vw==\n"
        "-----END RSA PRIVATE KEY-----\nThanks",
        "PRIVATE_KEY",
        "MIIEpAIBAAKCAQEA7bqXz",
    ),
    "api key assignment": (
        "api_key=9f8E7d6c5b4a39281706f5e4d3c2b1a0ZZq",
        "API_KEY",
        "9f8E7d6c5b4a39281706f5e4d3c2b1a0ZZq",
    ),
    "token colon": (
        '"token": "Zq8xV2mN4pL7tR1sK9wB3yH6cJ0dF5gA"',
        "API_KEY",
        "Zq8xV2mN4pL7tR1sK9wB3yH6cJ0dF5gA",
    ),
    "my password is": ("My password is hunter2 so please log in for me.", "PASSWORD", "hunter2"),
    "password colon": ("password: Tr0ub4dor&3", "PASSWORD", "Tr0ub4dor&3"),
    "pwd equals": ("connect with pwd=s3cr3tP@ss", "PASSWORD", "s3cr3tP@ss"),
    "password reset to": (
        "I reset my password to Blue-Falcon-88 and it still fails.",
        "PASSWORD",
        "Blue-Falcon-88",
    ),
    "obfuscated dot at": (
        "Reach me at jane dot doe at example dot com.",
        "EMAIL_ADDRESS",
        "jane dot doe at example dot com",
    ),
    "obfuscated brackets": (
        "Write to jane[at]example[dot]com please.",
        "EMAIL_ADDRESS",
        "jane[at]example[dot]com",
    ),
    "obfuscated parens": (
        "It is jane (at) example (dot) org.",
        "EMAIL_ADDRESS",
        "jane (at) example (dot) org",
    ),
}


@pytest.mark.parametrize(("text", "entity", "secret"), PII.values(), ids=PII.keys())
def test_pii_is_found_scored_and_masked(text: str, entity: str, secret: str) -> None:
    assert entity in types_in(text)
    assert value_of(text) >= THRESHOLD
    masked = mask_pii(text)
    assert secret not in masked
    assert f"<{entity}>" in masked or "<" in masked


# --- the kinds the held-out probes found missing (issue 10, item 5) ---------------------------

NEW_KINDS = {
    "grouped 19-digit card": ("4000 0000 0000 0000 006", "CREDIT_CARD", "4000 0000 0000 0000 006"),
    "amex 4-6-5": ("Charge 3782 822463 10005 for the renewal.", "CREDIT_CARD", "3782 822463 10005"),
    "short local phone": ("My phone is 555-0134 if the courier needs it.", "PHONE_NUMBER", "555-0134"),
    "passport": ("My passport number is C01X00T47, issued in Berlin.", "GOVERNMENT_ID", "C01X00T47"),
    "national id": ("Her national ID number is 8503125800083.", "GOVERNMENT_ID", "8503125800083"),
    "tax id": ("The contractor's tax ID: 12-3456789.", "GOVERNMENT_ID", "12-3456789"),
    "steuer-id": ("Seine Steuer-ID ist 86 095 742 719.", "GOVERNMENT_ID", "86 095 742 719"),
    "nif": ("NIF 12345678Z belongs to the account holder.", "ES_NIF", "12345678Z"),
    "driver's licence": (
        "Driver's licence number MORGA753116SM9IJ for the rental.",
        "GOVERNMENT_ID",
        "MORGA753116SM9IJ",
    ),
    "name with birth date": (
        "John Smith, born 14 March 1985, asked for a refund.",
        "IDENTIFIED_PERSON",
        "1985",
    ),
    "name with health detail": (
        "Dr. Amelia Hartmann was diagnosed with diabetes in 2019.",
        "IDENTIFIED_PERSON",
        "Amelia Hartmann",
    ),
    "name with title": ("Mrs. Joan Whitaker asked about her refund.", "IDENTIFIED_PERSON", "Joan Whitaker"),
    "full postal address": (
        "Ship it to 14 Larch Street, Dunmore, OH 44012.",
        "STREET_ADDRESS",
        "14 Larch Street, Dunmore, OH 44012",
    ),
}


@pytest.mark.parametrize(("text", "entity", "secret"), NEW_KINDS.values(), ids=NEW_KINDS.keys())
def test_new_kinds_are_found_scored_and_masked(text: str, entity: str, secret: str) -> None:
    assert entity in types_in(text), find_pii(text)
    assert value_of(text) >= THRESHOLD
    assert secret not in mask_pii(text) or entity == "IDENTIFIED_PERSON"


NOT_A_LEAK = {
    "epoch with decimals": "The sensor logged 1607635102.00 at startup.",
    "epoch": "Event timestamp 1700000000 marks the migration start.",
    "iso timestamp": "The outage started at 2024-11-30T02:41:36Z.",
    "date alone": "Your trial ends on 14 March 2025.",
    "order number": "Order 4815162342 was refunded yesterday.",
    "ticket like a phone": "Ticket 555-0134 was merged into the billing queue.",
    "short number without a phone word": "The file has 4000 0000 rows.",
    "passport word without a value": "Passport photos must be 35 x 45 mm for the ID verification form.",
    "uuid": "Request 550e8400-e29b-41d4-a716-446655440000 failed.",
    "business address": "Send returns to our warehouse at 500 Industrial Way, Reno, NV 89502.",
    "a first name with a title": "Ms. Dick will call you back tomorrow.",
}


@pytest.mark.parametrize("text", NOT_A_LEAK.values(), ids=NOT_A_LEAK.keys())
def test_hard_negatives_stay_below_the_threshold(text: str) -> None:
    assert value_of(text) < THRESHOLD, find_pii(text)
    assert "PHONE_NUMBER" not in types_in(text)


def test_the_cache_key_covers_the_shared_detector() -> None:
    from gates.metrics.base import dependency_files

    assert PiiLeakage.depends_on == ("ragate_core.pii",)
    assert [p.name for p in dependency_files("ragate_core.pii")] == ["pii.py"]


def test_a_name_with_contact_data_crosses_the_threshold() -> None:
    alone = value_of("Please ship the replacement reader to our office.")
    with_name = value_of(
        "Please ship the replacement reader to Jane Miller, 14 Larch Street, Dunmore, OH 44012."
    )
    lives_at = value_of("The owner is Tomasz Nowak and he lives at Ulica Lipowa 7, 30-001 Krakow.")
    assert alone < THRESHOLD <= with_name
    assert lives_at >= THRESHOLD
    assert value_of("Jane Doe, jane.doe@example.com") > value_of("jane.doe@example.com")


# --- find_pii and mask_pii -----------------------------------------------------------------


def test_find_pii_returns_frozen_spans_in_order() -> None:
    text = "Mail jane.doe@example.com or call +1 415-555-0134."
    spans = find_pii(text)
    assert [s.entity_type for s in spans] == ["EMAIL_ADDRESS", "PHONE_NUMBER"]
    assert all(text[s.start : s.end] == s.text and 0.0 < s.score <= 1.0 for s in spans)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spans[0].score = 0.0  # type: ignore[misc]
    assert isinstance(spans[0], PiiSpan)


def test_mask_pii_keeps_everything_else_byte_for_byte() -> None:
    text = "Héllo  —  mail\tjane.doe@example.com\n\nor  ✉ +1 415-555-0134!  "
    assert mask_pii(text) == "Héllo  —  mail\t<EMAIL_ADDRESS>\n\nor  ✉ <PHONE_NUMBER>!  "
    assert (
        mask_pii(text, placeholder="[{entity_type}]")
        == "Héllo  —  mail\t[EMAIL_ADDRESS]\n\nor  ✉ [PHONE_NUMBER]!  "
    )
    assert mask_pii(text, placeholder="***") == "Héllo  —  mail\t***\n\nor  ✉ ***!  "
    assert mask_pii("") == ""


def test_mask_pii_merges_overlapping_spans() -> None:
    # The GitHub token is also a labelled random token, and the IP also parses as a phone number.
    text = "token: ghp_16C7e42F292c6912E7710c838347Ae178B4a from 81.164.29.203 ok"
    assert mask_pii(text) == "token: <GITHUB_TOKEN> from <IP_ADDRESS> ok"


def test_the_analyzer_is_shared_and_thread_safe() -> None:
    from gates.metrics import pii

    assert pii._analyzer() is pii._analyzer()
    texts = [f"Ticket {i}: mail jane{i}@example.com or use AKIAIOSFODNN7EXAMPLE" for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        masked = list(pool.map(mask_pii, texts))
    assert masked == [f"Ticket {i}: mail <EMAIL_ADDRESS> or use <AWS_ACCESS_KEY>" for i in range(16)]


# --- the metric ----------------------------------------------------------------------------


def test_metric_contract_scores_and_reasons() -> None:
    metric = get_metric("pii")
    assert (metric.name, metric.direction) == ("pii", "lower_is_better")
    cases = [
        MetricCase("clean", "q", "Your refund was issued and should arrive within 5 business days."),
        MetricCase("email", "q", "Write to jane.doe@example.com for the contract."),
        MetricCase(
            "key", "q", "Use key AKIAIOSFODNN7EXAMPLE and mail jane.doe@example.com, phone +1 415-555-0134."
        ),
    ]
    clean, email, key = metric.score_batch(cases)
    assert all(0.0 <= s.value <= 1.0 for s in (clean, email, key) if s.value is not None)
    assert clean.value == 0.0 and clean.reason == "no PII found"
    assert email.value is not None and email.value >= THRESHOLD
    assert email.reason == "EMAIL_ADDRESS 'ja***@example.com' (0.95)"
    assert "AWS_ACCESS_KEY 'AKIA***LE' (0.97)" in key.reason
    assert "AKIAIOSFODNN7EXAMPLE" not in key.reason and "jane.doe" not in key.reason
    assert metric.reads(cases[1]) == {"answer": cases[1].answer}


def test_an_erroring_case_is_unscored_not_dropped() -> None:
    metric = PiiLeakage()
    cases = [MetricCase("bad", "q", None), MetricCase("ok", "q", "No personal data here.")]  # type: ignore[arg-type]
    bad, ok = metric.score_batch(cases)
    assert bad.value is None and not bad.scored
    assert bad.reason.startswith("error: TypeError")
    assert ok.value == 0.0


def test_calibration_recall_and_precision_at_the_default_threshold() -> None:
    # The validation split only: the new rules were written against "train".
    rows = [json.loads(line) for line in CALIBRATION.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == "validation"]
    assert len(rows) >= 100 and {r["label"] for r in rows} == {0, 1}
    scores = PiiLeakage().score_batch([MetricCase(r["id"], "", r["text"]) for r in rows])
    assert all(s.scored for s in scores)
    flagged = [s.value >= THRESHOLD for s in scores]
    true_pos = sum(f and r["label"] == 1 for f, r in zip(flagged, rows))
    positives = sum(r["label"] == 1 for r in rows)
    missed = [r["kind"] for f, r in zip(flagged, rows) if r["label"] == 1 and not f]
    false_alarms = [r["text"] for f, r in zip(flagged, rows) if r["label"] == 0 and f]
    assert true_pos / positives >= 0.95, f"recall {true_pos / positives:.3f}; missed kinds: {missed}"
    assert true_pos / max(sum(flagged), 1) >= 0.90, f"false alarms: {false_alarms}"


# --- property: generated PII embedded in plain text is always masked ------------------------

_filler = st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=9), max_size=8).map(" ".join)


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body + "0")):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


_emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.lists(
        st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8), min_size=1, max_size=3
    ).map(".".join),
    st.text(string.ascii_lowercase, min_size=2, max_size=12),
    st.sampled_from(["com", "org", "net", "io", "de", "co.uk"]),
)
_phones = st.builds(
    lambda fmt, area, exchange, line: fmt.format(a=area, e=exchange, n=f"{line:04d}"),
    st.sampled_from(["+1 {a}-{e}-{n}", "({a}) {e}-{n}", "{a}-{e}-{n}", "+1 ({a}) {e}-{n}", "+1 {a} {e} {n}"]),
    st.sampled_from(["212", "303", "312", "415", "512", "617", "646", "206", "404", "702"]),
    st.integers(200, 999).filter(lambda e: e % 100 != 11),
    st.integers(0, 9999),
)
_cards = st.builds(
    lambda prefix, rest, sep: sep.join(re.findall(".{4}", _luhn_complete((prefix + rest)[:15]))),
    st.sampled_from(["4", "51", "53", "55", "2221", "2720", "6011"]),
    st.text("0123456789", min_size=15, max_size=15),
    st.sampled_from([" ", "-", ""]),
)
_ibans = st.one_of(
    st.builds(lambda bban: _iban("DE", bban), st.text("0123456789", min_size=18, max_size=18)),
    st.builds(
        lambda bank, num: _iban("GB", bank + num),
        st.text(string.ascii_uppercase, min_size=4, max_size=4),
        st.text("0123456789", min_size=14, max_size=14),
    ),
    st.builds(
        lambda bank, num: _iban("NL", bank + num),
        st.text(string.ascii_uppercase, min_size=4, max_size=4),
        st.text("0123456789", min_size=10, max_size=10),
    ),
).flatmap(lambda iban: st.sampled_from([iban, " ".join(re.findall(".{1,4}", iban))]))
_aws_keys = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["AKIA", "ASIA"]),
    st.text(string.ascii_uppercase + "234567", min_size=16, max_size=16),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=_filler, secret=st.one_of(_emails, _phones, _cards, _ibans, _aws_keys), after=_filler)
def test_generated_pii_is_always_masked(before: str, secret: str, after: str) -> None:
    text = f"{before} {secret} {after}"
    masked = mask_pii(text)
    assert secret not in masked, (text, find_pii(text))
    assert masked.startswith(f"{before} ") and masked.endswith(f" {after}")
    assert re.search(r"<[A-Z_]+>", masked)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(string.ascii_lowercase + " ", max_size=200))
def test_text_without_pii_is_returned_unchanged(text: str) -> None:
    assert mask_pii(text) == text


# --- properties: cards in any grouping, epoch timestamps ---------------------------------------

_ISSUER_PREFIXES = [
    "4",
    "51",
    "55",
    "2221",
    "2720",
    "34",
    "37",
    "6011",
    "65",
    "3528",
    "36",
    "62",
    "50",
    "6759",
]


@st.composite
def any_grouped_cards(draw: st.DrawFn) -> str:
    """A Luhn-valid card number of 13-19 digits with a real issuer prefix, in any grouping."""
    length = draw(st.integers(13, 19))
    prefix = draw(st.sampled_from(_ISSUER_PREFIXES))
    body = (prefix + draw(st.text("0123456789", min_size=19, max_size=19)))[: length - 1]
    number = _luhn_complete(body)
    layout = draw(st.sampled_from(["plain", "fours", "random"]))
    if layout == "plain":
        return number
    sep = draw(st.sampled_from([" ", "-"]))
    if layout == "fours":
        return sep.join(re.findall(".{1,4}", number))
    groups, rest = [], number
    while rest:
        size = draw(st.integers(2, 6))
        groups.append(rest[:size])
        rest = rest[size:]
    return sep.join(groups)


_NEUTRAL = st.lists(
    st.sampled_from(
        "the sensor logged value at startup event was recorded when job ended and then we saw".split()
    ),
    max_size=6,
).map(" ".join)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=_NEUTRAL, card=any_grouped_cards(), after=_NEUTRAL)
def test_any_luhn_valid_card_in_any_grouping_is_found(before: str, card: str, after: str) -> None:
    text = f"{before} {card} {after}"
    cards = [s for s in find_pii(text) if s.entity_type == "CREDIT_CARD"]
    assert [s.text for s in cards] == [card], find_pii(text)
    assert value_of(text) >= THRESHOLD
    assert card not in mask_pii(text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=_NEUTRAL,
    seconds=st.integers(1_000_000_000, 1_999_999_999),
    decimals=st.sampled_from(["", ".0", ".00", ".123", ".5"]),
    after=_NEUTRAL,
)
def test_an_epoch_timestamp_is_never_a_phone_number(
    before: str, seconds: int, decimals: str, after: str
) -> None:
    text = f"{before} {seconds}{decimals} {after}."
    assert "PHONE_NUMBER" not in types_in(text), find_pii(text)
    assert value_of(text) < THRESHOLD
