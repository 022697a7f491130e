"""Removing an account removes everything it owns (FK cascade, also on SQLite)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from carewire.core.stores import (
    BusyKind,
    BusyPeriod,
    FastRecord,
    LoginAttempt,
    LoginOutcome,
    PepItem,
    RosterItem,
    Stores,
)
from carewire.storage import Database
from carewire.storage.tables import ALL_TABLES, accounts, login_audit
from tests.storage.factories import new_account, utc


async def _fill(stores: Stores, login: str) -> None:
    now = utc(2024, 1, 1)
    await stores.roster.set_item(login, RosterItem(contact="x@example.org", groups=("g",)))
    await stores.roster.add_pending_in(login, "y@example.org", "<presence/>")
    await stores.offline.store(login, "<m/>", stamp=now, expires_at=now + timedelta(days=1))
    await stores.vcards.set(login, "<vCard/>")
    await stores.private.set(login, "{a}b", "<b xmlns='a'/>")
    await stores.blocking.add(login, ["z@example.org"])
    await stores.held.hold(login, "<message/>", stamp=now, reason="dnd")
    await stores.busy.put(
        [BusyPeriod(login=login, kind=BusyKind.DND, until=now + timedelta(hours=1))]
    )
    item = PepItem(item_id="i", payload="<p xmlns='n'/>", publisher=login, published_at=now)
    await stores.pep.publish(login, "n", item, config="{}", max_items=1)
    await stores.fast.put(
        FastRecord(
            owner=login,
            agent_id="phone",
            mechanism="HT-SHA-256-NONE",
            current_seed=None,
            current_expires_at=None,
            current_count=0,
            new_seed=b"\x01" * 32,
            new_expires_at=now + timedelta(days=1),
            retired_seed=None,
            updated_at=now,
        )
    )
    await stores.login_audit.append_many(
        [
            LoginAttempt(
                at=now,
                login=login,
                remote_ip="::1",
                transport="c2s",
                mechanism="PLAIN",
                outcome=LoginOutcome.SUCCESS,
            )
        ]
    )


async def _counts(db: Database) -> dict[str, int]:
    async with db.read("count_rows") as conn:
        return {
            t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
            for t in ALL_TABLES
            if t.name not in DATA_PLATFORM_TABLES
        }


# The data platform's tables belong to no account.
DATA_PLATFORM_TABLES = {
    "dataset_definitions",
    "rules",
    "rule_schedule",
    "adapters",
    "hl7_messages",  # control ids of applied HL7 messages, per adapter
    "api_tokens",
    "audit_log",
    "console_users",
    "console_sessions",
    "password_resets",
    "muc_rooms",  # rooms outlive their creators; affiliations name JIDs, not accounts
    "muc_affiliations",
    "audit_mac_epochs",  # where the audit trail's MACs begin (security/audit_verify.py)
    "message_expiry",  # the expiry queue names JIDs, not accounts: a message outlives its sender
    "uploads",  # shared files outlive their uploader until they expire (the sweep deletes them)
    # The push app server's own store (tests/storage/test_push_store.py: registrations and
    # enables go with their account there; attempts are kept, like deliveries).
    "push_registrations",
    "push_enables",
    "push_attempts",
}
# The directory's tables: its profiles, PINs and memberships cascade from accounts too, tested
# with the directory's store (tests/storage/test_directory.py).
DATA_PLATFORM_TABLES |= {
    "organisations",
    "directory_sequences",
    "directory_users",
    "directory_pins",
    "pin_resets",
    "directory_groups",
    "directory_group_members",
    "invitations",
    "affiliations",
    "affiliation_permissions",
    "affiliation_permission_groups",
}
# SCIM's tokens and links: a link goes with its account (tests/storage/test_scim_store.py).
DATA_PLATFORM_TABLES |= {"scim_tokens", "scim_users", "scim_groups"}
# LDAP sync: settings and runs belong to an organisation; a link goes with its account
# (tests/storage/test_ldap_store.py).
DATA_PLATFORM_TABLES |= {"ldap_integrations", "ldap_users", "ldap_runs", "ldap_run_lines"}
# Federation's trusted domains and stream status belong to the server, not to an account
# (tests/storage/test_federation_store.py).
DATA_PLATFORM_TABLES |= {
    "federation_policy",
    "federation_allowed_domains",
    "federation_pins",
    "federation_status",
}
# Web Push subscriptions go with their account (tests/storage/test_webpush_store.py); the
# cluster's fencing tokens belong to the cluster, not to an account.
DATA_PLATFORM_TABLES |= {"webpush_subscriptions", "cluster_fence"}


async def test_remove_account_cascades(db: Database, stores: Stores, alice: str) -> None:
    await stores.accounts.create(new_account("bob"))
    await _fill(stores, alice)
    await _fill(stores, "bob")
    before = await _counts(db)
    assert all(n >= 2 for n in before.values()), {k: n for k, n in before.items() if n < 2}

    assert await stores.accounts.remove(alice)

    after = await _counts(db)
    assert after[accounts.name] == 1
    assert after[login_audit.name] == 2  # the audit outlives accounts (no FK)
    for name, n in after.items():
        if name not in (accounts.name, login_audit.name):
            assert n == before[name] // 2, name
    assert await stores.roster.get_roster(alice) == (0, [])
    assert await stores.roster.get_roster("bob") == (
        1,
        [RosterItem(contact="x@example.org", groups=("g",))],
    )
    assert await stores.offline.owners() == {"bob"}
