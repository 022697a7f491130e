"""LDAP sync's links (storage/ldap_sync.py), SQLite and PostgreSQL: a link goes with its account."""

from __future__ import annotations

from datetime import UTC, datetime

from carewire.directory.model import SYSTEM_CALLER
from carewire.identity.ldap.store import LinkRow
from carewire.security.envelope import ephemeral_keyring
from carewire.storage.ldap_sync import SqlLdapStore
from tests.directory.world import open_world
from tests.storage.conftest import db_url

__all__ = ["db_url"]

AT = datetime(2026, 1, 2, tzinfo=UTC)


async def test_a_link_goes_with_its_account_and_the_others_stay(db_url: str) -> None:
    world = await open_world(db_url)
    try:
        org = await world.hospital()
        users = [await world.user(org, f"{name}@abelard.example") for name in ("ana", "ben")]
        store = SqlLdapStore(world.db, ephemeral_keyring())
        links = [
            LinkRow(login=u.login, organisation_id=org.id, external_id=f"x-{u.login}", dn="cn=x")
            for u in users
        ]
        await store.put_links(links, AT)
        assert await store.count_links(org.id) == 2

        await world.directory.users.delete(SYSTEM_CALLER, users[0].login)

        assert await store.link_of(users[0].login) is None
        assert await store.link_of(users[1].login) == links[1]
        assert await store.count_links(org.id) == 1
    finally:
        await world.db.close()
