"""Client settings, clinical roster and patient details (carewire.features.client_settings)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

import pytest

from carewire.datasets.query import Query
from carewire.datasets.service import Batch
from carewire.errors import ConfigError
from carewire.features.client_settings import (
    NS_PATIENT,
    NS_ROSTER,
    NS_SETTINGS,
    ClientSettingsService,
    UnknownPatientError,
)
from carewire.features.disco import ACK_FEATURE
from carewire.security.audit import AuditEntry
from carewire.xmpp import ns
from tests.features.harness import DOMAIN, Harness, error_condition, make_harness

S = f"{{{NS_SETTINGS}}}"
R = f"{{{NS_ROSTER}}}"
P = f"{{{NS_PATIENT}}}"
FEATURES = ["disco", "message", "offline", "client_settings"]
GENERAL = {"name": "General"}
NORTH = {"name": "North"}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    yield harness
    await harness.close()


async def configure(h: Harness, **settings: object) -> None:
    """Save the XMPP adapter's settings as the console does (the chat domain stays)."""
    assert h.platform is not None
    await h.platform.adapters.update("XMPP", settings={"chat_domain": DOMAIN, **settings})


async def ask(
    h: Harness, payload: str, *, to: str | None = DOMAIN, login: str = "alice"
) -> Element:
    addr = f" to='{to}'" if to else ""
    return await h.ask(login, f"<iq type='get' id='q1'{addr}>{payload}</iq>")


def result(reply: Element, tag: str) -> Element:
    assert reply.get("type") == "result", error_condition(reply)
    el = reply.find(tag)
    assert el is not None
    return el


async def get_settings(h: Harness, login: str = "alice") -> Element:
    reply = await ask(h, f"<settings xmlns='{NS_SETTINGS}'/>", login=login)
    assert reply.get("from") == DOMAIN
    return result(reply, f"{S}settings")


def rows(el: Element, path: str) -> list[dict[str, str]]:
    return [dict(c.attrib) for c in el.iterfind(path)]


# --- the settings IQ -------------------------------------------------------------------


async def test_settings_defaults(h: Harness) -> None:
    s = await get_settings(h)
    assert s.findtext(f"{S}help-link") == ""
    assert [(t.get("client"), t.text) for t in s.iterfind(f"{S}session-timeout")] == [
        ("mobile", "off"),
        ("desktop", "off"),
    ]
    assert s.findtext(f"{S}offline-message-timeout") == str(7 * 86400)
    assert rows(s, f"{S}acknowledgements") == [{"enabled": "true"}]
    assert rows(s, f"{S}roster") == [
        {"multiple-facility": "false", "level1-prefix": "Primary", "level2-prefix": "Backup"}
    ]
    for name in (
        "phone-number-transformations",
        "patient-details",
        "patient-location-transformations",
        "custom-parameters",
        "presence-states",
    ):
        child = s.find(f"{S}{name}")
        assert child is not None and len(child) == 0, name


