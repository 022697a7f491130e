"""Dataset definitions: the built-in set, the dict form, and validation of a set."""

from __future__ import annotations

import json

import pytest

from carewire.datasets.definitions import (
    DefinitionError,
    builtin_datasets,
    dataset_from_dict,
    dataset_problems,
    dataset_to_dict,
    validate,
)
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
    holds_reference,
    owns_join_table,
)
from carewire.errors import ValidationError

BUILTIN: dict[str, Dataset] = {ds.name: ds for ds in builtin_datasets()}


def _ds(
    name: str, *, attributes: tuple[Attribute, ...] = (), links: tuple[Link, ...] = ()
) -> Dataset:
    return Dataset(name=DatasetName(name), attributes=attributes, links=links)


def _attr(name: str, kind: AttrType = AttrType.STRING, *, is_key: bool = False) -> Attribute:
    return Attribute(name=name, type=kind, is_key=is_key)


def _link(
    name: str,
    target: str,
    reverse: str,
    cardinality: Cardinality,
    *,
    is_key: bool = False,
    is_reverse_key: bool = False,
) -> Link:
    return Link(
        name=name,
        target=DatasetName(target),
        reverse=reverse,
        cardinality=cardinality,
        is_key=is_key,
        is_reverse_key=is_reverse_key,
    )


def _problems(datasets: list[Dataset]) -> tuple[str, ...]:
    with pytest.raises(DefinitionError) as info:
        validate(datasets)
    return info.value.problems


# --- the built-in set ---------------------------------------------------------


def test_the_builtin_datasets_load_and_validate() -> None:
    datasets = builtin_datasets()
    assert len(datasets) == 31  # the 30 of the reference tables and DEVICE_ALARMS
    assert len(BUILTIN) == 31
    assert all(ds.is_builtin for ds in datasets)
    assert {"ACTORS", "BEDS", "CALL_LOG_HISTORY", "USERS", "UNITS", "TEMPLATES"} <= set(BUILTIN)
    validate(datasets)  # does not raise
    assert builtin_datasets() is datasets  # cached


def test_beds_are_keyed_by_number_within_their_room() -> None:
    beds = BUILTIN["BEDS"]
    assert [a.name for a in beds.key_attributes] == ["bed_number"]
    assert [ln.name for ln in beds.key_links] == ["room"]
    room = beds.link("room")
    assert room is not None
    assert room.target == "ROOMS"
    assert room.reverse == "beds"
    assert room.cardinality is Cardinality.MANY_TO_ONE
    reverse = BUILTIN["ROOMS"].link("beds")
    assert reverse is not None
    assert reverse.cardinality is Cardinality.ONE_TO_MANY
    assert reverse.is_reverse_key
    assert not reverse.is_key


def test_assignments_key_and_conversations_ttl() -> None:
    assignments = BUILTIN["ASSIGNMENTS"]
    assert [a.name for a in assignments.key_attributes] == [
        "assignment_id",
        "interface_id",
        "level",
    ]
    assert assignments.key_links == ()
    ttl = BUILTIN["CONVERSATIONS"].attribute("ttl")
    assert ttl is not None
    assert ttl.type is AttrType.INTEGER
    assert ttl.is_required
    assert not ttl.is_key
    assert ttl.must_have_value


def test_restored_full_names() -> None:
    messages = BUILTIN["MESSAGES"]
    acknowledgeable = messages.attribute("acknowledgeable")
    assert acknowledgeable is not None
    assert acknowledgeable.type is AttrType.STRING
    assert BUILTIN["CALL_LOG_HISTORY"].attribute("phone_number") is not None
    roles = BUILTIN["FACILITIES"].link("functional_roles")
    assert roles is not None
    assert roles.target == "FUNCTIONAL_ROLES"
    assert roles.reverse == "facility"
    sender = messages.link("from")
    assert sender is not None
    assert sender.target == "IDENTITIES"
    assert sender.reverse == "messages_sent"
    assert sender.cardinality is Cardinality.MANY_TO_ONE
    sent = BUILTIN["IDENTITIES"].link("messages_sent")
    assert sent is not None
    assert sent.cardinality is Cardinality.ONE_TO_MANY


