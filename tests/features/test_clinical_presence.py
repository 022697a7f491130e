"""Clinical presence: aggregation, records, devices, states, virtual sessions, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent
from carewire.core.sessions import Session
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import DatasetService
from carewire.errors import ConfigError, NotFoundError, ValidationError
from carewire.features.clinical_presence import NS_DEVICE, ClinicalPresence, DeviceInfo, DeviceKind
from carewire.features.clinical_presence.model import ResourcePresence, aggregate, parse_register
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness

FEATURES = ["message", "offline", "roster", "presence", "ping", "clinical_presence"]
PRESENCE = f"{{{ns.CLIENT}}}presence"
MESSAGE = f"{{{ns.CLIENT}}}message"
IQ = f"{{{ns.CLIENT}}}iq"
ALICE = "alice@example.test"
BOB = "bob@example.test"
TIMED_OUT = (StreamCondition.POLICY_VIOLATION, "Session timed out")


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    yield harness
    await harness.close()


def service(h: Harness) -> ClinicalPresence:
    found = h.kernel.ctx.require(ClinicalPresence)
    assert found is not None
    return found


def datasets(h: Harness) -> DatasetService:
    assert h.platform is not None
    return h.platform.datasets


async def settle(h: Harness) -> None:
    await asyncio.sleep(0)
    await service(h).drain()


async def rows(h: Harness, dataset: str, **eq: object) -> list[dict[str, object]]:
    filters = tuple(Filter(field=k, op=FilterOp.EQ, value=v) for k, v in eq.items())
    page = await datasets(h).query(
        dataset, Query(filters=filters, sort=(Sort(field="id"),), limit=1000)
    )
    return [dict(r.values) | {"id": r.id} for r in page.records]


async def user(h: Harness, login: str) -> dict[str, object]:
    await settle(h)
    (found,) = await rows(h, "USERS", login=login)
    return found


async def history(h: Harness, login: str) -> list[tuple[object, ...]]:
    """(show, status, changed_by, resource) of the user's PRESENCE_HISTORY rows."""
    usr = (await user(h, login))["id"]
    return [
        (r["show"], r["status"] or "", r["changed_by"], r["resource"])
        for r in await rows(h, "PRESENCE_HISTORY", usr=usr)
    ]


async def shows(h: Harness, login: str) -> tuple[object, object]:
    found = await user(h, login)
    return found["presence_show"], found["presence_status"] or ""


async def bind_from(
    h: Harness, login: str, resource: str, ip: str
) -> tuple[Session, RecordingSink]:
    """A bound session with a remote address (as the network layer makes them)."""
    await h.account(login)
    sink = RecordingSink()
    session = Session(jid=JID.parse(f"{login}@{h.domain}/{resource}"), sink=sink, remote_ip=ip)
    assert h.kernel.sessions.add(session) is None
    await h.kernel.hooks.fire(H.SESSION_BOUND, SessionEvent(session=session))
    return session, sink


async def register(h: Harness, session: Session, sink: RecordingSink, attrs: str) -> Element:
    sink.take()
    await h.send(session, f"<iq type='set' id='reg'><register xmlns='{NS_DEVICE}' {attrs}/></iq>")
    (reply,) = [s for s in sink.take() if s.tag == IQ]
    return reply


async def desktop(h: Harness, login: str, resource: str) -> tuple[Session, RecordingSink]:
    session, sink = await h.bind(login, resource)
    assert (await register(h, session, sink, "kind='desktop'")).get("type") == "result"
    await h.send(session, "<presence/>")
    sink.take()
    return session, sink


async def befriend(h: Harness, a: Session, b: Session) -> None:
    a_bare, b_bare = str(a.jid.bare), str(b.jid.bare)
    await h.send(a, f"<presence type='subscribe' to='{b_bare}'/>")
    await h.send(b, f"<presence type='subscribed' to='{a_bare}'/>")
    await h.send(b, f"<presence type='subscribe' to='{a_bare}'/>")
    await h.send(a, f"<presence type='subscribed' to='{b_bare}'/>")