async def test_settings_follow_the_adapter(h: Harness) -> None:
    await configure(
        h,
        help_link="https://help.example.test/",
        mobile_session_timeout="13 hours",
        desktop_session_timeout="15 minutes",
        offline_message_timeout="1 day",
        disable_acknowledgements=True,
        multiple_facility=True,
        level1_prefix="First",
        level2_prefix="Second",
        phone_number_transformations=[
            {"reference_name": "ext", "pattern": "XXXX", "mask": "+1617555XXXX"},
            {"pattern": "XXX", "mask": "0", "active": False},
            {"pattern": "9XXXXXXXXXX", "mask": "XXXXXXXXXX"},
        ],
        patient_details=[
            {"label": "Room", "attribute_path": "bed.room.room_number"},
            {"label": "Status", "attribute_path": "status", "hidden": True},
        ],
        patient_location_transformations=[
            {"reference_name": "broken", "pattern": "ICU(", "replacement": "x"},
            {"pattern": "Intensive Care(.*)", "replacement": "ICU$1"},
            {"pattern": "x", "replacement": "y", "active": False},
        ],
        custom_parameters=[{"parameter": "site.id", "value": "2030"}],
    )
    s = await get_settings(h)
    assert s.findtext(f"{S}help-link") == "https://help.example.test/"
    assert [t.text for t in s.iterfind(f"{S}session-timeout")] == ["46800", "900"]
    assert s.findtext(f"{S}offline-message-timeout") == "86400"
    assert rows(s, f"{S}acknowledgements") == [{"enabled": "false"}]
    assert rows(s, f"{S}roster") == [
        {"multiple-facility": "true", "level1-prefix": "First", "level2-prefix": "Second"}
    ]
    assert rows(s, f"{S}phone-number-transformations/{S}transformation") == [
        {"name": "ext", "pattern": "XXXX", "mask": "+1617555XXXX"},
        {"pattern": "9XXXXXXXXXX", "mask": "XXXXXXXXXX"},
    ]
    assert rows(s, f"{S}patient-details/{S}detail") == [
        {"label": "Room", "path": "bed.room.room_number", "hidden": "false"},
        {"label": "Status", "path": "status", "hidden": "true"},
    ]
    # The rule whose pattern is not a valid regular expression is not sent.
    assert rows(s, f"{S}patient-location-transformations/{S}transformation") == [
        {"pattern": "Intensive Care(.*)", "replacement": "ICU$1"}
    ]
    assert rows(s, f"{S}custom-parameters/{S}parameter") == [{"name": "site.id", "value": "2030"}]
    # The next save is read at the next request.
    await configure(h, help_link="https://other.example.test/")
    s = await get_settings(h)
    assert s.findtext(f"{S}help-link") == "https://other.example.test/"
    assert rows(s, f"{S}acknowledgements") == [{"enabled": "true"}]


async def test_settings_without_to_and_bad_requests(h: Harness) -> None:
    reply = await ask(h, f"<settings xmlns='{NS_SETTINGS}'/>", to=None)
    assert result(reply, f"{S}settings") is not None
    reply = await h.ask("alice", f"<iq type='set' id='s'><settings xmlns='{NS_SETTINGS}'/></iq>")
    assert error_condition(reply) == "service-unavailable"
    # Unknown children are ignored; the answer is the same.
    reply = await ask(h, f"<settings xmlns='{NS_SETTINGS}'><junk/>text</settings>")
    assert result(reply, f"{S}settings").findtext(f"{S}help-link") == ""
    # A payload in another namespace is not ours.
    reply = await ask(h, "<settings xmlns='urn:carewire:settings:9'/>")
    assert error_condition(reply) == "service-unavailable"


async def test_presence_states_of_the_users_facility(h: Harness) -> None:
    p = h.platform
    assert p is not None
    for facility in (GENERAL, NORTH):
        await p.datasets.upsert("FACILITIES", facility)
    await p.datasets.upsert("UNITS", {"name": "ICU", "facility": GENERAL})
    await p.datasets.upsert(
        "USERS", {"login": "alice", "unit": {"name": "ICU", "facility": GENERAL}}
    )
    await p.datasets.upsert(
        "PRESENCE_STATES",
        {"show": "dnd", "status": "In surgery", "duration": 60, "facility": GENERAL},
    )
    await p.datasets.upsert(
        "PRESENCE_STATES", {"show": "away", "status": "On break", "facility": GENERAL}
    )
    await p.datasets.upsert(
        "PRESENCE_STATES", {"show": "xa", "status": "Elsewhere", "facility": NORTH}
    )
    s = await get_settings(h, "alice")
    assert rows(s, f"{S}presence-states/{S}state") == [
        {"facility": "General", "show": "dnd", "status": "In surgery", "duration": "60"},
        {"facility": "General", "show": "away", "status": "On break"},
    ]
    # Someone who is not in USERS sees every facility's states.
    s = await get_settings(h, "bob")
    assert [r["facility"] for r in rows(s, f"{S}presence-states/{S}state")] == [
        "General",
        "General",
        "North",
    ]