def test_patient_place_is_one_to_one_held_by_one_side() -> None:
    place = BUILTIN["PATIENTS"].link("current_place")
    patient = BUILTIN["PLACES"].link("patient")
    assert place is not None
    assert patient is not None
    assert place.cardinality is patient.cardinality is Cardinality.ONE_TO_ONE
    assert (place.target, place.reverse) == ("PLACES", "patient")
    assert (patient.target, patient.reverse) == ("PATIENTS", "current_place")
    # Exactly one side stores the reference: ("PATIENTS", …) sorts before ("PLACES", …).
    assert holds_reference(DatasetName("PATIENTS"), place)
    assert not holds_reference(DatasetName("PLACES"), patient)


def test_keyless_datasets() -> None:
    keyless = sorted(name for name, ds in BUILTIN.items() if not ds.has_key)
    assert "CALL_LOG_HISTORY" in keyless
    assert "PLACES" in keyless
    assert "BEDS" not in keyless


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_link_has_a_matching_reverse(name: str) -> None:
    ds = BUILTIN[name]
    for link in ds.links:
        target = BUILTIN[link.target]
        reverse = target.link(link.reverse)
        assert reverse is not None, f"{name}.{link.name}"
        assert reverse.target == name
        assert reverse.reverse == link.name
        assert reverse.cardinality is link.cardinality.reverse
        assert reverse.is_reverse_key == link.is_key
        assert reverse.is_key == link.is_reverse_key
        if link.is_key:
            assert not link.is_to_many


def test_exactly_one_side_holds_each_reference_or_join_table() -> None:
    for ds in BUILTIN.values():
        for link in ds.links:
            reverse = BUILTIN[link.target].link(link.reverse)
            assert reverse is not None
            here = holds_reference(ds.name, link)
            there = holds_reference(link.target, reverse)
            if link.cardinality is Cardinality.MANY_TO_MANY:
                assert not here
                assert not there
                assert owns_join_table(ds.name, link) != owns_join_table(link.target, reverse)
            else:
                assert here != there, f"{ds.name}.{link.name}"
                assert not owns_join_table(ds.name, link)


def test_self_links_are_consistent() -> None:
    actors = BUILTIN["ACTORS"]
    favorites = actors.link("favorites")
    favorite_of = actors.link("favorite_of")
    assert favorites is not None
    assert favorite_of is not None
    assert owns_join_table(actors.name, favorite_of)
    assert not owns_join_table(actors.name, favorites)


# --- the dict form --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_round_trip_of_every_builtin_dataset(name: str) -> None:
    ds = BUILTIN[name]
    data = json.loads(json.dumps(dataset_to_dict(ds)))
    assert dataset_from_dict(name, data, is_builtin=True) == ds


def test_round_trip_keeps_every_flag_and_leaves_defaults_out() -> None:
    ds = Dataset(
        name=DatasetName("WARDS"),
        description="wards of a facility",
        attributes=(
            Attribute(name="code", type=AttrType.STRING, is_key=True, description="ward code"),
            Attribute(name="opened", type=AttrType.DATE, is_required=True),
            Attribute(name="since", type=AttrType.DATETIME),
            Attribute(name="beds_total", type=AttrType.INTEGER),
            Attribute(name="is_open", type=AttrType.BOOLEAN),
        ),
        links=(
            _link("facility", "FACILITIES", "wards", Cardinality.MANY_TO_ONE, is_key=True),
            _link("parts", "ROOMS", "ward", Cardinality.ONE_TO_MANY, is_reverse_key=True),
        ),
    )
    data = dataset_to_dict(ds)
    assert data["description"] == "wards of a facility"
    attrs = data["attributes"]
    assert isinstance(attrs, list)
    assert attrs[0] == {"name": "code", "type": "String", "key": True, "description": "ward code"}
    assert attrs[1] == {"name": "opened", "type": "Date", "required": True}
    assert attrs[2] == {"name": "since", "type": "Date/Time"}
    links = data["links"]
    assert isinstance(links, list)
    assert links[1] == {
        "name": "parts",
        "target": "ROOMS",
        "reverse": "ward",
        "cardinality": "1:n",
        "reverse_key": True,
    }
    assert dataset_from_dict("WARDS", data, is_builtin=False) == ds
    assert dataset_from_dict("WARDS", data, is_builtin=True).is_builtin