async def set_timeouts(h: Harness, mobile: str, desktop: str) -> None:
    assert h.platform is not None
    adapters = h.platform.adapters
    config = adapters.get("XMPP")
    settings = dict(config.settings) | {
        "mobile_session_timeout": mobile,
        "desktop_session_timeout": desktop,
    }
    await adapters.update("XMPP", settings=settings)


def presences(sink: RecordingSink) -> list[Element]:
    return [s for s in sink.take() if s.tag == PRESENCE]


# -- aggregation ---------------------------------------------------------------------------


async def test_two_mobiles_are_available_while_either_is(h: Harness) -> None:
    phone1, _ = await h.login("alice", "phone1")
    phone2, _ = await h.login("alice", "phone2")
    assert await shows(h, "alice") == ("chat", "")
    await h.send(phone1, "<presence><show>away</show></presence>")
    assert await shows(h, "alice") == ("chat", "")
    await h.send(phone2, "<presence><show>dnd</show><status>Busy</status></presence>")
    assert await shows(h, "alice") == ("dnd", "Busy")
    await h.send(phone1, "<presence/>")
    await h.unbind(phone1)
    await h.unbind(phone2)
    assert await history(h, "alice") == [
        ("chat", "", "user", "phone1"),
        ("dnd", "Busy", "user", "phone2"),
        ("chat", "", "user", "phone1"),
        ("dnd", "Busy", "user", "phone1"),
        ("offline", "", "user", "phone2"),
    ]


async def test_mobile_and_desktop(h: Harness) -> None:
    laptop, _ = await desktop(h, "alice", "laptop")
    assert await shows(h, "alice") == ("away", "")
    phone, _ = await h.login("alice", "phone")
    assert await shows(h, "alice") == ("chat", "")
    await h.unbind(phone)
    assert await shows(h, "alice") == ("away", "")
    await h.unbind(laptop)
    assert [row[0] for row in await history(h, "alice")] == ["away", "chat", "away", "offline"]


async def test_desktop_only_is_unavailable_and_keeps_its_show(h: Harness) -> None:
    laptop, _ = await desktop(h, "alice", "laptop")
    await h.send(laptop, "<presence><show>xa</show><status>Gone home</status></presence>")
    assert await shows(h, "alice") == ("xa", "Gone home")


async def test_available_wins_over_away_and_gives_its_status(h: Harness) -> None:
    phone1, _ = await h.login("alice", "phone1")
    await h.send(phone1, "<presence><show>away</show><status>Break</status></presence>")
    phone2, _ = await h.bind("alice", "phone2")
    await h.send(phone2, "<presence><show>chat</show><status>Ward 4</status></presence>")
    assert await shows(h, "alice") == ("chat", "Ward 4")


async def test_a_status_change_alone_is_recorded(h: Harness) -> None:
    phone, _ = await h.login("alice", "phone")
    await h.send(phone, "<presence><status>On shift</status></presence>")
    await h.send(phone, "<presence><status>On shift</status><priority>5</priority></presence>")
    await h.send(phone, "<presence><status>Lunch</status></presence>")
    assert [row[1] for row in await history(h, "alice")] == ["", "On shift", "Lunch"]


async def test_a_users_record_deleted_meanwhile_is_made_again(h: Harness) -> None:
    phone, _ = await h.login("alice", "phone")
    old = (await user(h, "alice"))["id"]
    # What points at it goes first (a purge), then the record itself.
    for dataset in ("PRESENCE_HISTORY", "REGISTRATION_HISTORY", "DEVICES"):
        for row in await rows(h, dataset, usr=old):
            await datasets(h).delete(dataset, int(str(row["id"])))
    await datasets(h).delete("USERS", int(str(old)))
    await h.send(phone, "<presence><show>away</show><status>Lunch</status></presence>")
    again = await user(h, "alice")
    assert again["id"] != old and again["presence_show"] == "away"
    assert [row[1] for row in await history(h, "alice")] == ["Lunch"]


