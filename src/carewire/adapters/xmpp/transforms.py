"""Phone number and patient location transformations of the XMPP adapter's settings.

Both are ordered lists of rules edited in the adapter's settings; the first
*active* rule that matches is applied, once, and a value no rule matches is
returned unchanged. These functions are pure: they take the settings rows
(mappings with the keys of the settings schema) and a value, and return the
transformed value. They never raise for a bad rule: a rule that cannot be
used (no pattern, an invalid regular expression, a replacement naming a group
the pattern does not have) is skipped, and :func:`location_rule_problem`
says why, for whoever wants to report it.

Phone numbers
-------------
A *pattern* is compared with the number after both have lost their spaces
and the characters ``) - , . (``. Then they must have the same length, and
each pattern character must match the number's character at the same
position: ``X`` (or ``x``) matches any one digit, any other character matches
itself. So ``(617) 555-XXXX`` matches ``617.555.1234`` but not ``5551234``.

The *mask* builds the new number: each ``X`` (or ``x``) of the mask is
replaced by one of the digits the pattern's ``X`` positions matched, in
order, and every other mask character is copied as it is. The digits are
aligned to the right, like a dial plan's mask: when the mask has fewer ``X``
than the pattern, the leftmost matched digits are dropped (pattern
``9XXXXXXXXXX``, mask ``XXXX`` keeps the last four); when it has more, its
leftmost ``X`` are dropped. A mask without ``X`` replaces the number
outright. Examples::

    pattern XXXX          mask +1 617-555-XXXX   4321        → +1 617-555-4321
    pattern XXXXXXXXXX    mask 9XXXXXXXXXX       6175551234  → 96175551234
    pattern 9XXXXXXXXXX   mask XXXXXXXXXX        96175551234 → 6175551234

Patient locations
-----------------
A pattern is a Python regular expression searched for anywhere in the
location (``re.search``); the first occurrence is replaced, once, by the
replacement, in which ``$1`` … ``$99`` (or ``${name}``) stand for the groups
and a backslash makes the next character literal (``\\$`` is a dollar sign),
as in the replacement strings of many regex libraries. A group that did not
take part in the match is replaced by nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

#: Characters a phone pattern or number may contain that are ignored when comparing.
PHONE_IGNORED = frozenset(" )-,.(")
#: Longest phone number or pattern considered (longer ones never match).
MAX_PHONE_LENGTH = 64
#: Longest location pattern compiled (longer ones are skipped as invalid).
MAX_LOCATION_PATTERN = 1000

_WILDCARDS = frozenset("Xx")
_DIGITS = frozenset("0123456789")


def _is_active(rule: Mapping[str, object]) -> bool:
    # The schema's default for Active is true: a row without the key is active.
    return rule.get("active", True) is not False


def _text(rule: Mapping[str, object], key: str) -> str:
    value = rule.get(key)
    return value if isinstance(value, str) else ""


# --- phone numbers -----------------------------------------------------------


def normalize_phone(text: str) -> str:
    """``text`` without spaces and the characters ``) - , . (``."""
    return "".join(c for c in text if c not in PHONE_IGNORED)


def phone_digits(number: str, pattern: str) -> str | None:
    """The digits the pattern's ``X`` positions match in ``number``, or None when it does not match.

    Both are normalised first (:func:`normalize_phone`); ``X`` matches one
    ASCII digit, every other character itself.
    """
    num, pat = normalize_phone(number), normalize_phone(pattern)
    if not pat or len(num) != len(pat) or len(pat) > MAX_PHONE_LENGTH:
        return None
    captured: list[str] = []
    for n, p in zip(num, pat, strict=True):
        if p in _WILDCARDS:
            if n not in _DIGITS:
                return None
            captured.append(n)
        elif n != p:
            return None
    return "".join(captured)


def apply_mask(digits: str, mask: str) -> str:
    """Fill the mask's ``X`` with ``digits``, right-aligned (see the module docstring)."""
    slots = sum(1 for c in mask if c in _WILDCARDS)
    # Right alignment: drop surplus digits on the left, or surplus X on the left.
    if len(digits) > slots:
        digits = digits[len(digits) - slots :]
    skip = slots - len(digits)
    out: list[str] = []
    source = iter(digits)
    for c in mask:
        if c not in _WILDCARDS:
            out.append(c)
        elif skip:
            skip -= 1
        else:
            out.append(next(source))
    return "".join(out)


def phone_transform(number: str, rules: Iterable[Mapping[str, object]]) -> str:
    """``number`` transformed by the first active rule whose pattern matches it.

    Args:
        number: The number as dialled (any of ``) - , . (`` and spaces allowed).
        rules: Rows of the Phone Number Transformations setting, in order
            (``pattern``, ``mask``, ``active``).

    Returns:
        The masked number, or ``number`` unchanged when no active rule matches.
    """
    for rule in rules:
        if not _is_active(rule):
            continue
        digits = phone_digits(number, _text(rule, "pattern"))
        if digits is not None:
            return apply_mask(digits, _text(rule, "mask"))
    return number


# --- patient locations ---------------------------------------------------------

_DOLLAR_GROUP = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([0-9]{1,2}))")


