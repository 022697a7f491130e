"""Phone number and patient location transformations (carewire.adapters.xmpp.transforms)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.adapters.xmpp.transforms import (
    PHONE_IGNORED,
    apply_mask,
    location_rule_problem,
    location_transform,
    normalize_phone,
    phone_digits,
    phone_transform,
)


def phone(pattern: str, mask: str, *, active: bool = True) -> dict[str, object]:
    return {"pattern": pattern, "mask": mask, "active": active}


def loc(pattern: str, replacement: str, *, active: bool = True) -> dict[str, object]:
    return {"pattern": pattern, "replacement": replacement, "active": active}


# --- phone numbers: examples ---------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "pattern", "mask", "expected"),
    [
        ("4321", "XXXX", "+1 617-555-XXXX", "+1 617-555-4321"),
        ("6175551234", "XXXXXXXXXX", "9XXXXXXXXXX", "96175551234"),
        ("96175551234", "9XXXXXXXXXX", "XXXXXXXXXX", "6175551234"),
        ("(617) 555-1234", "617.555.XXXX", "XXXX", "1234"),  # ignored characters, both sides
        ("617 555 1234", "(617) 555-XXXX", "7XXXX", "71234"),
        ("12", "XX", "0", "0"),  # a mask without X replaces the number
        ("12", "XX", "XXXX", "12"),  # surplus X on the left are dropped
        ("123456", "XXXXXX", "9-XX", "9-56"),  # surplus digits on the left are dropped
    ],
)
def test_phone_examples(number: str, pattern: str, mask: str, expected: str) -> None:
    assert phone_transform(number, [phone(pattern, mask)]) == expected


def test_phone_digit_count_must_match() -> None:
    rules = [phone("XXXX", "9XXXX")]
    assert phone_transform("12345", rules) == "12345"
    assert phone_transform("123", rules) == "123"


def test_phone_literal_characters_must_match() -> None:
    rules = [phone("617XXXX", "X")]
    assert phone_transform("6181234", rules) == "6181234"
    assert phone_transform("+1234", [phone("+XXXX", "00XXXX")]) == "001234"


def test_x_matches_digits_only() -> None:
    assert phone_transform("12a4", [phone("XXXX", "9XXXX")]) == "12a4"
    assert phone_transform("12٣4", [phone("XXXX", "9XXXX")]) == "12٣4"  # not ASCII


def test_first_active_match_wins() -> None:
    rules = [
        phone("XXXX", "1XXXX", active=False),
        phone("XXX", "2XXX"),
        phone("XXXX", "3XXXX"),
        phone("XXXX", "4XXXX"),
    ]
    assert phone_transform("1234", rules) == "31234"


def test_rows_without_active_are_active_and_empty_patterns_never_match() -> None:
    assert phone_transform("1234", [{"pattern": "XXXX", "mask": "9XXXX"}]) == "91234"
    assert phone_transform("", [phone("", "9")]) == ""
    assert phone_transform("1234", [{"mask": "9"}, {"pattern": 7, "mask": "9"}]) == "1234"


def test_overlong_numbers_never_match() -> None:
    n = "1" * 65
    assert phone_transform(n, [phone("X" * 65, "X")]) == n


# --- phone numbers: properties --------------------------------------------------------

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
noise = st.text(alphabet="".join(PHONE_IGNORED), max_size=3)


@given(digits, noise)
def test_all_x_pattern_matches_any_number_of_the_same_length(number: str, junk: str) -> None:
    pattern = junk + "X" * len(number) + junk
    assert phone_digits(number, pattern) == number
    assert phone_transform(number, [phone(pattern, "X" * len(number))]) == number


@given(digits, st.integers(min_value=1, max_value=3))
def test_length_mismatch_never_matches(number: str, extra: int) -> None:
    assert phone_digits(number, "X" * (len(number) + extra)) is None
    assert phone_transform(number, [phone("X" * (len(number) + extra), "0")]) == number


@given(digits, st.lists(st.sampled_from(sorted(PHONE_IGNORED)), max_size=6))
def test_ignored_characters_do_not_matter(number: str, junk: list[str]) -> None:
    chars = list(number)
    for c in junk:
        chars.insert(len(chars) // 2, c)
    decorated = "".join(chars)
    assert normalize_phone(decorated) == number
    rules = [phone("X" * len(number), "9" + "X" * len(number))]
    assert phone_transform(decorated, rules) == "9" + number


masks = st.text(alphabet="X0123+-# ", max_size=20)


@given(masks, st.data())
def test_mask_x_take_the_digits_in_order(mask: str, data: st.DataObject) -> None:
    dig = data.draw(
        st.text(alphabet="0123456789", min_size=mask.count("X"), max_size=mask.count("X"))
    )
    it = iter(dig)
    assert apply_mask(dig, mask) == "".join(next(it) if c == "X" else c for c in mask)


@given(masks, st.text(alphabet="0123456789", max_size=12))
def test_mask_is_right_aligned(mask: str, dig: str) -> None:
    slots = mask.count("X")
    if len(dig) > slots:
        assert apply_mask(dig, mask) == apply_mask(dig[len(dig) - slots :], mask)
    else:
        surplus = slots - len(dig)
        shorter = mask
        for _ in range(surplus):
            shorter = shorter.replace("X", "", 1)
        assert apply_mask(dig, mask) == apply_mask(dig, shorter)


@given(
    digits.filter(lambda d: len(d) > 1),
    st.lists(st.tuples(st.booleans(), st.sampled_from([-1, 0, 1]))),
)
def test_transform_is_the_first_active_match(number: str, spec: list[tuple[bool, int]]) -> None:
    rules = [
        phone("X" * (len(number) + delta), f"{i}-X", active=active)
        for i, (active, delta) in enumerate(spec)
    ]
    expected = number
    for i, (active, delta) in enumerate(spec):
        if active and delta == 0:
            expected = f"{i}-{number[-1]}"
            break
    assert phone_transform(number, rules) == expected


# --- locations: examples ---------------------------------------------------------------


def test_location_example_from_the_settings_help() -> None:
    rules = [loc("Intensive Care (.*)", "ICU$1")]
    assert location_transform("Intensive Care 101-A", rules) == "ICU101-A"


def test_location_replaces_once_and_keeps_the_rest() -> None:
    rules = [loc("Bed ", "")]
    assert location_transform("Room 1 Bed A Bed B", rules) == "Room 1 A Bed B"


def test_location_first_active_match_only() -> None:
    rules = [
        loc("ICU", "X", active=False),
        loc("NOPE", "Y"),
        loc("ICU (\\d+)", "I$1"),
        loc("I", "Z"),  # would match the result, but only one rule applies
    ]
    assert location_transform("ICU 12", rules) == "I12"


def test_location_replacement_syntax() -> None:
    assert location_transform("ab", [loc("(a)(b)", "$2$1$0")]) == "baab"
    assert location_transform("ab", [loc("(?P<x>a)b", "${x}!")]) == "a!"
    assert location_transform("ab", [loc("(a)b", "\\$1 costs $$")]) == "$1 costs $$"
    assert location_transform("ab", [loc("(a)b", "\\\\")]) == "\\"
    # "$12" with a single group is group 1 then "2".
    assert location_transform("ab", [loc("(a)b", "$12")]) == "a2"
    # A group that did not take part in the match is replaced by nothing.
    assert location_transform("b", [loc("(a)?b", "[$1]")]) == "[]"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (loc("ICU(", "x"), "not a valid regular expression"),
        (loc("", "x"), "the pattern is empty"),
        (loc("(a)", "$2"), "uses group 2"),
        (loc("(a)", "${nope}"), "names the group 'nope'"),
        (loc("a" * 1001, "x"), "longer than"),
    ],
)
def test_unusable_location_rules_are_skipped(rule: dict[str, object], problem: str) -> None:
    found = location_rule_problem(rule)
    assert found is not None and problem in found
    fallback = loc("ICU", "I")
    assert location_transform("ICU(", [rule, fallback]) == "I("
    assert location_transform("zzz", [rule]) == "zzz"


def test_usable_rule_has_no_problem() -> None:
    assert location_rule_problem(loc("ICU(.*)", "ICU$1")) is None


# --- locations: properties -------------------------------------------------------------

text = st.text(max_size=30)


@given(text)
def test_no_rules_is_identity(location: str) -> None:
    assert location_transform(location, []) == location
    assert location_transform(location, [loc("(", "x"), loc(".*", "x", active=False)]) == location


@given(text, text, st.text(alphabet="abcdefXYZ -", max_size=10))
def test_literal_rule_replaces_the_first_occurrence_once(before: str, after: str, lit: str) -> None:
    needle = "QQ"
    location = before.replace(needle, "") + needle + after
    replacement = lit.replace("\\", "")
    out = location_transform(location, [loc(re.escape(needle), replacement)])
    i = location.find(needle)
    assert out == location[:i] + replacement + location[i + len(needle) :]


@given(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=30))
def test_dot_star_rule_replaces_everything(location: str) -> None:
    assert location_transform(location, [loc("^.*$", "[$0]")]) == f"[{location}]"
