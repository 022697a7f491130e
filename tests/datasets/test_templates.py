"""``#{...}`` templates: parsing and formatter checks, pure rendering, rendering from records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from carewire.datasets.model import Attribute, AttrType, Dataset, DatasetName
from carewire.datasets.paths import PathError, PathResolver
from carewire.datasets.registry import Registry, UnknownDatasetError
from carewire.datasets.templates import (
    Expression,
    Template,
    TemplateError,
    find_expressions,
    parse_template,
    render,
    render_for,
)
from carewire.errors import ValidationError
from tests.datasets.conftest import Platform

EAST = timezone(timedelta(hours=2))
WEST = timezone(timedelta(hours=-5))


class _NoSchema:
    """A schema store with nothing saved and no tables: the built-in definitions alone."""

    async def load_definitions(self) -> list[Dataset]:
        return []

    async def apply(self, datasets: Sequence[Dataset], changed: Sequence[DatasetName]) -> None:
        return None

    async def count(self, ds: Dataset) -> int:
        return 0


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    """The built-in definitions plus WIDGETS, whose attributes are named like formatters."""
    reg = Registry(_NoSchema())
    widget_attrs = [
        Attribute(name="join", type=AttrType.STRING),
        Attribute(name="upcase", type=AttrType.INTEGER),
    ]
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(reg.load())
        loop.run_until_complete(reg.create_dataset("WIDGETS", attributes=widget_attrs))
    finally:
        loop.close()
    yield reg


def _expressions(template: Template) -> list[Expression]:
    return [p for p in template.parts if isinstance(p, Expression)]


# --- finding and parsing -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("plain text", []),
        ("", []),
        ("a #{x} b #{ y.z }c", ["x", " y.z "]),
        ("#{}", [""]),
        ("# {x} and {y} and #x", []),
        ("#{a}#{b}", ["a", "b"]),
    ],
)
def test_find_expressions(text: str, found: list[str]) -> None:
    assert find_expressions(text) == found


def test_find_expressions_refuses_an_unclosed_expression() -> None:
    with pytest.raises(TemplateError, match=r"'#\{' at offset 4 is not closed"):
        find_expressions("Bed #{room.room_number")


def test_parse_splits_text_and_expressions(registry: Registry) -> None:
    source = "Bed #{room.room_number}-#{bed_number}#{ room.room_number }!"
    template = parse_template(registry, "BEDS", source)
    assert template.source == source
    texts = [p if isinstance(p, str) else p.text for p in template.parts]
    assert texts == ["Bed ", "room.room_number", "-", "bed_number", " room.room_number ", "!"]
    assert [p.text for p in template.paths] == ["room.room_number", "bed_number"]
    assert not template.is_constant


@pytest.mark.parametrize("source", ["", "no expressions", "# {x}"])
def test_constant_templates(registry: Registry, source: str) -> None:
    template = parse_template(registry, "BEDS", source)
    assert template.is_constant
    assert template.paths == ()
    assert render(template, {}) == source


@pytest.mark.parametrize(
    ("dataset", "inside", "path", "formatters"),
    [
        ("BEDS", "bed_number", "bed_number", ()),
        ("BEDS", "bed_number.upcase", "bed_number", ("upcase",)),
        ("BEDS", "room.room_number.downcase.upcase", "room.room_number", ("downcase", "upcase")),
        ("ROOMS", "beds.bed_number.join", "beds.bed_number", ("join",)),
        ("ROOMS", "beds.bed_number.upcase.join", "beds.bed_number", ("upcase", "join")),
        ("ROOMS", "beds.join", "beds", ("join",)),
        ("PATIENTS", "admit_date.as_date.upcase", "admit_date", ("as_date", "upcase")),
        # A field named like a formatter is the field: the path takes what it can.
        ("WIDGETS", "join", "join", ()),
        ("WIDGETS", "join.upcase", "join", ("upcase",)),
        ("WIDGETS", "upcase", "upcase", ()),
    ],
)
def test_formatters_follow_the_path(
    registry: Registry, dataset: str, inside: str, path: str, formatters: tuple[str, ...]
) -> None:
    (expr,) = _expressions(parse_template(registry, dataset, f"#{{{inside}}}"))
    assert expr.path.text == path
    assert expr.formatters == formatters
    assert expr.text == inside


@pytest.mark.parametrize(
    ("dataset", "source", "message"),
    [
        ("BEDS", "Bed #{room", "template 'Bed #{room': '#{' at offset 4 is not closed"),
        ("BEDS", "x #{} y", "template 'x #{} y': empty expression '#{}'"),
        ("BEDS", "#{  }", "template '#{  }': empty expression '#{  }'"),
        (
            "BEDS",
            "Bed #{room.room_numbr}",
            "template 'Bed #{room.room_numbr}': BEDS: path 'room.room_numbr': "
            "ROOMS has no attribute or link 'room_numbr'",
        ),
        (
            "BEDS",
            "#{room.room_numbr.upcase}",
            "template '#{room.room_numbr.upcase}': BEDS: path 'room.room_numbr': "
            "ROOMS has no attribute or link 'room_numbr'",
        ),
        (
            "BEDS",
            "#{bed_number.bogus}",
            "template '#{bed_number.bogus}': BEDS: path 'bed_number.bogus': "
            "'bed_number' is an attribute of BEDS, so nothing can follow it",
        ),
        (
            "BEDS",
            "#{bed_number.upcase.bogus}",
            "template '#{bed_number.upcase.bogus}': BEDS: path 'bed_number.upcase.bogus': "
            "'bed_number' is an attribute of BEDS, so nothing can follow it",
        ),
        (
            "BEDS",
            "#{upcase}",
            "template '#{upcase}': BEDS: path 'upcase': BEDS has no attribute or link 'upcase'",
        ),
        (
            "BEDS",
            "#{room..room_number}",
            "template '#{room..room_number}': BEDS: path 'room..room_number': segment 2 is empty",
        ),
    ],
)
def test_malformed_templates(registry: Registry, dataset: str, source: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(registry, dataset, source)
    assert str(info.value) == message
    assert info.value.code == "invalid-template"
    assert isinstance(info.value, ValidationError)


@pytest.mark.parametrize(
    ("dataset", "inside", "problem"),
    [
        ("BEDS", "bed_number.as_iso", "as_iso needs a Date or Date/Time, not String"),
        ("BEDS", "bed_number.as_date", "as_date needs a Date or Date/Time, not String"),
        ("BEDS", "bed_number.as_time", "as_time needs a Date/Time, not String"),
        ("PATIENTS", "dob.as_time", "as_time needs a Date/Time, not Date"),
        ("PATIENTS", "dob.upcase", "upcase needs a String, not Date"),
        ("PATIENTS", "admit_date.downcase", "downcase needs a String, not Date/Time"),
        ("PATIENTS", "admit_date.as_iso.as_date", "as_date needs a Date or Date/Time, not String"),
        ("CONVERSATIONS", "ttl.upcase", "upcase needs a String, not Integer"),
        ("CALL_LOG_HISTORY", "deleted.as_iso", "as_iso needs a Date or Date/Time, not Boolean"),
        ("BEDS", "room.upcase", "upcase needs a String, not record ids"),
        ("BEDS", "id.as_iso", "as_iso needs a Date or Date/Time, not record ids"),
        ("BEDS", "bed_number.join", "join needs a to-many path, not a single value"),
        ("BEDS", "room.join", "join needs a to-many path, not a single value"),
        ("PLACES", "patient.mrn.join", "join needs a to-many path, not a single value"),
        ("ROOMS", "beds.bed_number.join.join", "join needs a to-many path, not a single value"),
        ("ROOMS", "beds.bed_number.join.as_iso", "as_iso needs a Date or Date/Time, not String"),
        ("WIDGETS", "join.join", "join needs a to-many path, not a single value"),
    ],
)
def test_formatter_misuse(registry: Registry, dataset: str, inside: str, problem: str) -> None:
    source = f"x #{{{inside}}}"
    with pytest.raises(TemplateError) as info:
        parse_template(registry, dataset, source)
    assert str(info.value) == f"template {source!r}: #{{{inside}}}: {problem}"


def test_unknown_dataset(registry: Registry) -> None:
    with pytest.raises(UnknownDatasetError):
        parse_template(registry, "NOPE", "constant")


# --- rendering -------------------------------------------------------------------

ALARM = datetime(2026, 1, 31, 23, 30, 5, tzinfo=UTC)


def _render(
    registry: Registry, dataset: str, source: str, values: dict[str, object], **kw: timezone
) -> str:
    return render(parse_template(registry, dataset, source), values, **kw)


def _render_one(
    registry: Registry, dataset: str, source: str, value: object, **kw: timezone
) -> str:
    """Render a template of one path, given that path's value."""
    template = parse_template(registry, dataset, source)
    (path,) = template.paths
    return render(template, {path.text: value}, **kw)


