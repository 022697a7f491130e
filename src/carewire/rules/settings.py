"""Typed settings schemas, for rule actions and adapter kinds, and their validation.

A schema is a tuple of :class:`SettingField`. :func:`validate_settings`
checks a settings mapping against it and returns the normalised settings, or
raises :class:`SettingsError` whose message reads like the console's::

    The information provided is either invalid or incomplete.
    - Required: Recipients
    - Required: Conversation
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from carewire.errors import ValidationError

HEADLINE = "The information provided is either invalid or incomplete."


class FieldKind(enum.StrEnum):
    """How a setting is entered and stored."""

    TEXT = "text"  # one line
    LONG_TEXT = "long_text"  # several lines
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"  # one of ``choices``
    LINES = "lines"  # a list of strings, one per line
    UPDATES = "updates"  # "expression=value" lines → [{"path", "value"}]
    PARAMETERS = "parameters"  # [{"parameter", "value"}]
    EXPRESSION = "expression"  # an attribute path, without #{...}
    TABLE = "table"  # a list of objects with the sub-fields in ``columns``
    DATASET = "dataset"  # the name of a dataset


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingField:
    """One setting of an action or adapter.

    Attributes:
        name: Key in the settings mapping (``recipients``).
        label: What people see (``Recipients``), used in messages.
        kind: How it is entered and stored.
        is_required: Must have a value.
        choices: Allowed values for CHOICE.
        minimum: Smallest INTEGER allowed.
        maximum: Largest INTEGER allowed.
        allows_expressions: May contain ``#{...}`` (then an INTEGER or a CHOICE may be an
            expression, checked by the action once rendered).
        columns: Sub-fields of each TABLE row.
        default: Value used when none is given.
        help: One-sentence description.
    """

    name: str
    label: str
    kind: FieldKind = FieldKind.TEXT
    is_required: bool = False
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    allows_expressions: bool = False
    columns: tuple[SettingField, ...] = ()
    default: object = None
    help: str = ""


class SettingsError(ValidationError):
    """Settings are incomplete or invalid.

    Attributes:
        problems: One line per problem (``Required: Recipients``).
    """

    code = "invalid-settings"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join([HEADLINE, *(f"- {p}" for p in self.problems)]))


#: Checks a text with ``#{...}`` (or, for EXPRESSION, a bare path) and raises ValidationError.
TemplateCheck = Callable[[SettingField, str], None]


def validate_settings(
    fields: Sequence[SettingField],
    settings: Mapping[str, object],
    *,
    check: TemplateCheck | None = None,
) -> dict[str, object]:
    """Check ``settings`` against ``fields`` and normalise them.

    Required fields are reported first, in schema order, then invalid values.

    Raises:
        SettingsError: Listing every problem.
    """
    known = {f.name for f in fields}
    required: list[str] = []
    invalid: list[str] = [f"Unknown: {k}" for k in settings if k not in known]
    out: dict[str, object] = {}
    for f in fields:
        value = settings.get(f.name, f.default)
        try:
            normalised = None if _is_blank(value) else _normalise(f, value, check)
        except (ValueError, TypeError, ValidationError) as exc:
            invalid.append(f"{f.label}: {exc}")
            continue
        if _is_blank(normalised):  # blank, or only blank lines
            if f.is_required:
                required.append(f"Required: {f.label}")
            continue
        out[f.name] = normalised
    if required or invalid:
        raise SettingsError(required + invalid)
    return out


def _is_blank(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | tuple) and not value)


def _normalise(f: SettingField, value: object, check: TemplateCheck | None) -> object:
    match f.kind:
        case FieldKind.TEXT | FieldKind.LONG_TEXT | FieldKind.EXPRESSION | FieldKind.DATASET:
            text = _text(value)
            needs_check = f.allows_expressions or f.kind in (
                FieldKind.EXPRESSION,
                FieldKind.DATASET,
            )
            if check is not None and needs_check:
                check(f, text)
            return text
        case FieldKind.INTEGER:
            return _integer(f, value, check)
        case FieldKind.BOOLEAN:
            if not isinstance(value, bool):
                raise TypeError("must be true or false")
            return value
        case FieldKind.CHOICE:
            text = _text(value)
            if f.allows_expressions and "#{" in text:
                if check is not None:
                    check(f, text)
                return text  # its value is one of the choices only once rendered
            if text not in f.choices:
                raise ValueError(f"must be one of {', '.join(f.choices)}")
            return text
        case FieldKind.LINES:
            return _lines(f, value, check)
        case FieldKind.UPDATES:
            return _updates(f, value, check)
        case FieldKind.PARAMETERS:
            return _parameters(value)
        case FieldKind.TABLE:
            return _table(f, value, check)


def _text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("must be text")
    return str(value).strip()


def _integer(f: SettingField, value: object, check: TemplateCheck | None) -> object:
    if isinstance(value, str) and "#{" in value and f.allows_expressions:
        if check is not None:
            check(f, value)
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("must be a whole number")
    try:
        number = int(value)
    except ValueError:
        raise ValueError("must be a whole number") from None
    too_small = f.minimum is not None and number < f.minimum
    too_large = f.maximum is not None and number > f.maximum
    if too_small or too_large:
        if f.minimum is not None and f.maximum is not None:
            raise ValueError(f"must be between {f.minimum} and {f.maximum} inclusive")
        if too_small:
            raise ValueError(f"must be {f.minimum} or more")
        raise ValueError(f"must be {f.maximum} or less")
    return number


def _lines(f: SettingField, value: object, check: TemplateCheck | None) -> list[str]:
    items = value.splitlines() if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise TypeError("must be text, one entry per line")
    lines = [_text(v) for v in items]
    lines = [ln for ln in lines if ln]
    if check is not None and f.allows_expressions:
        for ln in lines:
            check(f, ln)
    return lines


def _updates(f: SettingField, value: object, check: TemplateCheck | None) -> list[dict[str, str]]:
    if isinstance(value, str):
        rows: list[object] = [ln for ln in value.splitlines() if ln.strip()]
    elif isinstance(value, list | tuple):
        rows = list(value)
    else:
        raise TypeError("must be expression=value lines")
    out = []
    for row in rows:
        if isinstance(row, Mapping):
            path, val = _text(row.get("path", "")), _text(row.get("value", ""))
        else:
            text = _text(row)
            if "=" not in text:
                raise ValueError(f"{text!r} is not in the form expression=value")
            path, _, val = (s.strip() for s in text.partition("="))
        if not path:
            raise ValueError("an update needs an attribute expression before '='")
        if check is not None:
            check(SettingField(name=f.name, label=f.label, kind=FieldKind.EXPRESSION), path)
            check(SettingField(name=f.name, label=f.label, allows_expressions=True), val)
        out.append({"path": path, "value": val})
    return out


def _parameters(value: object) -> list[dict[str, str]]:
    if not isinstance(value, list | tuple):
        raise TypeError("must be a list of parameter/value pairs")
    out = []
    for row in value:
        if not isinstance(row, Mapping):
            raise TypeError("each entry needs a parameter and a value")
        name, val = _cell(row.get("parameter")), _cell(row.get("value"))
        if not name and not val:
            continue
        if not name:
            raise ValueError(f"the value {val!r} needs a parameter name")
        if not val:
            raise ValueError(f"the parameter {name!r} needs a value")
        out.append({"parameter": name, "value": val})
    return out


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _text(value)


def _table(f: SettingField, value: object, check: TemplateCheck | None) -> list[dict[str, object]]:
    if not isinstance(value, list | tuple):
        raise TypeError("must be a list of rows")
    out = []
    for i, row in enumerate(value, 1):
        if not isinstance(row, Mapping):
            raise TypeError(f"row {i} must be an object")
        try:
            out.append(validate_settings(f.columns, row, check=check))
        except SettingsError as exc:
            raise ValueError(f"row {i}: {'; '.join(exc.problems)}") from None
    return out


def describe(fields: Sequence[SettingField]) -> list[dict[str, object]]:
    """The schema as JSON (for the API and the console's generated forms)."""
    out: list[dict[str, object]] = []
    for f in fields:
        item: dict[str, object] = {
            "name": f.name,
            "label": f.label,
            "kind": f.kind.value,
            "required": f.is_required,
            "expressions": f.allows_expressions,
        }
        if f.choices:
            item["choices"] = list(f.choices)
        if f.minimum is not None:
            item["minimum"] = f.minimum
        if f.maximum is not None:
            item["maximum"] = f.maximum
        if f.columns:
            item["columns"] = describe(f.columns)
        if f.default is not None:
            item["default"] = f.default
        if f.help:
            item["help"] = f.help
        out.append(item)
    return out