# --- acknowledgements and the offline timeout -----------------------------------------------


async def test_disable_acknowledgements_hides_the_disco_feature(h: Harness) -> None:
    h.kernel.ctx.disco.add_server_feature(ACK_FEATURE)  # as the tracking feature does
    h.kernel.ctx.disco.add_account_feature(ACK_FEATURE)
    info = f"<query xmlns='{ns.DISCO_INFO}'/>"

    async def advertised(to: str) -> set[str]:
        query = result(await ask(h, info, to=to), f"{{{ns.DISCO_INFO}}}query")
        return {f.get("var", "") for f in query.iter(f"{{{ns.DISCO_INFO}}}feature")}

    await h.account("bob")
    assert ACK_FEATURE in await advertised(DOMAIN)
    assert NS_SETTINGS in await advertised(DOMAIN)
    await configure(h, disable_acknowledgements=True)
    assert ACK_FEATURE not in await advertised(DOMAIN)
    assert ACK_FEATURE not in await advertised(f"bob@{DOMAIN}")
    assert ns.DISCO_INFO in await advertised(DOMAIN)
    await configure(h, disable_acknowledgements=False)
    assert ACK_FEATURE in await advertised(DOMAIN)


async def test_offline_messages_kept_for_the_adapters_timeout(h: Harness) -> None:
    alice, _ = await h.bind("alice")
    await h.account("bob")
    await configure(h, offline_message_timeout="1 hour")
    await h.send(alice, "<message to='bob@example.test' id='m1'><body>short</body></message>")
    await configure(h)  # Default: 7 days, for messages stored from now on
    await h.send(alice, "<message to='bob@example.test' id='m2'><body>long</body></message>")
    h.clock.advance(2 * 3600)
    kept = await h.kernel.stores.offline.fetch("bob", now=h.clock.now())
    assert len(kept) == 1 and "m2" in kept[0].stanza
    h.clock.advance(7 * 86400)
    assert await h.kernel.stores.offline.fetch("bob", now=h.clock.now()) == []


# --- the roster -------------------------------------------------------------------------------


async def hospital(h: Harness) -> None:
    """Two facilities with an ICU each; RN at levels 1 and 2 in ICU-1, only level 1 elsewhere."""
    p = h.platform
    assert p is not None
    async with p.datasets.batch(name="test_hospital") as b:
        for facility in (GENERAL, NORTH):
            await b.upsert("FACILITIES", facility)
            await b.upsert("UNITS", {"name": "ICU", "facility": facility})
            for role in ("RN", "MD"):
                await b.upsert("FUNCTIONAL_ROLES", {"name": role, "facility": facility})
        await b.upsert("UNITS", {"name": "Emergency", "facility": GENERAL})
        users = {
            "ann": ("Ann", "Lee", "Ann Lee"),
            "bo": ("Bo", "Kim", ""),
            "cy": ("", "", ""),
            "di": ("Di", "Ray", "Dr Di Ray"),
        }
        for login, (first, last, ref) in users.items():
            values: dict[str, object] = {"login": login, "first_name": first, "last_name": last}
            if ref:
                values["reference_name"] = ref
            await b.upsert("USERS", values)
        locs = {"ICU-1": GENERAL, "ICU-2": GENERAL, "N-ICU-1": NORTH, "ER-1": GENERAL}
        for location_id, facility in locs.items():
            unit = "Emergency" if location_id.startswith("ER") else "ICU"
            await b.upsert(
                "LOCATIONS",
                {
                    "location_id": location_id,
                    "facility": facility,
                    "units": [{"name": unit, "facility": facility}],
                },
            )
        assignments = [
            ("a1", "ICU-1", GENERAL, "RN", "1", "active", "ann"),
            ("a2", "ICU-1", GENERAL, "RN", "2", "active", "bo"),
            ("a3", "ICU-1", GENERAL, "MD", "1", "active", "di"),
            ("a4", "ICU-2", GENERAL, "RN", "1", "active", "cy"),
            ("a5", "ICU-2", GENERAL, "RN", "2", "expired", "bo"),
            ("a6", "N-ICU-1", NORTH, "RN", "2", "active", "ann"),
            ("a7", "ICU-2", GENERAL, "RN", "1", "next", "di"),
        ]
        for aid, loc, facility, role, level, state, login in assignments:
            await b.upsert(
                "ASSIGNMENTS",
                {
                    "assignment_id": aid,
                    "interface_id": "test",
                    "level": level,
                    "state": state,
                    "location": {"location_id": loc, "facility": facility},
                    "role": {"name": role, "facility": facility},
                    "usr": {"login": login},
                },
            )


