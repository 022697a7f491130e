"""Directory sync from a real OpenLDAP (slapd): full and incremental runs, the guard, reports."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from carewire.directory.model import SyncedFieldError, UserDisabled, UserUpdate
from carewire.identity.ldap.model import (
    AttributeMap,
    ChangeType,
    RunCounts,
    RunKind,
    RunState,
    Trigger,
)
from tests.directory.world import SYSADMIN
from tests.identity.conftest import LdapWorld, settings_for, unit
from tests.ldapserver import person_ldif

pytestmark = pytest.mark.slow
#: Not UTF-8: an attribute of octet-string syntax holding binary (a sound, a GUID…).
BINARY = base64.b64encode(b"\xff\xfe\x00ab").decode()


async def test_full_sync_creates_users_and_groups(lw: LdapWorld) -> None:
    await lw.configure()
    run = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CONSOLE)
    assert run.state is RunState.DONE, run.message
    assert run.kind is RunKind.FULL
    assert run.counts.created == 300 and run.counts.failed == 0
    user = await lw.world.directory.users.get(SYSADMIN, "user00007")
    assert user.profile.first_name == "Given7" and user.profile.last_name == "Family7"
    assert user.profile.email == "user00007@hospital.example"
    assert user.profile.job_title == "Nurse 0"
    assert user.organisation_id == lw.org.id and user.can_login
    groups = await lw.world.directory.groups.list_for(SYSADMIN, lw.org.id, name_contains="Ward")
    assert sorted(g.name for g in groups) == [f"Ward {i}" for i in range(5)]
    members = await lw.world.directory.groups.members(SYSADMIN, groups[2].id)
    assert len(members) == 60 and all(int(m.login[-5:]) % 5 == 2 for m in members)
    _, lines, total = await lw.ldap.report(SYSADMIN, run.id, limit=5)
    assert total == 300 and lines[0].change is ChangeType.CREATED and lines[0].staff_id
    # Idempotent: the same directory again changes nothing.
    again = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI, is_full=True)
    assert (again.counts.created, again.counts.updated, again.counts.unchanged) == (0, 0, 300)
    status = await lw.ldap.status(SYSADMIN, lw.org.id)
    assert status.is_connected and status.linked_users == 300


async def test_changes_are_picked_up_incrementally_and_leavers_by_a_full_run(
    lw: LdapWorld,
) -> None:
    base, uids = unit(lw.slapd, 6)
    await lw.configure(base, max_disable_percent=50)
    first = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.API)
    assert first.counts.created == 6, first.message
    lw.slapd.modify(
        f"dn: uid={uids[0]},{base}\nchangetype: modify\nreplace: sn\nsn: Renamed\n\n"
        f"dn: uid={uids[1]},{base}\nchangetype: modrdn\nnewrdn: uid=moved-{uids[1]}\n"
        "deleteoldrdn: 0\n\n"
        f"dn: uid={uids[2]},{base}\nchangetype: delete\n\n"
    )
    inc = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.API)
    assert inc.kind is RunKind.INCREMENTAL and inc.state is RunState.DONE, inc.message
    assert inc.counts.updated == 2 and inc.counts.disabled == 0
    renamed = await lw.world.directory.users.get(SYSADMIN, uids[0])
    assert renamed.profile.last_name == "Renamed"
    full = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.API, is_full=True)
    assert full.counts.disabled == 1 and full.counts.unchanged == 5, full.message
    gone = await lw.world.directory.users.get(SYSADMIN, uids[2])  # disabled, never deleted
    assert not gone.can_login
    assert UserDisabled(login=uids[2]) in lw.world.events
    _, lines, _ = await lw.ldap.report(SYSADMIN, full.id)
    assert [(line.change, line.login) for line in lines] == [(ChangeType.DISABLED, uids[2])]


async def test_a_filter_matching_nothing_is_held_until_confirmed(lw: LdapWorld) -> None:
    base, uids = unit(lw.slapd, 4)
    await lw.configure(base)
    assert (await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI)).counts.created == 4
    await lw.configure(base, user_filter="(objectClass=nothingLikeThis)")
    held = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI)
    assert held.state is RunState.HELD and "would disable 4 of 4" in held.message
    for uid in uids:
        assert (await lw.world.directory.users.get(SYSADMIN, uid)).can_login
    status = await lw.ldap.status(SYSADMIN, lw.org.id)
    assert status.held_run is not None and status.held_run.id == held.id
    _, lines, _ = await lw.ldap.report(SYSADMIN, held.id)
    assert {line.login for line in lines} == set(uids)
    done = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI, is_confirmed=True)
    assert done.state is RunState.DONE and done.counts.disabled == 4
    assert not (await lw.world.directory.users.get(SYSADMIN, uids[0])).can_login
    # Back in the filter: enabled again by the next run (they were disabled by sync).
    await lw.configure(base)
    back = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI)
    assert back.counts.updated == 4, back.message
    assert (await lw.world.directory.users.get(SYSADMIN, uids[0])).can_login


@pytest.mark.parametrize(
    ("changes", "secret", "error"),
    [
        ({}, "wrong-secret", "refused the bind DN or its password"),
        ({"url": "ldap://127.0.0.1:1"}, None, "cannot reach ldap://127.0.0.1:1"),
        ({"ca_file": "/etc/ssl/certs/ca-certificates.crt"}, None, "cannot reach"),
        ({"base_dn": "ou=nowhere,dc=example,dc=org"}, None, "base DN does not exist"),
    ],
)
async def test_unusable_directory_is_not_connected_and_changes_nothing(
    lw: LdapWorld, changes: dict[str, str], secret: str | None, error: str
) -> None:
    base, _ = unit(lw.slapd, 2)
    await lw.configure(base)
    assert (await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI)).counts.created == 2
    values = {"base_dn": base} | changes
    await lw.ldap.save(SYSADMIN, settings_for(lw.org, lw.slapd, **values), secret)
    assert not await lw.ldap.check(lw.org.id)
    status = await lw.ldap.status(SYSADMIN, lw.org.id)
    assert not status.is_connected and error in status.error
    run = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI, is_full=True)
    assert run.state is RunState.FAILED and error in run.message
    assert run.counts == RunCounts()
    assert (await lw.ldap.status(SYSADMIN, lw.org.id)).linked_users == 2


async def test_bad_entries_fail_alone_with_a_clear_message(lw: LdapWorld) -> None:
    base, _ = unit(lw.slapd, 3)
    long_title = "x" * 200
    lw.slapd.add(
        person_ldif("dup-a", 900, base=base, email="same@hospital.example")
        + person_ldif("dup-b", 901, base=base, email="same@hospital.example")
        + person_ldif("longtitle", 902, base=base).replace("title: Nurse 6", f"title: {long_title}")
        + person_ldif("binary", 903, base=base, extra=f"audio:: {BINARY}\n")
        + person_ldif("utf8", 904, base=base).replace(
            "givenName: Given904", "givenName:: " + base64.b64encode("Zoë".encode()).decode()
        )
        + person_ldif("Bad Login!", 905, base=base)
    )
    mapping = AttributeMap(profile={**AttributeMap().profile, "middle_name": "audio"})
    await lw.configure(base, mapping=mapping)
    run = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI)
    assert run.state is RunState.DONE
    _, lines, _ = await lw.ldap.report(SYSADMIN, run.id)
    failed = {
        line.login or line.external_id: line.message
        for line in lines
        if line.change is ChangeType.FAILED
    }
    assert run.counts.created == 3 + 2 and run.counts.failed == 4, failed
    assert any("duplicate e-mail same@hospital.example" in m for m in failed.values())
    assert any("title: Job Title has at most 100 characters" in m for m in failed.values())
    assert any("audio is not UTF-8 text" in m for m in failed.values())
    assert any("uid 'Bad Login!'" in m for m in failed.values())
    assert (await lw.world.directory.users.get(SYSADMIN, "utf8")).profile.first_name == "Zoë"


async def test_synced_fields_are_read_only_for_administrators(lw: LdapWorld) -> None:
    base, uids = unit(lw.slapd, 1)
    await lw.configure(base)
    await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI)
    user = await lw.world.directory.users.get(SYSADMIN, uids[0])
    with pytest.raises(SyncedFieldError) as err:
        await lw.world.directory.users.update(
            SYSADMIN, user.login, UserUpdate(profile=replace(user.profile, last_name="Edited"))
        )
    assert err.value.field == "last_name"
    # A field the directory does not fill stays the administrator's.
    done = await lw.world.directory.users.update(
        SYSADMIN, user.login, UserUpdate(profile=replace(user.profile, credentials="RN"))
    )
    assert done.profile.credentials == "RN"


async def test_an_existing_user_with_the_address_is_linked_not_duplicated(lw: LdapWorld) -> None:
    base, uids = unit(lw.slapd, 1)
    local = await lw.world.user(lw.org, f"{uids[0]}@hospital.example", login="localname")
    await lw.configure(base)
    run = await lw.ldap.sync(SYSADMIN, lw.org.id, trigger=Trigger.CLI)
    assert (run.counts.created, run.counts.updated) == (0, 1), run.message
    linked = await lw.world.directory.users.get(SYSADMIN, local.login)
    assert linked.profile.first_name == "Given0" and linked.staff_id == local.staff_id
