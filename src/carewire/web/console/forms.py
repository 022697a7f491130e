"""Console forms generated from a settings schema (adapter kinds, rule actions).

Theory of operation. A schema (a tuple of :class:`SettingField`) is shown by
the ``settings_fields`` macro of ``templates/_fields.html``, which takes the
*display values* :func:`display_values` makes from stored settings. A POST is
read back by :func:`parse_form` into a mapping :func:`validate_settings`
accepts (LINES and UPDATES as text, TABLE and PARAMETERS as lists of rows),
which :func:`display_values` turns into the same display values again, so a
refused form is shown as it was sent.

Field names: ``s.<name>`` for a single value; ``s.<name>.<i>.<column>`` for
the cells of TABLE and PARAMETERS rows, with the row count in ``s.<name>.rows``.
Rows are added and removed without JavaScript: the buttons submit the form
with ``_row=add:<name>`` or ``_row=remove:<name>:<i>`` and the page re-renders
(:func:`row_action`, :func:`apply_row_action`) instead of saving.

Usage in a template::

    {% from "_fields.html" import settings_fields, problems_box %}
    {{ problems_box(problems) }}
    {{ settings_fields(fields, values, invalid) }}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request

from carewire.errors import CarewireError
from carewire.rules.settings import HEADLINE, FieldKind, SettingField, SettingsError

__all__ = [
    "HEADLINE",
    "PREFIX",
    "ROW_BUTTON",
    "RowAction",
    "apply_row_action",
    "display_values",
    "invalid_fields",
    "parse_form",
    "problems_of",
    "read_large_form",
    "row_action",
]

PREFIX = "s."
ROW_BUTTON = "_row"
#: Enough fields for the largest generated form (30 dataset roles and long tables).
MAX_FIELDS = 2000
MAX_ROWS = 200
_ROWS = (FieldKind.TABLE, FieldKind.PARAMETERS)
_PARAMETER_COLUMNS = (
    SettingField(name="parameter", label="Parameter"),
    SettingField(name="value", label="Value"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RowAction:
    """A row button pressed: add a row to, or remove row ``index`` of, the list ``field``."""

    field: str
    index: int | None = None


def columns_of(f: SettingField) -> tuple[SettingField, ...]:
    """The cells of a row of a TABLE (its columns) or PARAMETERS (parameter, value)."""
    return _PARAMETER_COLUMNS if f.kind is FieldKind.PARAMETERS else f.columns


async def read_large_form(request: Request, *, max_files: int = 0) -> FormData:
    """The POSTed form, allowing as many fields as a generated settings form has."""
    return await request.form(max_files=max_files, max_fields=MAX_FIELDS)


def _text(form: Mapping[str, object], key: str) -> str:
    value = form.get(key, "")
    return value if isinstance(value, str) else ""


def _cell(form: Mapping[str, object], key: str, column: SettingField) -> object:
    if column.kind is FieldKind.BOOLEAN:
        return key in form
    return _text(form, key).strip()


def _row_count(form: Mapping[str, object], key: str) -> int:
    try:
        return max(0, min(int(_text(form, key)), MAX_ROWS))
    except ValueError:
        return 0


def _rows(
    f: SettingField, form: Mapping[str, object], prefix: str, *, keep_empty: bool
) -> list[dict[str, object]]:
    columns = columns_of(f)
    rows = []
    for i in range(_row_count(form, f"{prefix}{f.name}.rows")):
        row = {c.name: _cell(form, f"{prefix}{f.name}.{i}.{c.name}", c) for c in columns}
        texts = [v for c, v in zip(columns, row.values(), strict=True) if c.kind != "boolean"]
        if keep_empty or any(texts):  # a row left empty is dropped, not reported
            rows.append(row)
    return rows


def parse_form(
    fields: Sequence[SettingField],
    form: Mapping[str, object],
    *,
    prefix: str = PREFIX,
    keep_empty_rows: bool = False,
) -> dict[str, object]:
    """The settings a generated form sent, ready for :func:`validate_settings`.

    An unchecked checkbox is ``False``; empty text is ``""`` (validation applies
    defaults and reports required fields); rows with only empty text are dropped
    unless ``keep_empty_rows`` (when redrawing the form after a row button).
    """
    out: dict[str, object] = {}
    for f in fields:
        key = f"{prefix}{f.name}"
        if f.kind in _ROWS:
            out[f.name] = _rows(f, form, prefix, keep_empty=keep_empty_rows)
        elif f.kind is FieldKind.BOOLEAN:
            out[f.name] = key in form
        else:
            out[f.name] = _text(form, key)
    return out


def _lines_text(f: SettingField, value: object) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, list | tuple):
        return ""
    if f.kind is FieldKind.UPDATES:
        return "\n".join(
            f"{row.get('path', '')}={row.get('value', '')}"
            if isinstance(row, Mapping)
            else str(row)
            for row in value
        )
    return "\n".join(str(v) for v in value)


def _display(f: SettingField, value: object) -> object:
    if f.kind is FieldKind.BOOLEAN:
        return value is True
    if f.kind in (FieldKind.LINES, FieldKind.UPDATES):
        return _lines_text(f, value)
    if f.kind in _ROWS:
        rows = value if isinstance(value, list | tuple) else []
        return [display_values(columns_of(f), r) for r in rows if isinstance(r, Mapping)]
    return "" if value is None else str(value)


def display_values(
    fields: Sequence[SettingField], settings: Mapping[str, object]
) -> dict[str, object]:
    """What the form shows for ``settings`` (stored or just sent); defaults fill the gaps.

    Booleans stay booleans, lists become rows of display values, the rest text.
    """
    return {f.name: _display(f, settings.get(f.name, f.default)) for f in fields}


def row_action(form: Mapping[str, object]) -> RowAction | None:
    """The row button pressed, if the form was sent by one (``_row``)."""
    parts = _text(form, ROW_BUTTON).split(":")
    if len(parts) == 2 and parts[0] == "add":
        return RowAction(field=parts[1])
    if len(parts) == 3 and parts[0] == "remove" and parts[2].isdigit():
        return RowAction(field=parts[1], index=int(parts[2]))
    return None


def apply_row_action(
    fields: Sequence[SettingField], values: Mapping[str, object], action: RowAction
) -> dict[str, object]:
    """Display values with a row added (empty, defaults set) or removed."""
    out = dict(values)
    for f in fields:
        if f.name != action.field or f.kind not in _ROWS:
            continue
        current = out.get(f.name)
        rows = list(current) if isinstance(current, list) else []
        if action.index is None:
            rows.append(display_values(columns_of(f), {}))
        elif 0 <= action.index < len(rows):
            del rows[action.index]
        out[f.name] = rows
    return out


def problems_of(exc: CarewireError) -> list[str]:
    """The lines to list under the headline: a SettingsError's problems, else its message."""
    if isinstance(exc, SettingsError):
        return list(exc.problems)
    return [exc.message] if exc.message else []


def invalid_fields(fields: Sequence[SettingField], problems: Sequence[str]) -> frozenset[str]:
    """Names of the fields ``problems`` are about (``Required: Label`` or ``Label: …``)."""
    names = set()
    for f in fields:
        for p in problems:
            if p == f"Required: {f.label}" or p.startswith(f"{f.label}:"):
                names.add(f.name)
    return frozenset(names)
