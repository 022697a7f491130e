"""Remote wipe and Most Recent Activity of devices (carewire.features.clinical_presence.wipe)."""

from __future__ import annotations

from datetime import timedelta

from carewire.directory.model import SYSTEM_CALLER, Device, DeviceState
from carewire.features.clinical_presence import NS_DEVICE
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from tests.features import directory_setup
from tests.features.directory_setup import Directory, iq_answer
from tests.features.harness import RecordingSink, error_condition

# The fixture ``d``: the whole assembly on each database kind.
directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

IQ = f"{{{ns.CLIENT}}}iq"
MESSAGE = f"{{{ns.CLIENT}}}message"
WIPE = f"{{{NS_DEVICE}}}wipe"
WIPED = f"<iq type='set' id='w'><wiped xmlns='{NS_DEVICE}'/></iq>"


async def device(d: Directory, name: str) -> Device:
    await d.settle()
    login = name.partition("/")[0]
    (found,) = [x for x in await d.svc.devices.list_for(SYSTEM_CALLER, login) if x.name == name]
    return found


async def staff(d: Directory) -> None:
    org = await d.hospital("Abelard Medical Center")
    await d.user(org, "alice", "Alice", "Able")
    await d.user(org, "bob", "Bob", "Brown")


async def wiped_phone(d: Directory) -> None:
    """alice/phone connected once, then its wipe was requested (its session ended)."""
    await staff(d)
    session, sink = await d.h.login("alice", "phone")
    await d.settle()
    await d.svc.devices.wipe(SYSTEM_CALLER, "alice", "alice/phone")
    assert sink.closed is not None and sink.closed[0] is StreamCondition.NOT_AUTHORIZED
    await d.h.unbind(session)


def messages(sink: RecordingSink) -> list[str]:
    return [m.findtext(f"{{{ns.CLIENT}}}body") or "" for m in sink.take() if m.tag == MESSAGE]


async def test_a_wipe_ends_that_devices_sessions_at_once(d: Directory) -> None:
    await staff(d)
    _, phone = await d.h.login("alice", "phone")
    _, tablet = await d.h.login("alice", "tablet")
    await d.settle()
    after = await d.svc.devices.wipe(SYSTEM_CALLER, "alice", "alice/phone")
    assert after.state is DeviceState.WIPE_REQUESTED
    assert phone.closed is not None and phone.closed[0] is StreamCondition.NOT_AUTHORIZED
    assert tablet.closed is None