def test_render_example(registry: Registry) -> None:
    source = "Bed #{room.room_number}-#{bed_number} at #{room.beds.bed_number.join}"
    values: dict[str, object] = {
        "room.room_number": "101",
        "bed_number": "A",
        "room.beds.bed_number": ["A", "B"],
    }
    assert _render(registry, "BEDS", source, values) == "Bed 101-A at A, B"


@pytest.mark.parametrize(
    ("inside", "tz", "expected"),
    [
        ("admit_date.as_iso", UTC, "2026-01-31T23:30:05+00:00"),
        ("admit_date.as_iso", EAST, "2026-02-01T01:30:05+02:00"),
        ("admit_date.as_date", UTC, "2026-01-31"),
        ("admit_date.as_date", EAST, "2026-02-01"),
        ("admit_date.as_time", UTC, "23:30"),
        ("admit_date.as_time", WEST, "18:30"),
        ("admit_date", EAST, "2026-02-01T01:30:05+02:00"),
        ("admit_date.as_date.upcase", UTC, "2026-01-31"),
        ("dob", EAST, "1980-02-29"),
        ("dob.as_iso", EAST, "1980-02-29"),
        ("dob.as_date", WEST, "1980-02-29"),
        ("last_name.upcase", UTC, "O'HARA-SMITH"),
        ("last_name.downcase", UTC, "o'hara-smith"),
        ("last_name.downcase.upcase", UTC, "O'HARA-SMITH"),
    ],
)
def test_render_formatters(registry: Registry, inside: str, tz: timezone, expected: str) -> None:
    values: dict[str, object] = {
        "admit_date": ALARM,
        "dob": date(1980, 2, 29),
        "last_name": "O'Hara-Smith",
    }
    assert _render(registry, "PATIENTS", f"#{{{inside}}}", values, tz=tz) == expected