async def test_history_row_fields(h: Harness) -> None:
    await h.login("alice", "phone")
    usr = (await user(h, "alice"))["id"]
    (row,) = await rows(h, "PRESENCE_HISTORY", usr=usr)
    assert row["sent_at"] == h.clock.now()
    assert (row["changed_by"], row["resource"], row["show"]) == ("user", "phone", "chat")


async def test_invalid_presence_changes_nothing(h: Harness) -> None:
    phone, sink = await h.login("alice", "phone")
    await h.send(phone, "<presence><show>away</show><priority>500</priority></presence>")
    assert error_condition(sink.take()[0]) == "bad-request"
    assert await shows(h, "alice") == ("chat", "")


async def test_directed_presence_is_not_the_users_presence(h: Harness) -> None:
    phone, _ = await h.login("alice", "phone")
    await h.account("bob")
    await h.send(phone, f"<presence to='{BOB}'><show>dnd</show></presence>")
    assert await shows(h, "alice") == ("chat", "")


async def test_an_existing_users_record_is_reused(h: Harness) -> None:
    await datasets(h).create("USERS", {"login": "alice", "first_name": "Alice"})
    await h.login("alice", "phone")
    found = await user(h, "alice")
    assert (found["first_name"], found["presence_show"]) == ("Alice", "chat")


# -- devices -----------------------------------------------------------------------------------


async def test_device_and_registration_records(h: Harness) -> None:
    phone, sink = await bind_from(h, "alice", "phone", "10.0.0.1")
    await settle(h)
    (device,) = await rows(h, "DEVICES", name="alice/phone")
    assert (device["status"], device["vendor"], device["ip_address"]) == (
        "Registered",
        "XMPP",
        "10.0.0.1",
    )
    usr = (await user(h, "alice"))["id"]
    assert device["usr"] == usr
    attrs = (
        "kind='mobile' app-version='3.2' os-version='17.1' hardware-version='Phone 12' "
        "push-token='tok-1' uuid='u-1'"
    )
    assert (await register(h, phone, sink, attrs)).get("type") == "result"
    await settle(h)
    (device,) = await rows(h, "DEVICES", name="alice/phone")
    assert device["token"] == "tok-1"
    history_rows = await rows(h, "REGISTRATION_HISTORY", device=device["id"])
    assert [r["device_status"] for r in history_rows] == ["Registered", "Registered"]
    last = history_rows[-1]
    assert (
        last["application_version"],
        last["os_version"],
        last["hardware_version"],
        last["token"],
        last["uuid"],
        last["usr"],
    ) == ("3.2", "17.1", "Phone 12", "tok-1", "u-1", usr)
    await h.unbind(phone)
    await settle(h)
    (device,) = await rows(h, "DEVICES", name="alice/phone")
    assert device["status"] == "Disconnected" and device["token"] == "tok-1"

    again, _ = await bind_from(h, "alice", "phone", "10.0.0.2")
    await settle(h)
    history_rows = await rows(h, "REGISTRATION_HISTORY", device=device["id"])
    assert [r["device_status"] for r in history_rows][-2:] == ["Disconnected", "Registered"]
    assert (history_rows[-1]["ip_address"], history_rows[-1]["previous_ip_address"]) == (
        "10.0.0.2",
        "10.0.0.1",
    )
    assert again.data["device"].kind == "mobile"


