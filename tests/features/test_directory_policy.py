"""Who may message whom across organisations (carewire.features.directory_policy)."""

from __future__ import annotations

from carewire.directory.model import NO_ONE, SYSTEM_CALLER, Organisation, Permission, PermissionMode
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from tests.features import directory_setup
from tests.features.directory_setup import Directory, error_text
from tests.features.harness import error_condition

# The fixture ``d``: the whole assembly on each database kind.
directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

MESSAGE = f"{{{ns.CLIENT}}}message"
REFUSED_BELLWOOD = "You may not message users of Bellwood Hospital"


async def two_hospitals(d: Directory) -> tuple[Organisation, Organisation]:
    """Abelard (alice, amy) and Bellwood (bob): not affiliated."""
    abelard = await d.hospital("Abelard Medical Center")
    bellwood = await d.hospital("Bellwood Hospital")
    await d.user(abelard, "alice", "Alice", "Able")
    await d.user(abelard, "amy", "Amy", "Adams")
    await d.user(bellwood, "bob", "Bob", "Brown")
    return abelard, bellwood


def assert_refused(reply: object, text: str = REFUSED_BELLWOOD) -> None:
    from xml.etree.ElementTree import Element

    assert isinstance(reply, Element)
    assert reply.get("type") == "error"
    assert error_condition(reply) == "forbidden"
    err = reply.find(f"{{{ns.CLIENT}}}error")
    assert err is not None and err.get("type") == "auth"
    assert error_text(reply) == text


async def test_a_message_to_another_hospitals_user_is_refused_and_not_delivered(
    d: Directory,
) -> None:
    await two_hospitals(d)
    _, bob_sink = await d.h.login("bob")
    reply = await d.reply(
        "alice", f"<message to='{d.jid('bob')}' type='chat'><body>hi</body></message>"
    )
    assert_refused(reply)
    assert bob_sink.take() == []


async def test_users_of_one_organisation_message_each_other(d: Directory) -> None:
    await two_hospitals(d)
    _, amy_sink = await d.h.login("amy")
    alice, alice_sink = await d.h.login("alice")
    await d.h.send(alice, f"<message to='{d.jid('amy')}' type='chat'><body>hi</body></message>")
    assert [m.findtext(f"{{{ns.CLIENT}}}body") for m in amy_sink.take()] == ["hi"]
    assert alice_sink.take() == []


async def test_a_hospital_and_its_practice_may_message_each_other(d: Directory) -> None:
    abelard, _ = await two_hospitals(d)
    clinic = await d.practice(abelard, "Oak Street Clinic")
    await d.user(clinic, "carol", "Carol", "Cole")
    _, carol_sink = await d.h.login("carol")
    alice, _ = await d.h.login("alice")
    await d.h.send(alice, f"<message to='{d.jid('carol')}' type='chat'><body>hi</body></message>")
    assert len(carol_sink.take()) == 1


async def test_two_practices_of_one_hospital_share_its_community(d: Directory) -> None:
    abelard, _ = await two_hospitals(d)
    oak = await d.practice(abelard, "Oak Street Clinic")
    elm = await d.practice(abelard, "Elm Street Clinic")
    await d.user(oak, "carol", "Carol", "Cole")
    await d.user(elm, "dave", "Dave", "Dunn")
    _, dave_sink = await d.h.login("dave")
    carol, _ = await d.h.login("carol")
    await d.h.send(carol, f"<message to='{d.jid('dave')}' type='chat'><body>hi</body></message>")
    assert len(dave_sink.take()) == 1


async def test_a_permission_of_none_refuses_at_once(d: Directory) -> None:
    abelard, _ = await two_hospitals(d)
    clinic = await d.practice(abelard, "Oak Street Clinic")
    await d.user(clinic, "carol", "Carol", "Cole")
    await d.svc.affiliations.set_permission(SYSTEM_CALLER, clinic.id, abelard.id, NO_ONE)
    reply = await d.reply(
        "alice", f"<message to='{d.jid('carol')}' type='chat'><body>x</body></message>"
    )
    assert_refused(reply, "You may not message users of Oak Street Clinic")


async def test_a_group_permission_lets_only_its_members_through(d: Directory) -> None:
    abelard, _ = await two_hospitals(d)
    clinic = await d.practice(abelard, "Oak Street Clinic")
    front = await d.group(clinic, "Front Desk")
    await d.user(clinic, "carol", "Carol", "Cole", groups=[front])
    await d.user(clinic, "cody", "Cody", "Cruz")
    allowed = Permission(mode=PermissionMode.GROUPS, groups=frozenset({front.id}))
    await d.svc.affiliations.set_permission(SYSTEM_CALLER, clinic.id, abelard.id, allowed)
    _, carol_sink = await d.h.login("carol")
    alice, alice_sink = await d.h.login("alice")
    await d.h.send(alice, f"<message to='{d.jid('carol')}' type='chat'><body>x</body></message>")
    assert len(carol_sink.take()) == 1
    await d.h.send(alice, f"<message to='{d.jid('cody')}' type='chat'><body>x</body></message>")
    (reply,) = alice_sink.take()
    assert_refused(reply, "You may not message users of Oak Street Clinic")