@lru_cache(maxsize=256)
def _compile_location(pattern: str, replacement: str) -> tuple[re.Pattern[str], str] | str:
    """(compiled pattern, ``re`` template) or the reason the rule cannot be used."""
    if not pattern:
        return "the pattern is empty"
    if len(pattern) > MAX_LOCATION_PATTERN:
        return f"the pattern is longer than {MAX_LOCATION_PATTERN} characters"
    try:
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"the pattern is not a valid regular expression ({exc})"
    template: list[str] = []
    i = 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            template.append(_literal(replacement[i + 1]))
            i += 2
            continue
        m = _DOLLAR_GROUP.match(replacement, i) if c == "$" else None
        if m is None:
            template.append(_literal(c))
            i += 1
            continue
        name, number = m.group(1), m.group(2)
        if number is not None and int(number) > compiled.groups and len(number) == 2:
            # "$12" with fewer than 12 groups reads as group 1 then the digit 2.
            number, i = number[0], i + 2
        else:
            i = m.end()
        if name is not None and name not in compiled.groupindex:
            return f"the replacement names the group {name!r} the pattern does not have"
        if number is not None and int(number) > compiled.groups:
            return f"the replacement uses group {number}; the pattern has {compiled.groups}"
        template.append(f"\\g<{name if name is not None else number}>")
    return compiled, "".join(template)


def _literal(c: str) -> str:
    # In an ``re`` template only the backslash is special.
    return "\\\\" if c == "\\" else c


def location_rule_problem(rule: Mapping[str, object]) -> str | None:
    """Why a location rule can never be applied, or None when it can."""
    found = _compile_location(_text(rule, "pattern"), _text(rule, "replacement"))
    return found if isinstance(found, str) else None


def location_transform(location: str, rules: Iterable[Mapping[str, object]]) -> str:
    """``location`` transformed by the first active rule whose pattern is found in it.

    Args:
        location: The patient's location as text (``ICU 101-A``).
        rules: Rows of the Patient Location Transformations setting, in order
            (``pattern``, ``replacement``, ``active``).

    Returns:
        The location with the first match replaced once, or unchanged when no
        active, usable rule matches. Unusable rules are skipped.
    """
    for rule in rules:
        if not _is_active(rule):
            continue
        found = _compile_location(_text(rule, "pattern"), _text(rule, "replacement"))
        if isinstance(found, str):
            continue
        compiled, template = found
        if compiled.search(location) is not None:
            # A group that did not take part in the match expands to "" (Python ≥ 3.5).
            return compiled.sub(template, location, count=1)
    return location