def test_empty_dataset_round_trip() -> None:
    ds = Dataset(name=DatasetName("EMPTY"))
    assert dataset_to_dict(ds) == {"description": ""}
    assert dataset_from_dict("EMPTY", {}, is_builtin=False) == ds


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"attributes": [{"name": "a"}]}, id="attribute-without-type"),
        pytest.param({"attributes": [{"type": "String"}]}, id="attribute-without-name"),
        pytest.param({"attributes": [{"name": "a", "type": "Float"}]}, id="unknown-type"),
        pytest.param(
            {"attributes": [{"name": "a", "type": "String", "key": "yes"}]}, id="flag-not-bool"
        ),
        pytest.param(
            {"attributes": [{"name": "a", "type": "String", "required": 1}]}, id="flag-int"
        ),
        pytest.param({"attributes": "a"}, id="attributes-not-a-list"),
        pytest.param({"attributes": [None]}, id="attribute-none"),
        pytest.param(
            {"links": [{"name": "x", "target": "B", "cardinality": "n:1"}]}, id="link-no-reverse"
        ),
        pytest.param(
            {"links": [{"name": "x", "target": "B", "reverse": "y", "cardinality": "2:2"}]},
            id="unknown-cardinality",
        ),
        pytest.param(
            {
                "links": [
                    {
                        "name": "x",
                        "target": "B",
                        "reverse": "y",
                        "cardinality": "n:1",
                        "reverse_key": "no",
                    }
                ]
            },
            id="reverse-key-not-bool",
        ),
        pytest.param({"links": [["x"]]}, id="link-not-a-mapping"),
    ],
)
def test_malformed_dicts_raise_definition_error(data: dict[str, object]) -> None:
    with pytest.raises(DefinitionError) as info:
        dataset_from_dict("BROKEN", data, is_builtin=False)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("BROKEN: malformed definition")
    assert isinstance(info.value, ValidationError)
    assert info.value.code == "invalid-definition"


# --- validation -----------------------------------------------------------------


def test_a_valid_pair_passes() -> None:
    validate(
        [
            _ds("A", links=(_link("b", "B", "as_", Cardinality.MANY_TO_ONE, is_key=True),)),
            _ds(
                "B",
                links=(_link("as_", "A", "b", Cardinality.ONE_TO_MANY, is_reverse_key=True),),
            ),
        ]
    )


def test_unknown_target() -> None:
    problems = _problems([_ds("A", links=(_link("b", "NOPE", "as_", Cardinality.MANY_TO_ONE),))])
    assert problems == ("A.b: links to unknown dataset NOPE",)


def test_missing_reverse() -> None:
    problems = _problems(
        [_ds("A", links=(_link("b", "B", "as_", Cardinality.MANY_TO_ONE),)), _ds("B")]
    )
    assert problems == ("A.b: the reverse link B.as_ does not exist",)


def test_reverse_pointing_elsewhere() -> None:
    problems = _problems(
        [
            _ds("A", links=(_link("b", "B", "others", Cardinality.MANY_TO_ONE),)),
            _ds("B", links=(_link("others", "C", "b", Cardinality.ONE_TO_MANY),)),
            _ds("C", links=(_link("b", "B", "others", Cardinality.MANY_TO_ONE),)),
        ]
    )
    assert len(problems) == 1
    assert problems[0].startswith("A.b: its reverse B.others points to C.b, not back here")


def test_cardinality_mismatch() -> None:
    problems = _problems(
        [
            _ds("A", links=(_link("b", "B", "as_", Cardinality.MANY_TO_ONE),)),
            _ds("B", links=(_link("as_", "A", "b", Cardinality.MANY_TO_MANY),)),
        ]
    )
    assert "A.b: is n:1 but its reverse B.as_ is m:n (expected 1:n)" in problems
    assert "B.as_: is m:n but its reverse A.b is n:1 (expected m:n)" in problems


def test_key_flag_mismatch() -> None:
    problems = _problems(
        [
            _ds("A", links=(_link("b", "B", "as_", Cardinality.MANY_TO_ONE, is_key=True),)),
            _ds("B", links=(_link("as_", "A", "b", Cardinality.ONE_TO_MANY),)),
        ]
    )
    assert problems == ("A.b: key is True but the reverse's reverse key is False",)


