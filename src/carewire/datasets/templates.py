"""Text templates with ``#{...}`` expressions, as used in rule settings.

``"Bed #{room.room_number}-#{bed_number} at #{alarm_time.as_iso}"`` is text
with three expressions. Each expression is an attribute path (see
:mod:`.paths`) followed by optional *formatters*, written as further
dot-segments and applied left to right:

- ``as_iso``: ISO 8601 (a Date/Time in the render time zone);
- ``as_date``: ``YYYY-MM-DD`` (a Date/Time's date in the render time zone);
- ``as_time``: ``HH:MM``, 24-hour (Date/Time only: a Date has no time);
- ``upcase``, ``downcase``: String values;
- ``join``: a to-many path's list, joined with ``", "``.

A segment is a formatter only when the path cannot take it: ``join`` is the
attribute if the dataset reached has one of that name. Before ``join``,
formatters apply to each element of a list.

Without formatters, a list renders joined with ``", "``, None as nothing,
booleans as ``true``/``false``, and dates and times as ISO 8601 (times in
the render time zone).

Parsing (:func:`parse_template`) checks everything knowable from the
definitions, including formatter types; rendering (:func:`render`) is pure
and takes the values :meth:`~carewire.datasets.paths.PathResolver.resolve_all`
returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

from carewire.datasets.model import AttrType, Record
from carewire.datasets.paths import AttributePath, PathError, PathResolver, parse_path
from carewire.datasets.registry import Registry
from carewire.errors import ValidationError

OPEN, CLOSE = "#{", "}"
LIST_SEPARATOR = ", "
JOIN = "join"


class TemplateError(ValidationError):
    """A template is malformed; the message quotes the template and says why."""

    code = "invalid-template"


@dataclass(frozen=True, slots=True, kw_only=True)
class Expression:
    """One ``#{...}`` of a template.

    Attributes:
        path: The attribute path read.
        formatters: Formatter names, applied left to right.
        text: The text between ``#{`` and ``}``, as written.
    """

    path: AttributePath
    formatters: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """A parsed template.

    Attributes:
        source: The template as written.
        parts: Literal text and expressions, in order.
    """

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def paths(self) -> tuple[AttributePath, ...]:
        """The distinct paths the expressions read, in order of first use."""
        seen: dict[str, AttributePath] = {}
        for part in self.parts:
            if isinstance(part, Expression):
                seen.setdefault(part.path.text, part.path)
        return tuple(seen.values())

    @property
    def is_constant(self) -> bool:
        """Whether the template has no expressions (it renders as its source)."""
        return not any(isinstance(part, Expression) for part in self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Formatter:
    """A formatter: the value types it takes, what it makes, and how.

    Attributes:
        accepts: Types of the values (or list elements) it formats; empty for
            ``join``, which takes a list of any type.
        needs: ``accepts`` for people, for error messages.
        makes: The type it turns a value into (None: the same type).
        apply: Formats one value (or, for ``join``, the list).
    """

    accepts: frozenset[AttrType]
    needs: str
    makes: AttrType | None
    apply: Callable[[object, tzinfo], object]


def _as_iso(value: object, tz: tzinfo) -> object:
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    return value.isoformat() if isinstance(value, date) else value


def _as_date(value: object, tz: tzinfo) -> object:
    if isinstance(value, datetime):
        return value.astimezone(tz).date().isoformat()
    return value.isoformat() if isinstance(value, date) else value


def _as_time(value: object, tz: tzinfo) -> object:
    return value.astimezone(tz).strftime("%H:%M") if isinstance(value, datetime) else value


def _upcase(value: object, tz: tzinfo) -> object:
    return value.upper() if isinstance(value, str) else value


def _downcase(value: object, tz: tzinfo) -> object:
    return value.lower() if isinstance(value, str) else value


def _join(value: object, tz: tzinfo) -> object:
    return _text(value, tz)


_DATES = frozenset({AttrType.DATE, AttrType.DATETIME})
_STRINGS = frozenset({AttrType.STRING})
_STRING = AttrType.STRING
_DATETIMES = frozenset({AttrType.DATETIME})
#: Every formatter, by name.
FORMATTERS: Mapping[str, _Formatter] = {
    "as_iso": _Formatter(accepts=_DATES, needs="a Date or Date/Time", makes=_STRING, apply=_as_iso),
    "as_date": _Formatter(
        accepts=_DATES, needs="a Date or Date/Time", makes=_STRING, apply=_as_date
    ),
    "as_time": _Formatter(accepts=_DATETIMES, needs="a Date/Time", makes=_STRING, apply=_as_time),
    "upcase": _Formatter(accepts=_STRINGS, needs="a String", makes=None, apply=_upcase),
    "downcase": _Formatter(accepts=_STRINGS, needs="a String", makes=None, apply=_downcase),
    JOIN: _Formatter(accepts=frozenset(), needs="a to-many path", makes=_STRING, apply=_join),
}


def find_expressions(text: str) -> list[str]:
    """The text inside each ``#{...}`` of ``text``, in order (not stripped or checked).

    Raises:
        TemplateError: A ``#{`` is not closed.
    """
    return [part for i, part in enumerate(_split(text)) if i % 2]


def _split(text: str) -> list[str]:
    """Literal text and expression insides, alternating (literals at even indexes)."""
    out: list[str] = []
    pos = 0
    while (start := text.find(OPEN, pos)) >= 0:
        end = text.find(CLOSE, start + len(OPEN))
        if end < 0:
            raise TemplateError(f"template {text!r}: '#{{' at offset {start} is not closed")
        out += [text[pos:start], text[start + len(OPEN) : end]]
        pos = end + len(CLOSE)
    out.append(text[pos:])
    return out


def parse_template(registry: Registry, dataset: str, text: str) -> Template:
    """Validate ``text`` as a template on records of ``dataset``.

    Raises:
        UnknownDatasetError: ``dataset`` does not exist.
        TemplateError: A ``#{`` is not closed, an expression is empty, a path
            is not valid, or a formatter does not fit the value it is given.
    """
    registry.get(dataset)
    parts: list[str | Expression] = []
    for i, piece in enumerate(_split(text)):
        if i % 2 == 0:
            if piece:
                parts.append(piece)
        else:
            parts.append(_expression(registry, dataset, text, piece))
    return Template(source=text, parts=tuple(parts))


def _expression(registry: Registry, dataset: str, template: str, inside: str) -> Expression:
    """Parse one expression: the longest valid path, then formatters."""
    where = f"template {template!r}: #{{{inside}}}"
    segments = inside.strip().split(".")
    if segments == [""]:
        raise TemplateError(f"template {template!r}: empty expression '#{{{inside}}}'")
    # The path takes as many segments as it can; what follows must be formatters.
    error: PathError | None = None
    for cut in range(len(segments), 0, -1):
        if cut < len(segments) and segments[cut] not in FORMATTERS:
            break
        try:
            path = parse_path(registry, dataset, ".".join(segments[:cut]))
        except PathError as exc:
            error = exc  # the shortest path tried names the culprit best
            continue
        formatters = tuple(segments[cut:])
        _check_formatters(path, formatters, where)
        return Expression(path=path, formatters=formatters, text=inside)
    assert error is not None
    raise TemplateError(f"template {template!r}: {error.message}") from None


def _check_formatters(path: AttributePath, formatters: tuple[str, ...], where: str) -> None:
    """Refuse a formatter given a value it cannot format."""
    kind: AttrType = AttrType.INTEGER if path.attribute is None else path.attribute.type
    is_list = path.is_many
    for name in formatters:
        spec = FORMATTERS[name]
        fits = is_list if name == JOIN else kind in spec.accepts
        if not fits:
            given = "a single value" if name == JOIN else str(kind)
            if path.attribute is None and name != JOIN:
                given = "record ids"
            raise TemplateError(f"{where}: {name} needs {spec.needs}, not {given}")
        if name == JOIN:
            is_list = False
        kind = spec.makes or kind


def render(template: Template, values: Mapping[str, object], *, tz: tzinfo = UTC) -> str:
    """The template's text with each expression replaced by its value.

    Args:
        template: A parsed template.
        values: Each path's value by ``path.text``, as
            :meth:`~carewire.datasets.paths.PathResolver.resolve_all` returns
            them; a missing value renders as nothing.
        tz: The time zone Date/Time values are shown in.
    """
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = values.get(part.path.text)
        for name in part.formatters:
            apply = FORMATTERS[name].apply
            if name != JOIN and isinstance(value, list | tuple):
                value = [apply(v, tz) for v in value]
            else:
                value = apply(value, tz)
        out.append(_text(value, tz))
    return "".join(out)


def _text(value: object, tz: tzinfo) -> str:
    """A value as template text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return str(_as_iso(value, tz))
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(_text(v, tz) for v in value if v is not None)
    return str(value)


async def render_for(
    template: Template, record: Record, resolver: PathResolver, *, tz: tzinfo = UTC
) -> str:
    """Resolve the template's paths from ``record`` and render it.

    Raises:
        PathError: The template was parsed for another dataset than the record's.
    """
    if template.is_constant:
        return template.source
    return render(template, await resolver.resolve_all(record, template.paths), tz=tz)
