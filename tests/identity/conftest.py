"""Fixtures of the LDAP sync tests: one real slapd per worker, a directory per test.

The slapd (tests/ldapserver.py) is started once per pytest worker, loaded with
300 people and 5 groups under ``ou=people``; tests that change the directory
make a unit of their own (:func:`unit`) so they stay independent.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from carewire.directory.model import Organisation
from carewire.identity.ldap.model import LdapSettings
from carewire.identity.ldap.service import LdapService, SyncConfig
from carewire.security.envelope import ephemeral_keyring
from carewire.storage.ldap_sync import SqlLdapStore
from tests.directory.world import SYSADMIN, World, open_world
from tests.ldapserver import (
    BIND_DN,
    BIND_PW,
    PEOPLE,
    SUFFIX,
    Slapd,
    group_ldif,
    person_ldif,
    require_slapd,
    start_slapd,
)
from tests.storage.conftest import db_url

__all__ = ["db_url"]


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A running slapd with 300 people (once per worker)."""
    require_slapd()
    yield from start_slapd(tmp_path_factory.mktemp("slapd"), people=300, groups=5)


def unit(slapd: Slapd, people: int, *, prefix: str = "p") -> tuple[str, list[str]]:
    """A new ``ou`` with ``people`` people (uids ``<prefix><unit>-<n>``) and a group ``Team``."""
    name = f"t{secrets.token_hex(4)}"
    base = f"ou={name},{SUFFIX}"
    uids = [f"{prefix}{name}-{i}" for i in range(people)]
    ldif = f"dn: {base}\nobjectClass: organizationalUnit\nou: {name}\n\n"
    ldif += "".join(person_ldif(uid, i, base=base) for i, uid in enumerate(uids))
    ldif += group_ldif("Team", [f"uid={uid},{base}" for uid in uids[::2]], base=base)
    slapd.add(ldif)
    return base, uids


def settings_for(org: Organisation, slapd: Slapd, **changes: object) -> LdapSettings:
    """StartTLS to the test slapd, its CA, people under ``base_dn``, groups beside them."""
    base_dn = str(changes.pop("base_dn", PEOPLE))
    values: dict[str, object] = {
        "organisation_id": org.id,
        "url": slapd.url,
        "bind_dn": BIND_DN,
        "base_dn": base_dn,
        "group_base_dn": base_dn if base_dn != PEOPLE else f"ou=groups,{SUFFIX}",
        "ca_file": str(slapd.ca_file),
        **changes,
    }
    return LdapSettings(**values)  # type: ignore[arg-type]


@dataclass(slots=True, kw_only=True)
class LdapWorld:
    """A directory with one hospital and the LDAP service on it."""

    world: World
    ldap: LdapService
    org: Organisation
    slapd: Slapd

    async def configure(
        self, base_dn: str = PEOPLE, secret: str = BIND_PW, **changes: object
    ) -> LdapSettings:
        """Save settings for the hospital (as the system administrator)."""
        return await self.ldap.save(
            SYSADMIN, settings_for(self.org, self.slapd, base_dn=base_dn, **changes), secret
        )


@pytest.fixture
async def lw(db_url: str, slapd: Slapd) -> AsyncIterator[LdapWorld]:
    """A fresh directory and LDAP service (SQLite, and PostgreSQL when configured)."""
    w = await open_world(db_url)
    ldap = LdapService(
        store=SqlLdapStore(w.db, ephemeral_keyring()),
        directory=w.directory,
        audit=w.audit,
        clock=w.clock,
        config=SyncConfig(timeout=5.0),
    )
    w.directory.manage_fields(ldap.managed_fields)
    org = await w.hospital()
    try:
        yield LdapWorld(world=w, ldap=ldap, org=org, slapd=slapd)
    finally:
        await w.directory.close()
        await w.db.close()


__all__ += ["LdapWorld", "Path", "unit"]
