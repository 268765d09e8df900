"""Property tests of the masking behind the PII rails (ragate_core.pii).

Generated personal data and secrets (e-mail addresses, phone numbers, card numbers with
a valid Luhn digit, IBANs with valid check digits, AWS access keys) embedded in random
text are always masked, and the text around them comes back unchanged. All values are
generated, fictional and checksummed only.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragate_core.pii import iban_ok, luhn_ok, mask_pii

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- random text that holds no personal data ------------------------------------------

WORDS = (
    "please the a my our task board project invoice refund plan billing team member guest admin owner "
    "settings export import sync calendar view label comment due date reminder workspace seat trial "
    "how can i do we you it is are was will should not only also and or but with from to for on in at "
    "thanks hello sorry again today tomorrow Please Thanks Hello The Our"
).split()
_word = st.sampled_from(WORDS) | st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=9)
_punct = st.sampled_from(["", "", "", ",", ".", "?", "!", ";", ":"])
filler = st.lists(st.tuples(_word, _punct).map("".join), max_size=12).map(" ".join)


# --- generated personal data and secrets -----------------------------------------------

_label = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True)
emails = st.builds(
    lambda local, extra, domain, tld: f"{local}{extra}@{domain}.{tld}",
    _label,
    st.sampled_from(["", ".smith", "_jr", "-99", "+news"]),
    _label,
    st.sampled_from(["com", "org", "net", "io", "de", "co.uk", "example", "dev"]),
)


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=string.digits, min_size=n, max_size=n)


phones = st.one_of(
    # International: +CC then groups of digits.
    st.builds(
        lambda cc, a, b, c: f"+{cc} {a} {b} {c}",
        st.sampled_from(["1", "31", "33", "34", "39", "44", "48", "49"]),
        _digits(3) | _digits(4),
        _digits(3),
        _digits(4),
    ),
    # North American layouts.
    st.builds(lambda a, b, c: f"({a}) {b}-{c}", _digits(3), _digits(3), _digits(4)),
    st.builds(lambda a, b, c: f"{a}-{b}-{c}", _digits(3), _digits(3), _digits(4)),
)


def luhn_digit(body: str) -> str:
    """The check digit that makes ``body + digit`` pass Luhn."""
    for d in string.digits:
        if luhn_ok(body + d):
            return d
    raise AssertionError("unreachable")


def _card(prefix: str, length: int, body: str) -> str:
    core = (prefix + body)[: length - 1]
    return core + luhn_digit(core)


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, length = draw(
        st.sampled_from([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("6011", 16), ("37", 15)])
    )
    number = _card(prefix, length, draw(_digits(18)))
    layout = draw(st.sampled_from(["plain", "spaces", "dashes"]))
    if layout == "plain":
        return number
    sep = " " if layout == "spaces" else "-"
    groups = [number[:4], number[4:10], number[10:]] if length == 15 else re.findall(r".{4}", number)
    return sep.join(groups)


# Country: BBAN layout (n = digit, a = upper-case letter, c = either).
_IBAN_LAYOUTS = {
    "DE": "n" * 18,
    "GB": "aaaa" + "n" * 14,
    "NL": "aaaa" + "n" * 10,
    "ES": "n" * 20,
    "FR": "n" * 23,
}


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(_IBAN_LAYOUTS)))
    alphabet = {"n": string.digits, "a": string.ascii_uppercase}
    bban = "".join(draw(st.sampled_from(alphabet[kind])) for kind in _IBAN_LAYOUTS[country])
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    iban = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    assert iban_ok(iban)
    return " ".join(re.findall(r".{1,4}", iban)) if draw(st.booleans()) else iban


aws_keys = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["AKIA", "ASIA"]),
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16),
)


@pytest.fixture(scope="module", autouse=True)
def analyzer_loaded() -> Iterator[None]:
    mask_pii("load presidio and spaCy once, for Jane Doe", names=True)
    yield


def assert_masked(before: str, value: str, after: str, names: bool) -> None:
    text = f"{before} {value} {after}"
    masked, types = mask_pii(text, names=names)
    assert value not in masked, f"{value!r} leaked: {masked!r}"
    assert types, f"nothing masked in {text!r}"
    # Exactly one placeholder where the value was, and the rest byte for byte.
    assert re.fullmatch(rf"{re.escape(before)} <[A-Z_]+> {re.escape(after)}", masked), masked


@SETTINGS
@given(filler, emails, filler, st.booleans())
def test_emails_are_masked(before: str, value: str, after: str, names: bool) -> None:
    assert_masked(before, value, after, names)


@SETTINGS
@given(filler, phones, filler, st.booleans())
def test_phone_numbers_are_masked(before: str, value: str, after: str, names: bool) -> None:
    assert_masked(before, value, after, names)


@SETTINGS
@given(filler, cards(), filler, st.booleans())
def test_card_numbers_with_a_valid_luhn_digit_are_masked(
    before: str, value: str, after: str, names: bool
) -> None:
    assert luhn_ok(re.sub(r"\D", "", value))
    assert_masked(before, value, after, names)


@SETTINGS
@given(filler, ibans(), filler, st.booleans())
def test_ibans_with_valid_check_digits_are_masked(before: str, value: str, after: str, names: bool) -> None:
    assert_masked(before, value, after, names)


@SETTINGS
@given(filler, aws_keys, filler, st.booleans())
def test_aws_access_keys_are_masked(before: str, value: str, after: str, names: bool) -> None:
    assert_masked(before, value, after, names)


@SETTINGS
@given(filler, st.booleans())
def test_text_without_personal_data_is_unchanged(text: str, names: bool) -> None:
    assert mask_pii(text, names=names) == (text, [])


@SETTINGS
@given(filler, emails, filler)
def test_values_quoted_from_the_documentation_are_kept(before: str, value: str, after: str) -> None:
    text = f"{before} {value} {after}"
    assert mask_pii(text, keep=[f"Write to {value} for help."]) == (text, [])


def test_card_like_numbers_that_fail_luhn_are_not_cards() -> None:
    _, types = mask_pii("Your order 4111 1111 1111 1112 has shipped.")
    assert "CREDIT_CARD" not in types


# --- the kinds the held-out probes found missing (issue 10, item 5) ---------------------------

_PREFIXES = ["4", "51", "55", "2221", "2720", "34", "37", "6011", "65", "3528", "36", "62", "50", "6759"]


@st.composite
def cards_in_any_grouping(draw: st.DrawFn) -> str:
    """A Luhn-valid number of 13-19 digits with an issuer prefix: plain, in fours, or in
    groups of 2-6 digits ("4000 0000 0000 0000 006", "3782 822463 10005")."""
    length = draw(st.integers(13, 19))
    number = _card(draw(st.sampled_from(_PREFIXES)), length, draw(_digits(19)))
    layout = draw(st.sampled_from(["plain", "fours", "random"]))
    if layout == "plain":
        return number
    sep = draw(st.sampled_from([" ", "-"]))
    if layout == "fours":
        return sep.join(re.findall(r".{1,4}", number))
    groups, rest = [], number
    while rest:
        size = draw(st.integers(2, 6))
        groups.append(rest[:size])
        rest = rest[size:]
    return sep.join(groups)


@SETTINGS
@given(filler, cards_in_any_grouping(), filler, st.booleans())
def test_cards_in_any_grouping_are_masked(before: str, value: str, after: str, names: bool) -> None:
    assert luhn_ok(re.sub(r"\D", "", value))
    assert_masked(before, value, after, names)


_NEUTRAL = st.lists(
    st.sampled_from("the sensor logged value at startup event was recorded and then".split()), max_size=6
)


@SETTINGS
@given(
    _NEUTRAL.map(" ".join),
    st.integers(1_000_000_000, 1_999_999_999),
    st.sampled_from(["", ".0", ".00", ".123"]),
    _NEUTRAL.map(" ".join),
)
def test_an_epoch_timestamp_is_not_masked_as_a_phone(
    before: str, seconds: int, decimals: str, after: str
) -> None:
    text = f"{before} {seconds}{decimals} {after}."
    _, types = mask_pii(text, names=True)
    assert "PHONE_NUMBER" not in types


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("my phone is 555-0134", "555-0134"),
        ("call me on 555-0198 after six", "555-0198"),
        ("My passport number is C01X00T47.", "C01X00T47"),
        ("Her Steuer-ID is 86 095 742 719.", "86 095 742 719"),
        ("His SSN is 078-05-1120.", "078-05-1120"),
        ("The card 4000 0000 0000 0000 006 was declined.", "4000 0000 0000 0000 006"),
    ],
)
def test_short_phones_ids_and_grouped_cards_are_masked(text: str, value: str) -> None:
    masked, types = mask_pii(text, names=True)
    assert value not in masked and types, masked


def test_numbers_that_are_not_personal_stay() -> None:
    for text in (
        "The sensor logged 1607635102.00 at startup.",
        "Ticket 555-0134 was merged into the billing queue.",
        "Order 4815162342 was refunded yesterday.",
    ):
        assert mask_pii(text, names=True) == (text, [])


def test_the_input_rail_masks_a_short_phone_and_lets_names_through() -> None:
    """End to end through NeMo Guardrails: masking, and no toxic_input block for a name."""
    from rag.guardrails import default_guardrails

    rails = default_guardrails()
    phone = rails.check_input("my phone is 555-0134")
    assert not phone.blocked and "555-0134" not in phone.text and "<PHONE_NUMBER>" in phone.text
    question = rails.check_input("Can Shital from billing call me back about my invoice?")
    assert not question.blocked, question
    answer = rails.check_output(
        "Who will call me?", "Shital from the billing team will call you back tomorrow.", []
    )
    assert not answer.blocked, answer