def roster_of(el: Element) -> list[tuple[str, str, list[tuple[str, list[tuple[str, str, str]]]]]]:
    """(unit name, location id, [(role name, [(jid, name, level)])]) per location."""
    out = []
    for unit in el.iterfind(f"{R}unit"):
        for loc in unit.iterfind(f"{R}location"):
            roles = [
                (
                    role.get("name", ""),
                    [
                        (u.get("jid", ""), u.get("name", ""), u.get("level", ""))
                        for u in role.iterfind(f"{R}user")
                    ],
                )
                for role in loc.iterfind(f"{R}role")
            ]
            out.append((unit.get("name", ""), loc.get("id", ""), roles))
    return out


async def get_roster(h: Harness) -> Element:
    return result(await ask(h, f"<roster xmlns='{NS_ROSTER}'/>", to=None), f"{R}roster")


async def test_roster_units_locations_roles_and_prefixes(h: Harness) -> None:
    await hospital(h)
    el = await get_roster(h)
    assert [(u.get("name"), u.get("unit"), u.get("facility")) for u in el] == [
        ("Emergency", "Emergency", "General"),
        ("ICU", "ICU", "General"),
        ("ICU", "ICU", "North"),
    ]
    assert roster_of(el) == [
        ("Emergency", "ER-1", []),
        (
            "ICU",
            "ICU-1",
            [
                ("MD", [(f"di@{DOMAIN}", "Dr Di Ray", "1")]),
                ("Primary RN", [(f"ann@{DOMAIN}", "Ann Lee", "1")]),
                ("Backup RN", [(f"bo@{DOMAIN}", "Bo Kim", "2")]),
            ],
        ),
        # Level 2 expired and level 1 "next": no prefix, only the active assignment.
        ("ICU", "ICU-2", [("RN", [(f"cy@{DOMAIN}", "cy", "1")])]),
        # Only a level-2 assignment: no prefix either.
        ("ICU", "N-ICU-1", [("RN", [(f"ann@{DOMAIN}", "Ann Lee", "2")])]),
    ]
    assert {r.get("role") for r in el.iterfind(f"{R}unit/{R}location/{R}role")} == {"MD", "RN"}


async def test_roster_follows_multiple_facility_and_prefix_settings(h: Harness) -> None:
    await hospital(h)
    await configure(h, multiple_facility=True, level1_prefix="Lead", level2_prefix="Relief")
    el = await get_roster(h)
    assert [u.get("name") for u in el] == ["General Emergency", "General ICU", "North ICU"]
    icu1 = roster_of(el)[1]
    assert icu1[1] == "ICU-1"
    assert [name for name, _ in icu1[2]] == ["MD", "Lead RN", "Relief RN"]
    assert {r.get("role") for r in el.iterfind(f"{R}unit/{R}location/{R}role")} == {"MD", "RN"}


async def test_roster_of_an_empty_platform(h: Harness) -> None:
    el = await get_roster(h)
    assert len(el) == 0


