"""Directory contacts as roster items, kept in sync (carewire.features.directory_roster)."""

from __future__ import annotations

from dataclasses import replace
from xml.etree.ElementTree import Element

from carewire.core.sessions import Session
from carewire.directory.model import SYSTEM_CALLER, Group, Organisation, UserUpdate
from carewire.features.directory_roster import MANAGED_KEY, DirectoryRoster
from carewire.xmpp import ns
from tests.features import directory_setup
from tests.features.directory_setup import Directory, iq_answer
from tests.features.harness import RecordingSink

# The fixture ``d``: the whole assembly on each database kind.
directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

ROSTER = f"{{{ns.ROSTER}}}"
IQ = f"{{{ns.CLIENT}}}iq"
PRESENCE = f"{{{ns.CLIENT}}}presence"


async def roster(d: Directory, session: Session, sink: RecordingSink) -> dict[str, Element]:
    """The session's roster, by contact."""
    await d.h.send(session, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
    answer = iq_answer(sink, "r")
    return {i.get("jid", ""): i for i in answer.iter(f"{ROSTER}item")}


def groups_of(item: Element) -> list[str]:
    return [g.text or "" for g in item.iter(f"{ROSTER}group")]


def pushes(stanzas: list[Element]) -> dict[str, Element]:
    """The items of the roster pushes among ``stanzas``, by contact."""
    found = {}
    for s in stanzas:
        if s.tag == IQ and s.get("type") == "set":
            for item in s.iter(f"{ROSTER}item"):
                found[item.get("jid", "")] = item
    return found


async def ward(d: Directory) -> tuple[Organisation, Group, Group]:
    """Abelard: Cardiology (alice, bob), Oncology (alice); carl in no group."""
    org = await d.hospital("Abelard Medical Center")
    cardiology = await d.group(org, "Cardiology")
    oncology = await d.group(org, "Oncology")
    await d.user(org, "alice", "Alice", "Able", groups=[cardiology, oncology])
    await d.user(org, "bob", "Bob", "Brown", groups=[cardiology])
    await d.user(org, "carl", "Carl", "Cole")
    await d.settle()
    return org, cardiology, oncology


async def test_group_colleagues_are_roster_items_with_both_name_and_group(d: Directory) -> None:
    await ward(d)
    alice, sink = await d.h.login("alice")
    items = await roster(d, alice, sink)
    assert set(items) == {d.jid("bob")}
    bob = items[d.jid("bob")]
    assert bob.get("subscription") == "both"
    assert bob.get("name") == "Bob Brown"
    assert groups_of(bob) == ["Cardiology"]
    assert bob.get("ask") is None


async def test_a_new_member_is_pushed_to_everyone_and_presence_follows(d: Directory) -> None:
    _, _cardiology, oncology = await ward(d)
    alice, alice_sink = await d.h.login("alice")
    carl, carl_sink = await d.h.login("carl")
    await d.add(oncology, "carl")
    await d.settle()
    to_alice = alice_sink.take()
    item = pushes(to_alice)[d.jid("carl")]
    assert item.get("subscription") == "both"
    assert groups_of(item) == ["Oncology"]
    assert item.get("name") == "Carl Cole"
    # Both are online and available: each now receives the other's presence.
    assert any(p.tag == PRESENCE and p.get("from") == str(carl.jid) for p in to_alice)
    to_carl = carl_sink.take()
    assert groups_of(pushes(to_carl)[d.jid("alice")]) == ["Oncology"]
    assert any(p.tag == PRESENCE and p.get("from") == str(alice.jid) for p in to_carl)
    assert d.jid("bob") not in pushes(to_carl)


async def test_two_shared_groups_make_one_item_and_leaving_one_keeps_it(d: Directory) -> None:
    _, cardiology, oncology = await ward(d)
    await d.add(oncology, "bob")
    await d.settle()
    alice, sink = await d.h.login("alice")
    assert groups_of((await roster(d, alice, sink))[d.jid("bob")]) == ["Cardiology", "Oncology"]
    await d.remove(cardiology, "bob")
    await d.settle()
    (item,) = pushes(sink.take()).values()
    assert item.get("subscription") == "both"
    assert groups_of(item) == ["Oncology"]


async def test_leaving_the_last_shared_group_removes_the_item_on_both_sides(d: Directory) -> None:
    _, cardiology, _ = await ward(d)
    alice, alice_sink = await d.h.login("alice")
    bob, bob_sink = await d.h.login("bob")
    await d.remove(cardiology, "bob")
    await d.settle()
    to_alice = alice_sink.take()
    assert pushes(to_alice)[d.jid("bob")].get("subscription") == "remove"
    assert any(
        p.tag == PRESENCE and p.get("type") == "unavailable" and p.get("from") == str(bob.jid)
        for p in to_alice
    )
    assert pushes(bob_sink.take())[d.jid("alice")].get("subscription") == "remove"
    assert await roster(d, alice, alice_sink) == {}


async def test_items_added_by_hand_are_left_alone(d: Directory) -> None:
    _, cardiology, _ = await ward(d)
    carl, sink = await d.h.login("carl")
    item = f"<item jid='{d.jid('alice')}' name='Ally'><group>Friends</group></item>"
    await d.h.send(
        carl, f"<iq type='set' id='s'><query xmlns='jabber:iq:roster'>{item}</query></iq>"
    )
    await d.add(cardiology, "carl")
    await d.settle()
    items = await roster(d, carl, sink)
    assert items[d.jid("alice")].get("name") == "Ally"
    assert groups_of(items[d.jid("alice")]) == ["Friends"]
    assert items[d.jid("bob")].get("subscription") == "both"  # the directory's own item
    await d.remove(cardiology, "carl")
    await d.settle()
    assert set(await roster(d, carl, sink)) == {d.jid("alice")}


async def test_renaming_a_group_renames_the_roster_group(d: Directory) -> None:
    _, cardiology, _ = await ward(d)
    _bob, sink = await d.h.login("bob")
    await d.svc.groups.update(SYSTEM_CALLER, cardiology.id, name="Cardiac Care")
    await d.settle()
    assert groups_of(pushes(sink.take())[d.jid("alice")]) == ["Cardiac Care"]


async def test_deleting_a_group_removes_its_items(d: Directory) -> None:
    _, cardiology, _ = await ward(d)
    _bob, sink = await d.h.login("bob")
    await d.svc.groups.delete(SYSTEM_CALLER, cardiology.id)
    await d.settle()
    assert pushes(sink.take())[d.jid("alice")].get("subscription") == "remove"


async def test_a_deleted_user_leaves_the_rosters(d: Directory) -> None:
    await ward(d)
    alice, sink = await d.h.login("alice")
    await d.svc.users.delete(SYSTEM_CALLER, "bob")
    await d.settle()
    assert await roster(d, alice, sink) == {}


async def test_a_changed_name_reaches_the_items(d: Directory) -> None:
    await ward(d)
    _alice, sink = await d.h.login("alice")
    user = await d.svc.users.get(SYSTEM_CALLER, "bob")
    profile = replace(user.profile, first_name="Robert")
    await d.svc.users.update(SYSTEM_CALLER, "bob", UserUpdate(profile=profile))
    await d.settle()
    assert pushes(sink.take())[d.jid("bob")].get("name") == "Robert Brown"


async def test_offline_users_get_their_items_too(d: Directory) -> None:
    _, _, oncology = await ward(d)
    await d.add(oncology, "carl")
    await d.settle()
    carl, sink = await d.h.login("carl")
    assert set(await roster(d, carl, sink)) == {d.jid("alice")}


async def test_the_first_session_reconciles_what_was_missed(d: Directory) -> None:
    _, cardiology, _ = await ward(d)
    # The index changed without an event reaching this feature (as if the server was down).
    d.svc.index.add_members(cardiology.id, ["carl"])
    carl, sink = await d.h.login("carl")
    assert set(await roster(d, carl, sink)) == {d.jid("alice"), d.jid("bob")}
    await d.settle()  # the contacts' side follows
    alice, alice_sink = await d.h.login("alice")
    assert d.jid("carl") in await roster(d, alice, alice_sink)


async def test_a_directory_item_removed_by_hand_comes_back(d: Directory) -> None:
    await ward(d)
    alice, sink = await d.h.login("alice")
    item = f"<item jid='{d.jid('bob')}' subscription='remove'/>"
    await d.h.send(
        alice, f"<iq type='set' id='s'><query xmlns='jabber:iq:roster'>{item}</query></iq>"
    )
    assert d.jid("bob") not in await roster(d, alice, sink)
    await d.h.unbind(alice)
    alice, sink = await d.h.login("alice")
    assert d.jid("bob") in await roster(d, alice, sink)


async def test_a_bind_skips_the_reconciliation_while_nothing_changed(d: Directory) -> None:
    await ward(d)
    feature = d.h.kernel.ctx.find(DirectoryRoster)
    assert feature is not None and feature.is_current("alice")
    stored = await d.h.kernel.stores.private.get("alice", MANAGED_KEY)
    assert stored is not None and "fingerprint=" in stored
    # A fresh start reads every fingerprint at once: the sync is still known to be current.
    feature._synced.clear()
    await feature.load()
    assert feature.is_current("alice")
    alice, sink = await d.h.login("alice")
    assert d.jid("bob") in await roster(d, alice, sink)


async def test_a_hand_edit_forgets_the_fingerprint_in_memory_and_in_storage(d: Directory) -> None:
    await ward(d)
    feature = d.h.kernel.ctx.find(DirectoryRoster)
    assert feature is not None
    alice, _sink = await d.h.login("alice")
    item = f"<item jid='{d.jid('bob')}' name='Bobby'/>"
    await d.h.send(
        alice, f"<iq type='set' id='s'><query xmlns='jabber:iq:roster'>{item}</query></iq>"
    )
    await feature.drain()
    assert not feature.is_current("alice")
    stored = await d.h.kernel.stores.private.get("alice", MANAGED_KEY)
    assert stored is not None and "fingerprint=" not in stored and d.jid("bob") in stored
    await feature.load()  # a restart now would not trust the stale list either
    assert not feature.is_current("alice")


async def test_a_membership_change_makes_the_fingerprint_stale(d: Directory) -> None:
    _, cardiology, _ = await ward(d)
    feature = d.h.kernel.ctx.find(DirectoryRoster)
    assert feature is not None and feature.is_current("bob")
    await d.add(cardiology, "carl")
    assert not feature.is_current("bob")  # the index wants more than the last sync made
    await d.settle()
    assert feature.is_current("bob")


async def test_the_list_of_directory_items_is_out_of_clients_reach(d: Directory) -> None:
    await ward(d)
    stored = await d.h.kernel.stores.private.get("alice", MANAGED_KEY)
    assert stored is not None and d.jid("bob") in stored
    assert not MANAGED_KEY.startswith("{")  # XEP-0049 keys are Clark names: '{ns}name'


async def test_accounts_without_a_profile_keep_their_roster(d: Directory) -> None:
    await ward(d)
    legacy, sink = await d.h.login("legacy")
    assert await roster(d, legacy, sink) == {}


async def test_a_user_made_by_another_process_has_contacts_at_first_login(
    d: Directory, db_url: str
) -> None:
    from carewire.assembly import Options, assemble
    from carewire.directory.model import NewUser, Profile
    from tests.features.directory_setup import PASSWORD

    org, cardiology, _ = await ward(d)
    other = await assemble(Options(url=db_url, domain=d.domain, upgrade=False))
    try:  # e.g. `carewire user add --organisation …` next to the running server
        await other.directory.load()
        await other.directory.users.create(
            SYSTEM_CALLER,
            org.id,
            NewUser(
                profile=Profile(first_name="Dora", last_name="Dent", email="dora@x.org"),
                login="dora",
                pin="2580",
                password=PASSWORD,
                groups=(cardiology.id,),
                send_invitation=False,
            ),
        )
    finally:
        await other.close()
    assert not d.svc.index.has_profile("dora")  # this server has not reloaded yet
    dora, sink = await d.h.login("dora")
    assert set(await roster(d, dora, sink)) == {d.jid("alice"), d.jid("bob")}
    assert d.svc.index.organisation_of("dora") == org.id