async def test_a_burst_of_logins_is_written_in_shared_transactions(h: Harness) -> None:
    """Changes queued together share a commit, and each sees the writes of those before it."""
    commits: list[str] = []
    db = h.db
    real = db.transaction

    def counting(name: str):  # type: ignore[no-untyped-def]
        if not db.in_transaction():
            commits.append(name)
        return real(name)

    for i in range(12):
        await h.account(f"u{i}")
    # Another writer holds the database while the logins arrive, as in a storm: their
    # records queue up behind it.
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with real("someone_else"):
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    db.transaction = counting  # type: ignore[method-assign]
    try:
        sessions = [await bind_from(h, f"u{i}", "phone", f"10.0.1.{i}") for i in range(12)]
        # The same device again in the same burst: its second record must see the first.
        await h.unbind(sessions[0][0])
        await bind_from(h, "u0", "phone", "10.0.2.1")
        release.set()
        await holder
        await settle(h)
    finally:
        db.transaction = real  # type: ignore[method-assign]
    presence_commits = [c for c in commits if c == "clinical_presence"]
    # One each would be about 40 (12 logins' records, u0's logout and login again).
    assert 1 <= len(presence_commits) <= 2
    for i in range(1, 12):
        (device,) = await rows(h, "DEVICES", name=f"u{i}/phone")
        assert device["status"] == "Registered"
        assert device["usr"] == (await user(h, f"u{i}"))["id"]
    (device,) = await rows(h, "DEVICES", name="u0/phone")
    history_rows = await rows(h, "REGISTRATION_HISTORY", device=device["id"])
    statuses = [r["device_status"] for r in history_rows]
    assert statuses == ["Registered", "Disconnected", "Registered"]
    assert history_rows[-1]["previous_ip_address"] == "10.0.1.0"
    assert len(await rows(h, "USERS", login="u0")) == 1  # created once, not once per job