async def test_roster_without_a_units_dataset(h: Harness) -> None:
    """The adapter's datasets can be chosen; a roster needs every one of them."""
    p = h.platform
    assert p is not None
    service = h.kernel.ctx.require(ClientSettingsService)
    assert service is not None
    config = p.adapters.get("XMPP")
    # Point the adapter at a units dataset that does not exist (as a broken install would).
    p.adapters._instances["XMPP"] = type(config)(
        id=config.id,
        reference_name=config.reference_name,
        component=config.component,
        is_enabled=True,
        required_datasets={**config.required_datasets, "UNITS": "NO_SUCH_UNITS"},
        settings=config.settings,
    )
    reply = await ask(h, f"<roster xmlns='{NS_ROSTER}'/>")
    assert error_condition(reply) == "service-unavailable"


# --- patients -----------------------------------------------------------------------------


async def admit(h: Harness, *, with_bed: bool = True) -> None:
    """Jane Roe, admitted to bed 101 A of Intensive Care (PATIENTS.bed is built in)."""
    p = h.platform
    assert p is not None
    async with p.datasets.batch(name="test_admit") as b:
        await b.upsert("FACILITIES", GENERAL)
        await b.upsert("UNITS", {"name": "Intensive Care", "facility": GENERAL})
        room = {"room_number": "101", "facility": GENERAL}
        await b.upsert("ROOMS", {**room, "unit": {"name": "Intensive Care", "facility": GENERAL}})
        await b.upsert("BEDS", {"bed_number": "A", "room": room})
        values: dict[str, object] = {
            "mrn": "MRN-1",
            "first_name": "Jane",
            "last_name": "Roe",
            "dob": "1980-02-29",
            "sex": "F",
            "admit_date": "2026-01-31T08:00:00+01:00",
            "status": "Admitted",
        }
        if with_bed:
            values["bed"] = {"bed_number": "A", "room": room}
        await b.upsert("PATIENTS", values)
        # alice, who asks in these tests, is on Jane's care team.
        await assign(b, "alice", {"patient": {"mrn": "MRN-1"}})


async def assign(b: Batch, login: str, target: dict[str, object], state: str = "active") -> None:
    """An assignment of ``login`` (made a USERS record) to a patient or location."""
    await b.upsert("USERS", {"login": login})
    values = {"assignment_id": f"{login}-{len(str(target))}", "interface_id": "t", "level": "1"}
    await b.upsert("ASSIGNMENTS", {**values, "state": state, "usr": {"login": login}, **target})


def details(el: Element) -> list[tuple[str, str, str, str]]:
    return [
        (d.get("label", ""), d.get("path", ""), d.text or "", d.get("hidden", ""))
        for d in el.iterfind(f"{P}detail")
    ]


async def get_patient(h: Harness, mrn: str = "MRN-1") -> Element:
    reply = await ask(h, f"<patient xmlns='{NS_PATIENT}' mrn='{mrn}'/>", to=None)
    return result(reply, f"{P}patient")


DEFAULTS = [
    ("First Name", "first_name", "Jane", "false"),
    ("Last Name", "last_name", "Roe", "false"),
    ("Date of Birth", "dob", "1980-02-29", "false"),
    ("Sex", "sex", "F", "false"),
    ("Facility Admit Date", "admit_date", "2026-01-31T07:00:00Z", "false"),
]


async def test_patient_defaults_then_configured_details_and_location(h: Harness) -> None:
    await admit(h)
    el = await get_patient(h)
    assert el.get("mrn") == "MRN-1"
    assert details(el) == DEFAULTS
    loc = el.find(f"{P}location")
    assert loc is not None
    assert loc.attrib == {
        "facility": "General",
        "unit": "Intensive Care",
        "room": "101",
        "bed": "A",
    }
    assert loc.text == "Intensive Care 101-A"

    await configure(
        h,
        multiple_facility=True,
        patient_details=[
            {"label": "Room", "attribute_path": "bed.room.room_number"},
            {"label": "Status", "attribute_path": "status", "hidden": True},
            {"label": "Unit", "attribute_path": "bed.room.unit.name"},
        ],
        patient_location_transformations=[
            {"pattern": "Nothing", "replacement": "x"},
            {"pattern": "Intensive Care (.*)", "replacement": "ICU $1"},
            {"pattern": "ICU", "replacement": "twice"},
        ],
    )
    el = await get_patient(h)
    assert details(el)[5:] == [
        ("Room", "bed.room.room_number", "101", "false"),
        ("Status", "status", "Admitted", "true"),
        ("Unit", "bed.room.unit.name", "Intensive Care", "false"),
    ]
    loc = el.find(f"{P}location")
    assert loc is not None and loc.text == "General ICU 101-A"


