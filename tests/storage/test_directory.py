"""The directory's store on both databases: profiles, PINs, groups, invitations, affiliations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from carewire.core.stores import Stores
from carewire.directory.model import (
    AffiliationStatus,
    DirectoryUser,
    EmailTakenError,
    Group,
    GroupId,
    InvitationFilter,
    InvitationStatus,
    NameTakenError,
    Organisation,
    OrganisationId,
    OrgKind,
    Permission,
    PermissionMode,
    Profile,
    UserFilter,
    UserSortKey,
)
from carewire.directory.store import (
    DirectoryStore,
    NewAffiliation,
    NewInvitation,
    PinReset,
    StoredPin,
)
from carewire.security.audit import AuditEvent, Channel
from carewire.storage import Database
from carewire.storage.audit import SqlAuditStore
from carewire.storage.directory import build_directory_store
from tests.storage.factories import new_account, utc

NOW = utc(2026, 3, 1, 12)


@pytest.fixture
def store(db: Database) -> DirectoryStore:
    return build_directory_store(db)


async def org(
    store: DirectoryStore, name: str = "Abelard", kind: OrgKind = OrgKind.HOSPITAL
) -> Organisation:
    return await store.organisations.add(
        Organisation(
            id=OrganisationId(0),
            kind=kind,
            name=name,
            office_number="4088825830",
            created_at=NOW,
            updated_at=NOW,
        )
    )


async def user(
    store: DirectoryStore,
    stores: Stores,
    o: Organisation,
    login: str,
    last: str = "Doe",
    **kw: object,
) -> DirectoryUser:
    await stores.accounts.create(new_account(login))
    (staff_id,) = await store.users.next_staff_ids(1)
    u = DirectoryUser(
        login=login,
        organisation_id=o.id,
        staff_id=staff_id,
        profile=Profile(
            first_name=login.capitalize(),
            last_name=last,
            email=f"{login}@example.org",
            city="Boston",
        ),
        created_at=NOW,
        updated_at=NOW,
        **kw,  # type: ignore[arg-type]
    )
    await store.users.add(u)
    return u


async def test_organisations(store: DirectoryStore) -> None:
    a = await org(store)
    assert a.id > 0 and await store.organisations.get(a.id) == a
    with pytest.raises(NameTakenError):
        await org(store, "ABELARD")
    b = await org(store, "Bayside", OrgKind.PRACTICE)
    assert [o.name for o in await store.organisations.list_all()] == ["Abelard", "Bayside"]
    assert [r.name for r in await store.organisations.search("AY", limit=5, exclude=None)] == [
        "Bayside"
    ]
    assert await store.organisations.search("a", limit=5, exclude=a.id) == [
        (await store.organisations.search("bay", limit=1, exclude=None))[0]
    ]
    with pytest.raises(NameTakenError):
        await store.organisations.update(replace(b, name="abelard"))
    renamed = await store.organisations.update(replace(b, name="Bayside Practice"))
    assert (await store.organisations.get(b.id)) == renamed


async def test_profiles_staff_ids_and_search(store: DirectoryStore, stores: Stores) -> None:
    o = await org(store)
    ids = await store.users.next_staff_ids(3)
    assert ids == [100_001, 100_002, 100_003]
    ann = await user(store, stores, o, "ann", "Zimmer", is_org_admin=True)
    assert ann.staff_id == 100_004
    await user(store, stores, o, "bob", "adams")
    got = await store.users.get("ann")
    assert got is not None and got.profile.city == "Boston" and got.is_org_admin and not got.has_pin
    assert await store.users.count_admins(o.id) == 1
    await stores.accounts.create(new_account("ann2"))
    with pytest.raises(EmailTakenError):
        await store.users.add(replace(ann, login="ann2", staff_id=1))
    page, total = await store.users.find(
        o.id, UserFilter(), sort=UserSortKey.NAME, is_descending=False, offset=0, limit=1
    )
    assert total == 2 and [u.login for u in page] == ["bob"]  # adams < Zimmer, case-insensitively
    page, total = await store.users.find(
        o.id,
        UserFilter(last_name="IMM"),
        sort=UserSortKey.NAME,
        is_descending=False,
        offset=0,
        limit=10,
    )
    assert [u.login for u in page] == ["ann"]
    page, total = await store.users.find(
        o.id, UserFilter(email="_"), sort=UserSortKey.NAME, is_descending=False, offset=0, limit=10
    )
    assert total == 0  # "_" is not a wildcard
    assert set(await store.users.by_emails(["ann@example.org", "zed@example.org"])) == {
        "ann@example.org"
    }
    assert await store.users.taken_logins(["ann", "zed"]) == {"ann"}


async def test_pins_resets_and_the_account_cascade(
    store: DirectoryStore, stores: Stores, db: Database
) -> None:
    o = await org(store)
    await user(store, stores, o, "ann")
    assert not await store.users.has_pin("ann")
    await store.users.set_pin("ann", StoredPin(pin_hash="h1", is_temporary=True, set_at=NOW))
    assert await store.users.has_pin("ann")
    await store.users.set_pin("ann", StoredPin(pin_hash="h2", is_temporary=False, set_at=NOW))
    assert (await store.users.get_pin("ann")) == StoredPin(
        pin_hash="h2", is_temporary=False, set_at=NOW
    )
    await store.users.add_pin_reset(
        "d" * 64, PinReset(login="ann", created_at=NOW, expires_at=NOW + timedelta(hours=1))
    )
    assert not await store.users.use_pin_reset("d" * 64, NOW + timedelta(hours=2))  # expired
    assert await store.users.use_pin_reset("d" * 64, NOW)
    assert not await store.users.use_pin_reset("d" * 64, NOW)  # once
    g = await store.groups.add(
        Group(
            id=GroupId(0),
            organisation_id=o.id,
            name="ICU",
            slug="icu",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    await store.groups.add_members(g.id, ["ann"])
    assert await store.users.set_disabled("ann", True)
    assert (await store.users.get("ann")).can_login is False  # type: ignore[union-attr]
    assert await store.users.remove("ann")
    assert await store.users.get("ann") is None and await store.users.get_pin("ann") is None
    assert not await store.users.has_pin("ann")
    assert await store.users.get_pin_reset("d" * 64) is None
    assert await store.groups.member_logins(g.id) == []


async def test_groups(store: DirectoryStore, stores: Stores) -> None:
    a, b = await org(store), await org(store, "Other")
    await user(store, stores, a, "ann")
    await user(store, stores, a, "bob")

    def group(o: Organisation, name: str, slug: str) -> Group:
        return Group(
            id=GroupId(0),
            organisation_id=o.id,
            name=name,
            slug=slug,
            created_at=NOW,
            updated_at=NOW,
        )

    icu = await store.groups.add(group(a, "ICU", "icu"))
    with pytest.raises(NameTakenError):
        await store.groups.add(group(a, "icu", "icu-2"))
    await store.groups.add(group(b, "icu", "icu-2"))  # another organisation's
    assert await store.groups.taken_slugs(["icu", "icu-2", "icu-3"]) == {"icu", "icu-2"}
    assert await store.groups.add_members(icu.id, ["bob", "ann", "ann"]) == ["ann", "bob"]
    assert await store.groups.add_members(icu.id, ["ann"]) == []
    assert (await store.groups.get(icu.id)).member_count == 2  # type: ignore[union-attr]
    assert await store.groups.remove_members(icu.id, ["ann", "zed"]) == ["ann"]
    assert [g.name for g in await store.groups.of_user("bob")] == ["ICU"]
    assert set(await store.groups.by_names(a.id, ["Icu", "none"])) == {"icu"}
    assert [m.login for m in await store.groups.members(icu.id)] == ["bob"]


async def test_invitations(store: DirectoryStore) -> None:
    o = await org(store)

    def new(email: str, n: int) -> NewInvitation:
        return NewInvitation(
            organisation_id=o.id,
            email=email,
            token_hash=f"{n:064d}",
            expires_at=NOW + timedelta(days=14),
            invited_by="cli",
            at=NOW + timedelta(seconds=n),
        )

    rows = [new(f"u{i}@example.org", i) for i in range(2500)]
    added = await store.invitations.add_many(rows)
    assert [i.email for i in added] == [r.email for r in rows]
    assert [i.id for i in added] == sorted(i.id for i in added)
    stored = await store.invitations.by_token(f"{7:064d}")
    assert stored is not None and stored.invitation.email == "u7@example.org"
    again = (await store.invitations.add_many([new("u7@example.org", 9999)]))[0]
    assert (await store.invitations.open_for(o.id, ["u7@example.org"]))[
        "u7@example.org"
    ].id == again.id
    await store.invitations.set_status(
        [added[0].id, added[1].id], InvitationStatus.USER_CLICKED, NOW
    )
    await store.invitations.set_status(
        [added[0].id, added[2].id],
        InvitationStatus.EMAIL_SENT,
        NOW,
        only_from=InvitationStatus.PENDING,
    )
    assert (
        await store.invitations.get(added[0].id)
    ).invitation.status is InvitationStatus.USER_CLICKED  # type: ignore[union-attr]
    assert (
        await store.invitations.get(added[2].id)
    ).invitation.status is InvitationStatus.EMAIL_SENT  # type: ignore[union-attr]
    assert await store.invitations.delete([added[3].id, added[3].id], NOW) == [added[3].id]
    assert await store.invitations.delete([added[3].id], NOW) == []
    page, total = await store.invitations.find(
        o.id, InvitationFilter(email="U1"), offset=0, limit=5
    )
    assert total == 1111 and len(page) == 5  # u1, u10–u19, u100–u199, u1000–u1999
    assert page[0].updated_at >= page[-1].updated_at  # newest first
    assert await store.invitations.delete_open_for_email("u5@example.org", NOW) == 1


async def test_affiliations_and_permissions(store: DirectoryStore, stores: Stores) -> None:
    a, b = await org(store), await org(store, "Bayside", OrgKind.PRACTICE)
    icu = await store.groups.add(
        Group(
            id=GroupId(0),
            organisation_id=a.id,
            name="ICU",
            slug="icu",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    aff = await store.affiliations.add(
        NewAffiliation(
            inviter_id=a.id,
            invitee_id=b.id,
            status=AffiliationStatus.PENDING,
            token_hash="t" * 64,
            expires_at=NOW,
            invited_by="cli",
            at=NOW,
        )
    )
    assert (await store.affiliations.by_token("t" * 64)) == aff
    await store.affiliations.activate(aff.id, NOW)
    assert await store.affiliations.by_token("t" * 64) is None
    only_icu = Permission(mode=PermissionMode.GROUPS, groups=frozenset({icu.id}))
    await store.affiliations.set_permission(aff.id, a.id, only_icu)
    got = await store.affiliations.get(aff.id)
    assert (
        got is not None
        and got.status is AffiliationStatus.ACTIVE
        and got.permission_of(a.id) == only_icu
    )
    assert got.permission_of(b.id) == Permission()
    snap = await store.snapshot.snapshot()
    assert snap.graph.link(a.id, b.id) is not None and snap.org_names[b.id] == "Bayside"
    assert await store.groups.delete(icu.id) == [(aff.id, a.id)]
    assert [x.id for x in await store.affiliations.between(b.id, a.id)] == [aff.id]
    await store.affiliations.delete(aff.id)
    assert await store.affiliations.of_organisation(a.id) == []


async def test_reading_sees_the_tasks_own_writes_and_audit_joins(
    db: Database, store: DirectoryStore
) -> None:
    audit = SqlAuditStore(db)
    async with db.transaction("outer"):
        o = await org(store)
        async with db.reading("inside") as conn:
            assert conn is not None
        assert await store.organisations.get(o.id) is not None  # not committed yet
        await audit.append(
            NOW, AuditEvent(actor="cli", channel=Channel.CLI, action="x", target="y")
        )
    _, total = await audit.entries()
    assert total == 1
    with pytest.raises(RuntimeError):
        async with db.transaction("rolled back"):
            await org(store, "Gone")
            await audit.append(NOW, AuditEvent(actor="cli", channel=Channel.CLI, action="z"))
            raise RuntimeError
    assert [x.name for x in await store.organisations.list_all()] == ["Abelard"]
    assert (await audit.entries())[1] == 1