@pytest.mark.parametrize("name", ["beds", "1BEDS", "BEDS-X", "B" * 49, "", "A__B"])
def test_bad_dataset_names(name: str) -> None:
    problems = dataset_problems(_ds(name))
    assert problems == [
        f"{name!r}: a dataset name is upper-case letters, digits and single underscores"
    ]


@pytest.mark.parametrize("name", ["Bad", "room number", "1st", "_x", "x" * 64, "from-x", "a__b"])
def test_bad_field_names(name: str) -> None:
    assert dataset_problems(_ds("A", attributes=(_attr(name),))) == [
        f"A.{name}: a name is lower-case letters, digits and single underscores"
    ]


def test_longest_names_are_allowed() -> None:
    assert dataset_problems(_ds("A" * 48, attributes=(_attr("a" * 63),))) == []


def test_reserved_id() -> None:
    assert dataset_problems(_ds("A", attributes=(_attr("id"),))) == ["A.id: 'id' is reserved"]
    problems = _problems(
        [
            _ds("A", links=(_link("id", "B", "as_", Cardinality.MANY_TO_ONE),)),
            _ds("B", links=(_link("as_", "A", "id", Cardinality.ONE_TO_MANY),)),
        ]
    )
    assert problems == ("A.id: 'id' is reserved",)


def test_duplicate_names() -> None:
    assert dataset_problems(_ds("A", attributes=(_attr("x"), _attr("x", AttrType.INTEGER)))) == [
        "A.x: the name is used twice"
    ]
    problems = _problems(
        [
            _ds(
                "A",
                attributes=(_attr("b"),),
                links=(_link("b", "B", "as_", Cardinality.MANY_TO_MANY),),
            ),
            _ds("B", links=(_link("as_", "A", "b", Cardinality.MANY_TO_MANY),)),
        ]
    )
    assert problems == ("A.b: the name is used twice",)


def test_dataset_defined_twice() -> None:
    assert _problems([_ds("A"), _ds("A")]) == ("A: defined twice",)


def test_key_on_a_to_many_link() -> None:
    problems = _problems(
        [
            _ds("A", links=(_link("bs", "B", "a", Cardinality.ONE_TO_MANY, is_key=True),)),
            _ds(
                "B",
                links=(_link("a", "A", "bs", Cardinality.MANY_TO_ONE, is_reverse_key=True),),
            ),
        ]
    )
    assert problems == ("A.bs: only a to-one link can be part of the key",)


def test_attribute_clashing_with_a_link_column() -> None:
    problems = dataset_problems(
        _ds(
            "A",
            attributes=(_attr("room_id", AttrType.INTEGER),),
            links=(_link("room", "ROOMS", "as_", Cardinality.MANY_TO_ONE),),
        )
    )
    assert len(problems) == 1
    assert problems[0].startswith("A.room_id: clashes with the column of link room")


def test_several_problems_are_listed_at_once() -> None:
    datasets = [
        _ds("bad", attributes=(_attr("id"), _attr("x"), _attr("x"))),
        _ds("A", links=(_link("b", "NOPE", "as_", Cardinality.MANY_TO_ONE),)),
        _ds("C", links=(_link("d", "D", "cs", Cardinality.MANY_TO_ONE),)),
        _ds("D"),
    ]
    with pytest.raises(DefinitionError) as info:
        validate(datasets)
    problems = info.value.problems
    assert set(problems) == {
        "'bad': a dataset name is upper-case letters, digits and single underscores",
        "bad.id: 'id' is reserved",
        "bad.x: the name is used twice",
        "A.b: links to unknown dataset NOPE",
        "C.d: the reverse link D.cs does not exist",
    }
    assert str(info.value) == "; ".join(problems)
    assert info.value.message == "; ".join(problems)


def test_builtin_set_with_a_broken_dataset_names_it() -> None:
    beds = BUILTIN["BEDS"]
    broken = Dataset(
        name=beds.name,
        attributes=beds.attributes,
        links=tuple(ln for ln in beds.links if ln.name != "room"),
        is_builtin=True,
    )
    datasets = [ds for ds in builtin_datasets() if ds.name != "BEDS"] + [broken]
    problems = _problems(datasets)
    assert problems == ("ROOMS.beds: the reverse link BEDS.room does not exist",)