async def test_bad_attribute_path_is_left_out_and_logged_without_phi(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await admit(h)
    await configure(
        h,
        patient_details=[
            {"label": "Broken", "attribute_path": "bed.nowhere.name"},
            {"label": "Sex again", "attribute_path": "sex"},
            {"label": "Too far", "attribute_path": "sex.more"},
        ],
    )
    with caplog.at_level(logging.DEBUG):
        el = await get_patient(h)
    assert details(el) == [*DEFAULTS, ("Sex again", "sex", "F", "false")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("Broken" in w for w in warnings) and any("Too far" in w for w in warnings)
    # Our own loggers (aiosqlite's debug lines echo SQL parameters; production logs it at WARNING).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("carewire"))
    for phi in ("MRN-1", "Jane", "Roe", "1980"):
        assert phi not in logged


async def test_patient_without_a_bed_has_no_location(h: Harness) -> None:
    await admit(h, with_bed=False)
    el = await get_patient(h)
    assert details(el) == DEFAULTS
    assert el.find(f"{P}location") is None


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        (f"<patient xmlns='{NS_PATIENT}' mrn='nobody'/>", "item-not-found"),
        (f"<patient xmlns='{NS_PATIENT}'/>", "bad-request"),
        (f"<patient xmlns='{NS_PATIENT}' mrn='   '/>", "bad-request"),
        (f"<patient xmlns='{NS_PATIENT}' mrn='{'9' * 257}'/>", "bad-request"),
        ("<patient xmlns='urn:carewire:patient:1' mrn='MRN-1'/>", "service-unavailable"),
    ],
)
async def test_patient_bad_requests(h: Harness, payload: str, condition: str) -> None:
    await admit(h)
    reply = await ask(h, payload)
    assert error_condition(reply) == condition


async def test_patient_set_is_refused(h: Harness) -> None:
    reply = await h.ask(
        "alice", f"<iq type='set' id='p'><patient xmlns='{NS_PATIENT}' mrn='MRN-1'/></iq>"
    )
    assert error_condition(reply) == "service-unavailable"


# --- the service the alert builder uses ---------------------------------------------------


async def test_service_for_other_features(h: Harness) -> None:
    await admit(h)
    service = h.kernel.ctx.require(ClientSettingsService)
    assert service is not None
    await configure(
        h,
        patient_details=[{"label": "Status", "attribute_path": "status", "hidden": True}],
        patient_location_transformations=[{"pattern": "Intensive Care", "replacement": "ICU"}],
        phone_number_transformations=[{"pattern": "XXXX", "mask": "+1 617 555 XXXX"}],
    )
    got = await service.patient_details("MRN-1")
    assert got == [(label, value, hidden == "true") for label, _, value, hidden in DEFAULTS] + [
        ("Status", "Admitted", True)
    ]
    with pytest.raises(UnknownPatientError):
        await service.patient_details("nobody")
    assert h.platform is not None
    beds = await h.platform.datasets.query("BEDS", _all())
    assert await service.location_for(beds.records[0]) == "ICU 101-A"
    rooms = await h.platform.datasets.query("ROOMS", _all())
    assert await service.location_for(rooms.records[0]) == "ICU 101"
    facility = await h.platform.datasets.query("FACILITIES", _all())
    assert await service.location_for(facility.records[0]) == ""
    where = await service.patient_location("MRN-1")
    assert where is not None and (where.unit, where.room, where.bed) == (
        "Intensive Care",
        "101",
        "A",
    )
    assert service.transform_phone("(555) 1234") == "(555) 1234"
    assert service.transform_phone("12-34") == "+1 617 555 1234"
    assert service.transform_location("Intensive Care 2") == "ICU 2"