async def test_a_failing_record_job_loses_none_of_the_others(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    records = service(h).records
    written: list[str] = []

    def job(name: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
        async def run() -> None:
            await datasets(h).create("USERS", {"login": name})
            if fail:
                raise RuntimeError("this job fails")
            written.append(name)

        return run

    for i in range(5):
        records.submit(job(f"ok{i}"))
    records.submit(job("bad", fail=True))
    for i in range(5, 10):
        records.submit(job(f"ok{i}"))
    await records.drain()
    # The jobs grouped with the failed one ran again, alone; every one of them is written.
    assert set(written) == {f"ok{i}" for i in range(10)}
    last = {name: index for index, name in enumerate(written)}
    assert sorted(last, key=last.__getitem__) == [f"ok{i}" for i in range(10)]  # in order
    for i in range(10):
        assert len(await rows(h, "USERS", login=f"ok{i}")) == 1
    # The failed job's own write went with it; the error is in the log.
    assert await rows(h, "USERS", login="bad") == []
    assert "could not be written" in caplog.text and "this job fails" in caplog.text


async def test_unregister_clears_the_token_and_sticks(h: Harness) -> None:
    phone, sink = await bind_from(h, "alice", "phone", "10.0.0.1")
    await register(h, phone, sink, "push-token='tok-1'")
    await h.send(phone, f"<iq type='set' id='u'><unregister xmlns='{NS_DEVICE}'/></iq>")
    assert sink.take()[-1].get("type") == "result"
    assert phone.data["device"].push_token == ""
    await settle(h)
    (device,) = await rows(h, "DEVICES", name="alice/phone")
    assert (device["status"], device["token"]) == ("Unregistered", None)
    await h.unbind(phone)
    await settle(h)
    (device,) = await rows(h, "DEVICES", name="alice/phone")
    assert device["status"] == "Unregistered"
    statuses = [r["device_status"] for r in await rows(h, "REGISTRATION_HISTORY")]
    assert statuses == ["Registered", "Registered", "Unregistered", "Disconnected"]


async def test_registering_as_desktop_changes_the_aggregate(h: Harness) -> None:
    laptop, sink = await h.login("alice", "laptop")
    assert await shows(h, "alice") == ("chat", "")
    await register(h, laptop, sink, "kind='desktop'")
    assert await shows(h, "alice") == ("away", "")


@pytest.mark.parametrize(
    "attrs",
    [
        "kind='tablet'",
        "kind=''",
        "app-version='" + "v" * 65 + "'",
        "os-version='" + "o" * 65 + "'",
        "hardware-version='" + "h" * 65 + "'",
        "uuid='" + "u" * 65 + "'",
        "push-token='" + "t" * 1025 + "'",
    ],
)
async def test_malformed_register_is_a_bad_request(h: Harness, attrs: str) -> None:
    phone, sink = await h.bind("alice", "phone")
    reply = await register(h, phone, sink, attrs)
    assert (reply.get("type"), error_condition(reply)) == ("error", "bad-request")
    assert phone.data["device"] == DeviceInfo()


async def test_register_limits_are_inclusive(h: Harness) -> None:
    phone, sink = await h.bind("alice", "phone")
    attrs = "app-version='" + "v" * 64 + "' push-token='" + "t" * 1024 + "'"
    assert (await register(h, phone, sink, attrs)).get("type") == "result"


async def test_register_get_is_not_served(h: Harness) -> None:
    reply = await h.ask("alice", f"<iq type='get' id='g'><register xmlns='{NS_DEVICE}'/></iq>")
    assert error_condition(reply) == "service-unavailable"


async def test_the_device_namespace_is_advertised(h: Harness) -> None:
    assert NS_DEVICE in h.kernel.disco.server_features


# -- presence states ----------------------------------------------------------------------------


async def _states(h: Harness) -> None:
    await datasets(h).create("FACILITIES", {"name": "Main"})
    for show, status, duration in (("dnd", "In surgery", 30), ("away", "Charting", None)):
        await datasets(h).create(
            "PRESENCE_STATES",
            {"show": show, "status": status, "duration": duration, "facility": {"name": "Main"}},
        )


async def test_a_timed_state_reverts_to_available(h: Harness) -> None:
    await _states(h)
    phone, _ = await h.login("alice", "phone")
    await h.send(phone, "<presence><show>dnd</show><status>In surgery</status></presence>")
    await settle(h)
    h.clock.advance(29 * 60)
    await service(h).revert_states()
    assert await shows(h, "alice") == ("dnd", "In surgery")
    h.clock.advance(61)
    await service(h).revert_states()
    assert await shows(h, "alice") == ("chat", "")
    assert (await history(h, "alice"))[-1] == ("chat", "", "system", "*")


async def test_a_state_without_duration_stays(h: Harness) -> None:
    await _states(h)
    phone, _ = await h.login("alice", "phone")
    await h.send(phone, "<presence><show>away</show><status>Charting</status></presence>")
    await settle(h)
    h.clock.advance(7 * 86400)
    await service(h).revert_states()
    assert await shows(h, "alice") == ("away", "Charting")


async def test_changing_status_before_the_end_cancels_the_revert(h: Harness) -> None:
    await _states(h)
    phone, _ = await h.login("alice", "phone")
    await h.send(phone, "<presence><show>dnd</show><status>In surgery</status></presence>")
    await settle(h)
    await h.send(phone, "<presence><show>away</show><status>Break</status></presence>")
    h.clock.advance(31 * 60)
    await service(h).revert_states()
    assert await shows(h, "alice") == ("away", "Break")


async def test_reverts_and_virtual_sessions_survive_a_restart(tmp_path: Path) -> None:
    first = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    try:
        await _states(first)
        await first.account("alice")
        await service(first).set_presence("alice", "Unavailable", "In surgery")
        await first.login("bob", "phone")
        await settle(first)
    finally:
        await first.close()
    second = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    try:
        await settle(second)
        (virtual,) = second.kernel.sessions.of_user("alice")
        assert virtual.transport == "virtual" and virtual.is_available
        assert await shows(second, "alice") == ("away", "In surgery")
        assert await shows(second, "bob") == ("offline", "")
        second.clock.advance(31 * 60)
        await service(second).revert_states()
        assert await shows(second, "alice") == ("chat", "")
    finally:
        await second.close()


# -- administrators and rules ----------------------------------------------------------------


async def test_virtual_session_is_seen_by_a_subscribed_contact(h: Harness) -> None:
    alice, _ = await h.login("alice", "phone")
    bob, bsink = await h.login("bob", "phone")
    await befriend(h, alice, bob)
    await h.unbind(alice)
    bsink.take()
    await service(h).set_presence("alice", "Available", "On call", changed_by="admin:jo")
    (got,) = presences(bsink)
    assert got.get("from") == f"{ALICE}/virtual" and got.get("type") is None
    assert got.findtext(f"{{{ns.CLIENT}}}status") == "On call"
    assert got.findtext(f"{{{ns.CLIENT}}}priority") == "-1"
    assert await shows(h, "alice") == ("chat", "On call")
    assert (await history(h, "alice"))[-1] == ("chat", "On call", "admin:jo", "virtual")
    (device,) = await rows(h, "DEVICES", name="alice/virtual")
    assert device["status"] == "Virtual"

    await service(h).set_presence("alice", "Unavailable", "Off unit", changed_by="rule")
    (got,) = presences(bsink)
    assert got.findtext(f"{{{ns.CLIENT}}}show") == "away"
    assert await shows(h, "alice") == ("away", "Off unit")

    await service(h).set_presence("alice", "Offline", changed_by="rule")
    (got,) = presences(bsink)
    assert (got.get("type"), got.get("from")) == ("unavailable", f"{ALICE}/virtual")
    assert h.kernel.sessions.of_user("alice") == []
    assert (await history(h, "alice"))[-1] == ("offline", "", "rule", "virtual")
    await settle(h)
    (device,) = await rows(h, "DEVICES", name="alice/virtual")
    assert device["status"] == "Disconnected"


async def test_a_probe_is_answered_with_the_virtual_presence(h: Harness) -> None:
    alice, _ = await h.login("alice", "phone")
    bob, _ = await h.login("bob", "phone")
    await befriend(h, alice, bob)
    await h.unbind(alice)
    await h.unbind(bob)
    await service(h).set_presence("alice", "Available")
    bob, bsink = await h.bind("bob", "phone")
    await h.send(bob, "<presence/>")
    assert f"{ALICE}/virtual" in [p.get("from") for p in presences(bsink)]


async def test_messages_to_a_virtual_only_user_are_stored_offline(h: Harness) -> None:
    await h.account("alice")
    bob, bsink = await h.login("bob", "phone")
    await h.send(bob, f"<message to='{ALICE}' type='chat' id='m0'><body>before</body></message>")
    await service(h).set_presence("alice", "Available")
    # The virtual session's initial presence must not take the stored message.
    assert await h.kernel.stores.offline.count("alice") == 1
    await h.send(bob, f"<message to='{ALICE}' type='chat' id='m1'><body>x</body></message>")
    await h.send(bob, f"<message to='{ALICE}/virtual' id='m2'><body>y</body></message>")
    await h.send(bob, f"<message to='{ALICE}/virtual' type='headline'><body>z</body></message>")
    await h.send(bob, f"<iq to='{ALICE}/virtual' type='get' id='q1'><query xmlns='x:y'/></iq>")
    got = bsink.take()
    assert [(s.tag, s.get("id"), error_condition(s)) for s in got] == [
        (IQ, "q1", "service-unavailable")
    ]
    assert await h.kernel.stores.offline.count("alice") == 3
    # A client's initial presence gets the messages and ends the virtual session.
    alice, asink = await h.bind("alice", "phone")
    await h.send(alice, "<presence/>")
    bodies = [s.findtext(f"{{{ns.CLIENT}}}body") for s in asink.take() if s.tag == MESSAGE]
    assert bodies == ["before", "x", "y"]
    assert [s.resource for s in h.kernel.sessions.of_user("alice")] == ["phone"]
    assert await shows(h, "alice") == ("chat", "")


async def test_available_for_a_user_with_a_client_only_sets_the_record(h: Harness) -> None:
    phone, _ = await h.login("alice", "phone")
    await h.send(phone, "<presence><show>away</show></presence>")
    await service(h).set_presence("alice", "Available", "Covering", changed_by="rule")
    assert [s.resource for s in h.kernel.sessions.of_user("alice")] == ["phone"]
    assert await shows(h, "alice") == ("chat", "Covering")
    assert (await history(h, "alice"))[-1] == ("chat", "Covering", "rule", "*")
    # The client's next change is recorded again.
    await h.send(phone, "<presence><show>xa</show></presence>")
    assert await shows(h, "alice") == ("xa", "")


async def test_offline_ends_every_session(h: Harness) -> None:
    phone, psink = await h.login("alice", "phone")
    laptop, lsink = await desktop(h, "alice", "laptop")
    await service(h).set_presence("alice", "Offline", changed_by="admin:jo")
    expected = (StreamCondition.POLICY_VIOLATION, "Presence set to Offline")
    assert psink.closed == expected and lsink.closed == expected
    assert await shows(h, "alice") == ("offline", "")
    await h.unbind(phone)
    await h.unbind(laptop)
    assert (await history(h, "alice"))[-1] == ("offline", "", "admin:jo", "*")
    assert [row[0] for row in await history(h, "alice")].count("offline") == 1
    statuses = {d["name"]: d["status"] for d in await rows(h, "DEVICES")}
    assert statuses == {"alice/phone": "Disconnected", "alice/laptop": "Disconnected"}


async def test_set_presence_refuses_bad_input(h: Harness) -> None:
    await h.account("alice")
    with pytest.raises(ValidationError):
        await service(h).set_presence("alice", "Busy")
    with pytest.raises(ValidationError):
        await service(h).set_presence("a@b", "Available")
    with pytest.raises(NotFoundError):
        await service(h).set_presence("nobody", "Available")
    assert h.kernel.sessions.of_user("nobody") == []


async def test_keepalive_pings_leave_virtual_sessions_alone(h: Harness) -> None:
    await h.account("alice")
    await service(h).set_presence("alice", "Available")
    (job,) = [j for j in h.kernel.ctx.jobs if j.name == "ping-idle-sessions"]
    h.clock.advance(3600)
    await job.run()
    assert [s.transport for s in h.kernel.sessions.of_user("alice")] == ["virtual"]


async def test_a_closed_virtual_sink_ends_the_session(h: Harness) -> None:
    await h.account("alice")
    await service(h).set_presence("alice", "Available")
    (virtual,) = h.kernel.sessions.of_user("alice")
    virtual.sink.close(StreamCondition.CONNECTION_TIMEOUT)
    await settle(h)
    assert h.kernel.sessions.of_user("alice") == []
    assert (await history(h, "alice"))[-1] == ("offline", "", "system", "virtual")


# -- session timeouts ----------------------------------------------------------------------------


async def test_mobile_session_ends_after_the_timeout_in_background(h: Harness) -> None:
    await set_timeouts(h, "13 hours", "Off")
    phone, sink = await h.login("alice", "phone")
    other, osink = await h.login("alice", "other")
    phone.data["csi"] = "inactive"
    phone.data["csi_since"] = h.clock.now()
    h.clock.advance(12 * 3600)
    await service(h).expire_sessions()
    assert sink.closed is None
    h.clock.advance(3600)
    await service(h).expire_sessions()
    assert sink.closed == TIMED_OUT
    # An active mobile session never times out.
    h.clock.advance(30 * 86400)
    await service(h).expire_sessions()
    assert osink.closed is None
    await h.unbind(phone)
    await h.unbind(other)
    assert await history(h, "alice") == [
        ("chat", "", "user", "phone"),
        ("offline", "", "user", "other"),
    ]


async def test_desktop_session_ends_when_idle(h: Harness) -> None:
    await set_timeouts(h, "Off", "15 minutes")
    laptop, sink = await desktop(h, "alice", "laptop")
    await h.account("bob")
    h.clock.advance(10 * 60)
    await h.send(laptop, f"<message to='{BOB}' type='chat'><body>hi</body></message>")
    h.clock.advance(10 * 60)
    await service(h).expire_sessions()
    assert sink.closed is None
    # Answering a server ping is not activity.
    await h.send(laptop, f"<iq type='result' id='ping1' to='{h.domain}'/>")
    h.clock.advance(6 * 60)
    await service(h).expire_sessions()
    assert sink.closed == TIMED_OUT
    assert (await history(h, "alice"))[-1] == ("offline", "", "system", "laptop")


async def test_timeouts_off_never_end_sessions(h: Harness) -> None:
    phone, psink = await h.login("alice", "phone")
    _, lsink = await desktop(h, "alice", "laptop")
    phone.data["csi"] = "inactive"
    phone.data["csi_since"] = h.clock.now()
    h.clock.advance(30 * 86400)
    await service(h).expire_sessions()
    assert psink.closed is None and lsink.closed is None


# -- without the data platform ---------------------------------------------------------------


async def test_without_the_platform_clinical_presence_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature 'clinical_presence' needs DatasetService"):
        await make_harness(tmp_path / "refused", features=FEATURES)


async def test_without_clinical_presence_nothing_is_registered(tmp_path: Path) -> None:
    plain = await make_harness(tmp_path, features=[f for f in FEATURES if f != "clinical_presence"])
    try:
        assert plain.kernel.ctx.find(ClinicalPresence) is None
        reply = await plain.ask(
            "alice", f"<iq type='set' id='r'><register xmlns='{NS_DEVICE}'/></iq>"
        )
        assert error_condition(reply) == "service-unavailable"
    finally:
        await plain.close()


# -- the pure core -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ([], ("offline", "")),
        ([("a", DeviceKind.MOBILE, None, 1)], ("offline", "")),
        ([("a", DeviceKind.MOBILE, "", 1), ("b", DeviceKind.MOBILE, "", 2)], ("chat", "b")),
        ([("a", DeviceKind.MOBILE, "", 1), ("b", DeviceKind.DESKTOP, "", 2)], ("chat", "a")),
        ([("a", DeviceKind.DESKTOP, "", 1)], ("away", "a")),
        ([("a", DeviceKind.DESKTOP, "dnd", 1)], ("dnd", "a")),
        ([("a", DeviceKind.MOBILE, "xa", 1), ("b", DeviceKind.MOBILE, "chat", 2)], ("chat", "b")),
        ([("a", DeviceKind.MOBILE, "xa", 3), ("b", DeviceKind.MOBILE, "away", 2)], ("xa", "a")),
        ([("a", DeviceKind.VIRTUAL, "", 1), ("b", DeviceKind.MOBILE, "dnd", 2)], ("chat", "a")),
        ([("a", DeviceKind.MOBILE, "bogus", 1)], ("chat", "a")),
    ],
)
def test_aggregate(
    resources: list[tuple[str, DeviceKind, str | None, int]], expected: object
) -> None:
    agg = aggregate(
        ResourcePresence(
            resource=name, device=device, is_available=show is not None, show=show or "", seq=seq
        )
        for name, device, show, seq in resources
    )
    assert (agg.show, agg.resource) == expected


def test_parse_register_defaults_and_values() -> None:
    assert parse_register(Element(f"{{{NS_DEVICE}}}register")) == DeviceInfo(is_registered=True)
    got = parse_register(
        Element(f"{{{NS_DEVICE}}}register", {"kind": "desktop", "uuid": "u", "extra": "x"})
    )
    assert (got.kind, got.uuid, got.is_registered) == (DeviceKind.DESKTOP, "u", True)