async def test_accounts_without_a_profile_are_not_restricted(d: Directory) -> None:
    await two_hospitals(d)
    _, legacy_sink = await d.h.login("legacy")
    bob, _ = await d.h.login("bob")
    await d.h.send(bob, f"<message to='{d.jid('legacy')}' type='chat'><body>x</body></message>")
    assert len(legacy_sink.take()) == 1


async def test_a_subscription_request_across_organisations_is_refused(d: Directory) -> None:
    await two_hospitals(d)
    _, bob_sink = await d.h.login("bob")
    reply = await d.reply("alice", f"<presence to='{d.jid('bob')}' type='subscribe'/>")
    assert reply.tag == f"{{{ns.CLIENT}}}presence"
    assert_refused(reply)
    assert bob_sink.take() == []


async def test_directed_presence_across_organisations_is_refused_but_unavailable_passes(
    d: Directory,
) -> None:
    await two_hospitals(d)
    _, bob_sink = await d.h.login("bob")
    alice, alice_sink = await d.h.login("alice")
    await d.h.send(alice, f"<presence to='{d.jid('bob')}/res'><show>dnd</show></presence>")
    (reply,) = alice_sink.take()
    assert_refused(reply)
    await d.h.send(alice, f"<presence to='{d.jid('bob')}/res' type='unavailable'/>")
    await d.h.send(alice, f"<presence to='{d.jid('bob')}' type='unsubscribe'/>")
    assert alice_sink.take() == []
    assert [p.get("type") for p in bob_sink.take()] == ["unavailable"]


async def test_iqs_to_another_organisations_user_are_refused(d: Directory) -> None:
    await two_hospitals(d)
    await d.h.login("bob")
    vcard = await d.reply(
        "alice", f"<iq type='get' id='v1' to='{d.jid('bob')}'><vCard xmlns='vcard-temp'/></iq>"
    )
    assert_refused(vcard)
    ping = await d.reply(
        "alice",
        f"<iq type='get' id='p1' to='{d.jid('bob')}/res'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    assert_refused(ping)
    disco = f"<query xmlns='{ns.DISCO_INFO}'/>"
    same = await d.reply("alice", f"<iq type='get' id='v2' to='{d.jid('amy')}'>{disco}</iq>")
    assert same.get("type") == "result"


async def test_a_room_invitation_of_another_organisations_user_is_refused(d: Directory) -> None:
    await two_hospitals(d)
    room = f"huddle@chat.{d.domain}"
    reply = await d.reply(
        "alice",
        f"<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'>"
        f"<invite to='{d.jid('amy')}'/><invite to='{d.jid('bob')}'/></x></message>",
    )
    assert_refused(reply)


async def test_disabling_login_ends_the_sessions_at_once(d: Directory) -> None:
    await two_hospitals(d)
    _, sink = await d.h.login("alice")
    _, other = await d.h.login("amy")
    await d.svc.users.set_can_login(SYSTEM_CALLER, "alice", False)
    assert sink.closed is not None and sink.closed[0] is StreamCondition.NOT_AUTHORIZED
    assert other.closed is None


async def test_deleting_a_user_ends_the_sessions_at_once(d: Directory) -> None:
    await two_hospitals(d)
    _, sink = await d.h.login("amy")
    await d.svc.users.delete(SYSTEM_CALLER, "amy")
    assert sink.closed is not None and sink.closed[0] is StreamCondition.NOT_AUTHORIZED


async def test_the_account_check_ends_sessions_disabled_by_another_process(d: Directory) -> None:
    await two_hospitals(d)
    _, sink = await d.h.login("alice")
    _, other = await d.h.login("amy")
    # The command line writes the database directly: no event reaches this process.
    assert await d.h.kernel.stores.accounts.set_disabled("alice", True)
    assert sink.closed is None
    (check,) = [j for j in d.h.kernel.ctx.jobs if j.name == "removed-accounts"]
    await check.run()
    assert sink.closed == (StreamCondition.NOT_AUTHORIZED, "login disabled")
    assert other.closed is None


async def test_the_directory_is_reloaded_periodically(d: Directory) -> None:
    abelard, _ = await two_hospitals(d)
    (job,) = [j for j in d.h.kernel.ctx.jobs if j.name == "directory-reload"]
    assert job.interval == d.svc.config.index_reload_interval.total_seconds()
    d.svc.index.remove_user("alice")  # the index drifted (a change it did not see)
    assert d.svc.index.organisation_of("alice") is None
    await job.run()
    assert d.svc.index.organisation_of("alice") == abelard.id