def _all() -> Query:
    return Query(limit=10)


# --- without the platform ----------------------------------------------------------------


async def test_without_platform_client_settings_refuse_to_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature 'client_settings' needs DatasetService"):
        await make_harness(tmp_path / "refused", features=FEATURES)


async def test_without_client_settings_nothing_is_answered(tmp_path: Path) -> None:
    h = await make_harness(tmp_path, features=[f for f in FEATURES if f != "client_settings"])
    try:
        assert h.kernel.ctx.find(ClientSettingsService) is None
        for payload in (
            f"<settings xmlns='{NS_SETTINGS}'/>",
            f"<roster xmlns='{NS_ROSTER}'/>",
            f"<patient xmlns='{NS_PATIENT}' mrn='1'/>",
        ):
            reply = await ask(h, payload)
            assert error_condition(reply) == "service-unavailable"
        # Offline storage falls back to the configured timeout.
        alice, _ = await h.bind("alice")
        await h.account("bob")
        await h.send(alice, "<message to='bob@example.test'><body>x</body></message>")
        h.clock.advance(6 * 86400)
        assert len(await h.kernel.stores.offline.fetch("bob", now=h.clock.now())) == 1
    finally:
        await h.close()


# --- the care team and breaking the glass -------------------------------------------------


async def _entries(h: Harness, action: str) -> list[AuditEntry]:
    p = h.platform
    assert p is not None
    entries, _ = await p.audit.store.entries(action=action, limit=100)
    return entries


async def test_only_the_care_team_reads_a_patient_and_every_read_is_audited(h: Harness) -> None:
    await admit(h)
    el = await get_patient(h)  # alice: an active assignment for the patient
    assert details(el)[0][2] == "Jane"
    for who in ("bob", "carol", "dave", "erin"):
        await h.account(who)
    p = h.platform
    assert p is not None
    async with p.datasets.batch(name="teams") as b:
        loc = await b.upsert("LOCATIONS", {"location_id": "L1", "facility": GENERAL})
        [bed] = await b.find_many(
            "BEDS", [{"bed_number": "A", "room": {"room_number": "101", "facility": GENERAL}}]
        )
        await b.link("BEDS", bed.id, "locs", [loc.id])
        await assign(b, "bob", {"location": loc.id})  # the bed's location
        await assign(b, "erin", {"patient": {"mrn": "MRN-1"}}, state="expired")
        await b.upsert("USERS", {"login": "carol"})
        conv = await b.create(
            "CONVERSATIONS", {"jid1": "x", "jid2": "y", "ttl": 0, "patient": {"mrn": "MRN-1"}}
        )
        await b.link("CONVERSATIONS", conv.id, "members", [{"login": "carol"}])
    assert details(await _patient_as(h, "bob"))[0][2] == "Jane"
    assert details(await _patient_as(h, "carol"))[0][2] == "Jane"
    for outsider in ("dave", "erin"):  # no assignment; an expired one
        reply = await ask(
            h, f"<patient xmlns='{NS_PATIENT}' mrn='MRN-1'/>", to=None, login=outsider
        )
        assert error_condition(reply) == "forbidden"
        assert "break the glass" in ET.tostring(reply, encoding="unicode")

    reads = await _entries(h, "phi.read")
    assert [(e.event.actor, e.event.outcome.value) for e in reversed(reads)] == [
        ("xmpp:alice", "success"),
        ("xmpp:bob", "success"),
        ("xmpp:carol", "success"),
        ("xmpp:dave", "failure"),
        ("xmpp:erin", "failure"),
    ]
    first = reads[-1].event
    assert first.target.startswith("PATIENTS/") and first.details["basis"] == "care-team:assignment"
    assert reads[-2].event.details["basis"] == "care-team:bed-assignment"
    assert reads[-3].event.details["basis"] == "care-team:conversation"
    assert "Jane" not in repr([e.event for e in reads]) and "MRN-1" not in repr(reads)