@pytest.mark.parametrize(
    ("inside", "value", "expected"),
    [
        ("beds.bed_number", ["A", "B"], "A, B"),
        ("beds.bed_number.join", ["A", "B"], "A, B"),
        ("beds.bed_number.upcase", ["a", "b"], "A, B"),
        ("beds.bed_number.upcase.join.downcase", ["a", "B"], "a, b"),
        ("beds.bed_number.join.upcase", ["a", "b"], "A, B"),
        ("beds.bed_number", [], ""),
        ("beds.bed_number.join", [], ""),
        ("beds", [3, 7], "3, 7"),
        ("beds.join", [3, 7], "3, 7"),
        ("beds.bed_number", ["A", None, "B"], "A, B"),
    ],
)
def test_render_lists(registry: Registry, inside: str, value: object, expected: str) -> None:
    assert _render_one(registry, "ROOMS", f"[#{{{inside}}}]", value) == f"[{expected}]"


def test_render_list_of_times_in_the_render_zone(registry: Registry) -> None:
    source = "#{messages.sent_at}|#{messages.sent_at.as_time}|#{messages.sent_at.as_time.join}"
    values: dict[str, object] = {"messages.sent_at": [ALARM, ALARM + timedelta(hours=1)]}
    assert _render(registry, "CONVERSATIONS", source, values, tz=EAST) == (
        "2026-02-01T01:30:05+02:00, 2026-02-01T02:30:05+02:00|01:30, 02:30|01:30, 02:30"
    )


@pytest.mark.parametrize(
    ("inside", "value", "expected"),
    [
        ("deleted", True, "true"),
        ("deleted", False, "false"),
        ("deleted", None, ""),
        ("caller", "", ""),
        ("caller.upcase", None, ""),
        ("timestamp.as_iso", None, ""),
        ("timestamp.as_time", None, ""),
        ("timestamp.as_date", None, ""),
    ],
)
def test_render_scalars(registry: Registry, inside: str, value: object, expected: str) -> None:
    assert _render_one(registry, "CALL_LOG_HISTORY", f"<#{{{inside}}}>", value) == f"<{expected}>"


def test_render_integers_and_ids(registry: Registry) -> None:
    values: dict[str, object] = {"ttl": 90, "id": 12, "patient": None}
    source = "#{ttl} min, #{id}, #{patient}."
    assert _render(registry, "CONVERSATIONS", source, values) == "90 min, 12, ."


def test_missing_values_render_as_nothing(registry: Registry) -> None:
    assert _render(registry, "BEDS", "Bed #{bed_number}.", {}) == "Bed ."


def test_formatters_leave_values_of_an_unexpected_type_alone(registry: Registry) -> None:
    # render() trusts its caller; a value of the wrong type is shown, not refused.
    source = "#{admit_date.as_iso}|#{admit_date.as_date}|#{admit_date.as_time}|#{last_name.upcase}"
    values: dict[str, object] = {"admit_date": "soon", "last_name": 7}
    assert _render(registry, "PATIENTS", source, values) == "soon|soon|soon|7"
    assert _render(registry, "PATIENTS", "#{last_name.downcase}", {"last_name": 7}) == "7"


# --- rendering from records --------------------------------------------------------


async def test_render_for_reads_the_paths(platform: Platform) -> None:
    svc, registry = platform.service, platform.registry
    main = await svc.create("FACILITIES", {"name": "Main"})
    room = await svc.create("ROOMS", {"room_number": "101", "facility": main.id})
    locs = [
        (await svc.create("LOCATIONS", {"location_id": n, "facility": main.id})).id
        for n in ("L1", "L2")
    ]
    bed = await svc.create("BEDS", {"bed_number": "a", "room": room.id, "locs": locs})
    resolver = PathResolver(registry, platform.store)
    template = parse_template(
        registry,
        "BEDS",
        "Bed #{room.room_number}-#{bed_number.upcase} (#{locs.location_id.downcase})"
        " in #{room.unit.name}#{room.facility.name.upcase}",
    )
    assert await render_for(template, bed, resolver) == "Bed 101-A (l1, l2) in MAIN"
    constant = parse_template(registry, "BEDS", "no expressions")
    assert await render_for(constant, bed, resolver, tz=EAST) == "no expressions"
    with pytest.raises(PathError):
        await render_for(parse_template(registry, "ROOMS", "#{room_number}"), bed, resolver)
