"""The alert extension (urn:carewire:alert:0): round trips, strict parsing, the readable body."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewire.xmpp import alert as al
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import is_valid_xml_text, serialize

NS = al.NS
EXPIRES = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def wire(el: Element) -> Element:
    """What the peer parses after we serialise ``el``."""
    return parse_document(serialize(el, None))


def alert_xml(inner: str = "<subject>S</subject><message>M</message>", **attrs: str) -> Element:
    base = {"id": "a1", "priority": "urgent", "ttl": "30", "expires": "2026-03-01T08:30:00Z"}
    base.update(attrs)
    shown = " ".join(f"{k}='{v}'" for k, v in base.items() if v != "-")
    return parse_document(f"<alert xmlns='{NS}' {shown}>{inner}</alert>")


def full_alert() -> al.Alert:
    return al.Alert(
        id="a1",
        subject="Bed 12",
        message="Call from bed 12",
        ttl=30,
        expires_at=EXPIRES,
        priority=al.Priority.URGENT,
        short_message="B12",
        alarm_time="2026-03-01T07:59:00Z",
        patient=al.Patient(
            mrn="123",
            details=(
                al.PatientDetail(label="Name", value="Doe, Jane"),
                al.PatientDetail(label="Secret", value="x", is_hidden=True),
            ),
        ),
        event_response_team=("ann@example.test", "bob@example.test"),
        additional_content="Fall risk",
        accept=True,
        decline=True,
        accept_and_call=True,
        callback_number="5551234",
        accept_badge_phrases=("On my way", "Coming"),
        decline_badge_phrases=("Busy",),
        badge_alert_sound="chime.wav",
        vibrate=True,
        audible=True,
        alert_sound="alarm.wav",
        always_play=True,
        custom_parameters=(("bed", "bed1"), ("unit", "ICU")),
        re_alert=True,
        room="bed12@chat.example.test",
    )


# --- round trips ------------------------------------------------------------------------------


def test_full_alert_round_trips_and_looks_as_documented() -> None:
    a = full_alert()
    el = al.build_alert(a)
    assert el.tag == f"{{{NS}}}alert"
    assert el.attrib == {
        "id": "a1",
        "priority": "urgent",
        "ttl": "30",
        "expires": "2026-03-01T08:30:00Z",
        "re-alert": "true",
        "room": "bed12@chat.example.test",
    }
    assert [c.tag.split("}")[1] for c in el] == [
        "subject",
        "message",
        "short-message",
        "alarm-time",
        "patient",
        "team",
        "additional-content",
        "responses",
        "presentation",
        "parameters",
    ]
    assert al.parse_alert(wire(el)) == a


def test_minimal_alert_has_only_required_parts() -> None:
    a = al.Alert(id="x", subject="S", message="M", ttl=1, expires_at=EXPIRES)
    el = al.build_alert(a)
    assert [c.tag.split("}")[1] for c in el] == ["subject", "message"]
    assert "mass" not in el.attrib and "room" not in el.attrib
    assert al.parse_alert(wire(el)) == a
    assert a.offered == ()


def test_mass_alert_round_trips() -> None:
    a = al.Alert(
        id="m", subject="Tornado", message="Shelter", ttl=64800, expires_at=EXPIRES, is_mass=True
    )
    el = al.build_alert(a)
    assert el.get("mass") == "true"
    assert al.parse_alert(wire(el)) == a


_XML_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12).filter(
    is_valid_xml_text
)
_NONEMPTY = _XML_TEXT.filter(bool)
_JIDS = st.sampled_from(["ann@example.test", "bob@example.test", "room1@chat.example.test"])
_WHEN = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=2))]),
)


@st.composite
def alerts(draw: st.DrawFn) -> al.Alert:
    is_mass = draw(st.booleans())
    accept = not is_mass and draw(st.booleans())
    decline = not is_mass and draw(st.booleans())
    call = not is_mass and draw(st.booleans())
    n_accept = draw(st.integers(0, 5)) if accept else 0
    n_decline = draw(st.integers(0, 5 - n_accept)) if decline else 0
    patient = draw(
        st.none()
        | st.builds(
            al.Patient,
            mrn=_NONEMPTY,
            details=st.lists(
                st.builds(
                    al.PatientDetail, label=_NONEMPTY, value=_XML_TEXT, is_hidden=st.booleans()
                ),
                max_size=3,
            ).map(tuple),
        )
    )
    return al.Alert(
        id=draw(_NONEMPTY),
        subject=draw(_XML_TEXT),
        message=draw(_XML_TEXT),
        ttl=draw(st.integers(1, 64800) if is_mass else st.integers(1, 10**6)),
        expires_at=draw(_WHEN),
        priority=draw(st.sampled_from(al.Priority)),
        short_message=draw(_XML_TEXT),
        alarm_time=draw(st.none() | _XML_TEXT),
        patient=patient,
        event_response_team=tuple(draw(st.lists(_JIDS, max_size=3))),
        additional_content=draw(_XML_TEXT),
        accept=accept,
        decline=decline,
        accept_and_call=call,
        callback_number=draw(_XML_TEXT) if call else "",
        accept_badge_phrases=tuple(draw(st.lists(_XML_TEXT, min_size=n_accept, max_size=n_accept))),
        decline_badge_phrases=tuple(
            draw(st.lists(_XML_TEXT, min_size=n_decline, max_size=n_decline))
        ),
        badge_alert_sound=draw(_XML_TEXT),
        vibrate=draw(st.booleans()),
        audible=draw(st.booleans()),
        alert_sound=draw(_XML_TEXT),
        always_play=draw(st.booleans()),
        custom_parameters=tuple(draw(st.lists(st.tuples(_NONEMPTY, _XML_TEXT), max_size=3))),
        is_mass=is_mass,
        re_alert=draw(st.booleans()),
        room=draw(st.none() | _JIDS),
    )


@settings(max_examples=200, deadline=None)
@given(alerts())
def test_every_valid_alert_round_trips_over_the_wire(a: al.Alert) -> None:
    assert al.parse_alert(wire(al.build_alert(a))) == a


@given(alerts())
def test_building_is_deterministic_and_readable_body_never_fails(a: al.Alert) -> None:
    assert serialize(al.build_alert(a)) == serialize(al.build_alert(a))
    body = al.readable_body(a)
    assert a.subject in body
    assert is_valid_xml_text(body)


@given(st.sampled_from(al.ResponseAction), _NONEMPTY)
def test_response_round_trips(action: al.ResponseAction, alert_id: str) -> None:
    el = al.build_response(alert_id, action)
    assert al.parse_response(wire(el)) == al.Response(alert_id=alert_id, action=action)


@given(st.sampled_from(al.ResponseAction), _NONEMPTY, _JIDS)
def test_responded_round_trips(action: al.ResponseAction, alert_id: str, by: str) -> None:
    notice = al.Responded(alert_id=alert_id, by=by, action=action)
    assert al.parse_responded(wire(al.build_responded(notice))) == notice


@given(_WHEN)
def test_datetimes_round_trip_in_utc(when: datetime) -> None:
    text = al.format_datetime(when)
    assert text.endswith("Z")
    assert al.parse_datetime(text) == when


# --- builder refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": ""}, "alert id is empty"),
        ({"ttl": 0}, "ttl must be a whole number"),
        ({"expires_at": datetime(2026, 3, 1)}, "timezone-aware"),
        (
            {"accept": True, "decline": True, "accept_badge_phrases": ("a", "b", "c")}
            | {"decline_badge_phrases": ("d", "e", "f")},
            "6 badge phrases: at most 5",
        ),
        ({"accept_badge_phrases": ("a",)}, "Accept is not offered"),
        ({"decline_badge_phrases": ("a",)}, "Decline is not offered"),
        ({"callback_number": "1"}, "Accept and Call is not offered"),
        ({"is_mass": True, "ttl": 64801}, "between 1 and 64800"),
        ({"is_mass": True, "accept": True}, "mass alert offers no responses"),
        ({"patient": al.Patient(mrn="")}, "mrn is empty"),
        (
            {"patient": al.Patient(mrn="1", details=(al.PatientDetail(label="", value="v"),))},
            "empty label",
        ),
        ({"event_response_team": ("not a jid@",)}, "not a valid JID"),
        ({"room": "@chat.example.test"}, "room"),
        ({"custom_parameters": (("", "v"),)}, "custom parameter has an empty name"),
    ],
)
def test_builder_refuses_inconsistent_alerts(changes: dict[str, object], message: str) -> None:
    base = al.Alert(id="a", subject="S", message="M", ttl=5, expires_at=EXPIRES)
    with pytest.raises(al.AlertFormatError, match=message) as info:
        al.build_alert(replace(base, **changes))  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert info.value.condition == "bad-request"


def test_five_badge_phrases_are_allowed() -> None:
    a = al.Alert(
        id="a",
        subject="S",
        message="M",
        ttl=5,
        expires_at=EXPIRES,
        accept=True,
        decline=True,
        accept_badge_phrases=("a", "b", "c"),
        decline_badge_phrases=("d", "e"),
    )
    assert al.parse_alert(wire(al.build_alert(a))) == a


# --- strict parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("el", "message"),
    [
        (alert_xml(priority="high"), "unknown priority 'high'"),
        (alert_xml(ttl="ten"), "ttl must be a whole number of minutes: 'ten'"),
        (alert_xml(ttl="-3"), "ttl must be a whole number"),
        (alert_xml(ttl="0"), "ttl must be a whole number of minutes, 1 or more"),
        (alert_xml(id="-"), "<alert/> has no 'id' attribute"),
        (alert_xml(id=""), "alert id is empty"),
        (alert_xml(priority="-"), "no 'priority' attribute"),
        (alert_xml(ttl="-"), "no 'ttl' attribute"),
        (alert_xml(expires="-"), "no 'expires' attribute"),
        (alert_xml(expires="tomorrow"), "not a XEP-0082 date"),
        (alert_xml(expires="2026-02-30T08:00:00Z"), "not a valid date"),
        (alert_xml(mass="yes"), "'mass' must be true or false"),
        (alert_xml("<message>M</message>"), "no <subject/>"),
        (alert_xml("<subject>S</subject>"), "no <message/>"),
        (alert_xml("<subject/><subject/><message/>"), "more than one <subject/>"),
        (alert_xml("<subject/><message/><colour/>"), "unknown element <colour/>"),
        (alert_xml("<subject/><message/><patient/>"), "<patient/> has no 'mrn'"),
        (alert_xml("<subject/><message/><patient mrn='1'><x/></patient>"), "unknown element"),
        (
            alert_xml("<subject/><message/><patient mrn='1'><detail>v</detail></patient>"),
            "<detail/> has no 'label'",
        ),
        (alert_xml("<subject/><message/><team><member/></team>"), "<member/> has no 'jid'"),
        (
            alert_xml("<subject/><message/><team><member jid='a@@b'/></team>"),
            "not a valid JID",
        ),
        (
            alert_xml("<subject/><message/><responses><maybe/></responses>"),
            "unknown element <maybe/> in <responses/>",
        ),
        (
            alert_xml(
                "<subject/><message/><responses><accept>"
                + "<phrase>p</phrase>" * 6
                + "</accept></responses>"
            ),
            "6 badge phrases: at most 5",
        ),
        (
            alert_xml("<subject/><message/><responses><accept/></responses>", mass="true", ttl="5"),
            "mass alert offers no responses",
        ),
        (
            alert_xml("<subject/><message/><presentation vibrate='maybe'/>"),
            "'vibrate' must be true or false",
        ),
        (
            alert_xml("<subject/><message/><parameters><parameter>v</parameter></parameters>"),
            "<parameter/> has no 'name'",
        ),
        (parse_document(f"<other xmlns='{NS}'/>"), "expected <alert"),
    ],
)
def test_parser_refuses_malformed_alerts(el: Element, message: str) -> None:
    with pytest.raises(al.AlertFormatError, match=message):
        al.parse_alert(el)


def test_parser_ignores_foreign_extensions_and_reads_other_offsets() -> None:
    el = alert_xml(
        "<subject>S</subject><x xmlns='urn:example:ext'/><message>M</message>",
        expires="2026-03-01T10:30:00.5+02:00",
        unknown="ignored",
    )
    a = al.parse_alert(el)
    assert a.expires_at == datetime(2026, 3, 1, 8, 30, 0, 500000, tzinfo=UTC)
    assert a.priority is al.Priority.URGENT


def test_boolean_attributes_accept_xml_schema_forms() -> None:
    a = al.parse_alert(alert_xml(mass="1", **{"re-alert": "0"}))
    assert a.is_mass and not a.re_alert


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (f"<response xmlns='{NS}' action='accept'/>", "no 'alert' attribute"),
        (f"<response xmlns='{NS}' alert='' action='accept'/>", "empty 'alert'"),
        (f"<response xmlns='{NS}' alert='a'/>", "no 'action' attribute"),
        (f"<response xmlns='{NS}' alert='a' action='maybe'/>", "unknown action 'maybe'"),
        ("<response xmlns='urn:other' alert='a' action='accept'/>", "expected <response"),
    ],
)
def test_parse_response_refuses_malformed(xml: str, message: str) -> None:
    with pytest.raises(al.AlertFormatError, match=message):
        al.parse_response(parse_document(xml))


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (f"<responded xmlns='{NS}' by='a@b' action='accept'/>", "no 'alert'"),
        (f"<responded xmlns='{NS}' alert='a' action='accept'/>", "no 'by'"),
        (f"<responded xmlns='{NS}' alert='a' by='@' action='accept'/>", "not a valid JID"),
        (f"<responded xmlns='{NS}' alert='a' by='a@b' action='no'/>", "unknown action"),
        (f"<response xmlns='{NS}' alert='a' by='a@b' action='accept'/>", "expected <responded"),
    ],
)
def test_parse_responded_refuses_malformed(xml: str, message: str) -> None:
    with pytest.raises(al.AlertFormatError, match=message):
        al.parse_responded(parse_document(xml))


def test_build_response_refuses_an_empty_id() -> None:
    with pytest.raises(al.AlertFormatError, match="empty"):
        al.build_response("", al.ResponseAction.ACCEPT)


def test_response_action_names() -> None:
    assert al.ResponseAction.ACCEPT_AND_CALL.setting == "accept_and_call"
    assert al.ResponseAction.ACCEPT_AND_CALL.label == "Accept and Call"
    assert al.ResponseAction.DECLINE.label == "Decline"


# --- stored alerts, expiry, offered -----------------------------------------------------------


def test_alert_from_stored_elements() -> None:
    a = full_alert()
    stored = "<stanza-id xmlns='urn:xmpp:sid:0' id='a1' by='r@chat.example.test'/>" + serialize(
        al.build_alert(a), None
    )
    assert al.alert_from_stored(stored) == a
    assert al.alert_from_stored("") is None
    assert al.alert_from_stored("<x xmlns='urn:other'/>") is None
    with pytest.raises(al.AlertFormatError, match="not well-formed"):
        al.alert_from_stored("<alert")


def test_find_alert_in_a_message() -> None:
    msg = Element("{jabber:client}message")
    assert al.find_alert(msg) is None
    msg.append(al.build_alert(full_alert()))
    assert al.find_alert(msg) is not None


def test_offered_order_and_expiry() -> None:
    a = full_alert()
    assert a.offered == (
        al.ResponseAction.ACCEPT,
        al.ResponseAction.ACCEPT_AND_CALL,
        al.ResponseAction.DECLINE,
    )
    assert a.offers(al.ResponseAction.DECLINE)
    assert not replace(a, decline=False, decline_badge_phrases=()).offers(al.ResponseAction.DECLINE)
    assert not a.is_expired(EXPIRES - timedelta(seconds=1))
    assert a.is_expired(EXPIRES)


# --- readable body ----------------------------------------------------------------------------


def test_readable_body_of_a_full_alert() -> None:
    assert al.readable_body(full_alert()) == (
        "[Alert, Urgent] Bed 12\n"
        "Call from bed 12\n"
        "Patient: MRN 123; Name: Doe, Jane\n"
        "Alarm time: 2026-03-01T07:59:00Z\n"
        "Fall risk\n"
        "Responses: Accept, Accept and Call (5551234), Decline. Respond in an app with alert "
        "support; a typed reply is not recorded.\n"
        "Expires 2026-03-01 08:30 UTC."
    )


def test_readable_body_of_a_mass_alert() -> None:
    a = al.Alert(
        id="m", subject="Tornado", message="Shelter now", ttl=60, expires_at=EXPIRES, is_mass=True
    )
    assert al.readable_body(a) == "[Mass alert] Tornado\nShelter now\nExpires 2026-03-01 08:30 UTC."


def test_readable_body_names_each_field_once_and_leaves_out_empty_ones() -> None:
    a = replace(
        full_alert(),
        patient=al.Patient(
            mrn="MRN1001",
            details=(
                al.PatientDetail(label="Patient Name", value="Alice Moreau"),
                al.PatientDetail(label="Facility Admit Date", value=""),
                al.PatientDetail(label="Bed", value="  "),
                al.PatientDetail(label="Location", value="Location: ICU-101A"),
            ),
        ),
        alarm_time="",
    )
    body = al.readable_body(a)
    assert "Patient: MRN1001; Patient Name: Alice Moreau; Location: ICU-101A\n" in body
    assert "MRN MRN" not in body and "Admit Date" not in body and "Bed:" not in body
    assert "Alarm time" not in body


@pytest.mark.parametrize(
    ("label", "value", "expected"),
    [
        ("MRN", "123", "MRN: 123"),
        ("MRN", "MRN1001", "MRN1001"),
        ("MRN", "mrn: 77", "mrn: 77"),
        ("Admit Date", "", ""),
        ("Admit Date", " \t", ""),
        ("", "v", "v"),
        ("Room", "Roommate list", "Room: Roommate list"),
        ("Room", "room 12", "room 12"),
        ("MRN", "mrn", "mrn"),
    ],
)
def test_labelled(label: str, value: str, expected: str) -> None:
    assert al.labelled(label, value) == expected