async def _patient_as(h: Harness, login: str) -> Element:
    reply = await ask(h, f"<patient xmlns='{NS_PATIENT}' mrn='MRN-1'/>", to=None, login=login)
    return result(reply, f"{P}patient")


def _glass(reason: str, mrn: str = "MRN-1") -> str:
    inner = f"<reason>{reason}</reason>" if reason else ""
    payload = f"<break-glass xmlns='{NS_PATIENT}' mrn='{mrn}'>{inner}</break-glass>"
    return f"<iq type='set' id='bg'>{payload}</iq>"


async def test_breaking_the_glass_grants_a_bounded_audited_read(h: Harness) -> None:
    await admit(h)
    await h.account("dave")
    for bad in ("", "because"):  # no reason; too short
        reply = await h.ask("dave", _glass(bad))
        assert error_condition(reply) == "bad-request"
    assert error_condition(await h.ask("dave", _glass("cardiac arrest call", "nobody"))) == (
        "item-not-found"
    )
    reply = await h.ask("dave", _glass("cardiac arrest call in bay 4"))
    assert reply.get("type") == "result", error_condition(reply)
    grant = reply.find(f"{P}break-glass")
    assert grant is not None and grant.get("grant") and grant.get("expires")
    assert details(await _patient_as(h, "dave"))[0][2] == "Jane"

    p = h.platform
    assert p is not None
    [glass] = await _entries(h, "phi.break-glass")
    assert glass.event.actor == "xmpp:dave" and glass.event.details["grant"] == int(
        grant.get("grant", "0")
    )
    assert "arrest" not in repr(glass.event)  # the reason stays in the grant, sealed
    [read, *_] = await _entries(h, "phi.read")
    assert read.event.details["basis"] == f"break-glass:{grant.get('grant')}"
    report = await p.phi_access.grants(h.clock.now() - timedelta(days=1))
    assert [(g.login, g.reason) for g in report] == [("dave", "cardiac arrest call in bay 4")]

    h.clock.advance(3601)  # an hour later the grant is over
    reply = await ask(h, f"<patient xmlns='{NS_PATIENT}' mrn='MRN-1'/>", to=None, login="dave")
    assert error_condition(reply) == "forbidden"


# --- the organisation's settings (<organisation/>) ------------------------------------------


async def test_settings_name_the_default_organisation_settings_without_a_directory_profile(
    h: Harness,
) -> None:
    s = await get_settings(h)
    assert list(s)[-1].tag == f"{S}organisation"
    assert rows(s, f"{S}organisation") == [
        {"high-priority-sound": "30", "message-expiration": str(7 * 86400)}
    ]


async def test_settings_carry_the_users_organisation_sound_length_and_expiration(
    h: Harness,
) -> None:
    from dataclasses import replace

    from carewire.directory.model import (
        SYSTEM_CALLER,
        AdminInvitee,
        MessageExpiration,
        NewHospital,
        NewUser,
        OrganisationUpdate,
        Profile,
    )

    assert h.platform is not None
    orgs = h.platform.directory.organisations
    org = await orgs.create_hospital(
        SYSTEM_CALLER,
        NewHospital(
            name="Abelard Medical Center",
            office_number="(408) 882-5830",
            admin=AdminInvitee(email="admin@abelard.org", first_name="Ada", last_name="Admin"),
        ),
    )
    settings = replace(
        org.settings, high_priority_sound_seconds=10, message_expiration=MessageExpiration.HOUR_1
    )
    await orgs.update(SYSTEM_CALLER, org.id, OrganisationUpdate(settings=settings))
    await h.platform.directory.users.create(
        SYSTEM_CALLER,
        org.id,
        NewUser(
            profile=Profile(first_name="Carol", last_name="Test", email="carol@abelard.org"),
            login="carol",
            pin="2580",
            password="a long enough password",
            send_invitation=False,
        ),
    )
    s = await get_settings(h, login="carol")
    assert rows(s, f"{S}organisation") == [
        {"high-priority-sound": "10", "message-expiration": "3600"}
    ]