async def test_a_wipe_pending_device_is_told_to_wipe_and_gets_nothing_else(d: Directory) -> None:
    await wiped_phone(d)
    _, tablet = await d.h.login("alice", "tablet")
    phone, sink = await d.h.bind("alice", "phone")
    (wipe,) = sink.take()
    assert wipe.tag == IQ and wipe.get("type") == "set"
    assert wipe.get("from") == d.domain and wipe.find(WIPE) is not None
    # The client carries on as usual: nothing reaches it, nothing it sends goes anywhere.
    await d.h.send(phone, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
    await d.h.send(phone, "<presence/>")
    await d.h.send(phone, f"<message to='{d.jid('bob')}' type='chat'><body>x</body></message>")
    _, bob_sink = await d.h.login("bob")
    bob, _ = await d.h.login("bob", "other")
    await d.h.send(bob, f"<message to='{d.jid('alice')}' type='chat'><body>to you</body></message>")
    await d.h.send(
        bob, f"<message to='{d.jid('alice')}/phone' type='chat'><body>to the phone</body></message>"
    )
    assert sink.take() == []
    assert messages(tablet) == ["to you", "to the phone"]  # the user's other device has them
    assert messages(bob_sink) == []


async def test_messages_wait_offline_while_only_the_wiped_device_is_connected(
    d: Directory,
) -> None:
    await wiped_phone(d)
    _phone, sink = await d.h.bind("alice", "phone")
    sink.take()
    bob, _ = await d.h.login("bob")
    await d.h.send(bob, f"<message to='{d.jid('alice')}' type='chat'><body>later</body></message>")
    assert sink.take() == []
    assert await d.h.kernel.stores.offline.count("alice") == 1


async def test_the_wiped_answer_logs_the_device_out(d: Directory) -> None:
    await wiped_phone(d)
    phone, sink = await d.h.bind("alice", "phone")
    sink.take()
    await d.h.send(phone, WIPED)
    answer = iq_answer(sink, "w")
    assert answer.get("type") == "result"
    assert sink.closed is not None and sink.closed[0] is StreamCondition.NOT_AUTHORIZED
    await d.h.unbind(phone)
    found = await device(d, "alice/phone")
    assert found.state is DeviceState.LOGGED_OUT
    assert found.wipe_requested_at is not None  # kept: the administrator may delete the info
    assert not d.svc.index.is_wipe_pending("alice/phone")
    # The next connection of that device is an ordinary one.
    _, again = await d.h.bind("alice", "phone")
    assert again.take() == []


async def test_only_a_wipe_pending_device_may_say_it_was_wiped(d: Directory) -> None:
    await staff(d)
    answer = await d.reply("alice", WIPED)
    assert error_condition(answer) == "not-allowed"


async def test_a_wipe_made_by_another_process_ends_the_session_at_the_sweep(d: Directory) -> None:
    await staff(d)
    _, phone = await d.h.login("alice", "phone")
    _, tablet = await d.h.login("alice", "tablet")
    d.svc.index.set_wipe_pending("alice/phone", True)  # what the periodic reload finds
    (sweep,) = [j for j in d.h.kernel.ctx.jobs if j.name == "device-wipes"]
    await sweep.run()
    assert phone.closed is not None and tablet.closed is None


async def test_most_recent_activity_is_written_at_most_once_a_minute(d: Directory) -> None:
    await staff(d)
    connected = d.h.clock.now()
    session, _ = await d.h.login("alice", "phone")
    assert (await device(d, "alice/phone")).last_active_at == connected
    d.h.clock.advance(30)
    await d.h.send(session, f"<message to='{d.jid('bob')}' type='chat'><body>x</body></message>")
    assert (await device(d, "alice/phone")).last_active_at == connected
    d.h.clock.advance(31)
    later = d.h.clock.now()
    await d.h.send(session, "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert (await device(d, "alice/phone")).last_active_at == later
    assert later - connected == timedelta(seconds=61)


async def test_a_wiped_device_that_connects_again_is_not_wiped_again(d: Directory) -> None:
    await wiped_phone(d)
    phone, sink = await d.h.bind("alice", "phone")
    sink.take()
    await d.h.send(phone, WIPED)
    await d.h.unbind(phone)
    await d.h.login("alice", "phone")  # the reinstalled app registers the device again
    await d.settle()
    await d.svc.reload()  # what the periodic reload reads from the database
    assert not d.svc.index.is_wipe_pending("alice/phone")
    assert (await device(d, "alice/phone")).state is DeviceState.ACTIVE_PUSH
    _, later = await d.h.bind("alice", "phone")
    assert [m for m in later.take() if m.find(WIPE) is not None] == []


async def test_a_wipe_of_a_logged_out_device_waits_for_it(d: Directory) -> None:
    await staff(d)
    session, _ = await d.h.login("alice", "phone")
    await d.settle()
    await d.h.unbind(session)
    await d.svc.devices.wipe(SYSTEM_CALLER, "alice", "alice/phone")
    await d.svc.reload()
    assert d.svc.index.is_wipe_pending("alice/phone")
    assert (await device(d, "alice/phone")).state is DeviceState.WIPE_REQUESTED
    _, sink = await d.h.bind("alice", "phone")
    (wipe,) = sink.take()
    assert wipe.find(WIPE) is not None
