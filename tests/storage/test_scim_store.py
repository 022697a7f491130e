"""SCIM's store (storage/scim.py) on SQLite and PostgreSQL: tokens, links, and searches
whose SQL answers exactly what scim2-models answers in memory for the same filter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from scim2_models import ScimFilter, User

from carewire.directory.model import SYSTEM_CALLER
from carewire.errors import ConflictError
from carewire.identity.scim import mapping
from carewire.identity.scim.engine import StaffEnterpriseUser
from carewire.identity.scim.model import UserLink
from carewire.identity.scim.query import UserSearch, UserSort, user_condition
from carewire.storage.scim import SqlScimStore
from tests.identity.scim_world import ScimWorld, new_user, scim_world
from tests.storage.conftest import db_url

__all__ = ["db_url"]

AT = datetime(2026, 1, 2, tzinfo=UTC)
MODEL = User[StaffEnterpriseUser]


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[ScimWorld]:
    async with scim_world(db_url) as opened:
        yield opened


async def test_tokens_are_stored_as_digests_and_revoked(world: ScimWorld) -> None:
    store = SqlScimStore(world.platform.db)
    token = await store.add_token(
        organisation_id=world.general,
        name="t",
        token_hash="ab" * 32,
        invite_users=False,
        created_by="cli",
        created_at=AT,
    )
    assert (await store.token_by_hash("ab" * 32)) == token
    with pytest.raises(ConflictError):
        await store.add_token(
            organisation_id=world.general,
            name="t",
            token_hash="cd" * 32,
            invite_users=True,
            created_by="cli",
            created_at=AT,
        )
    # The same name in another organisation is another token.
    await store.add_token(
        organisation_id=world.other,
        name="t",
        token_hash="ef" * 32,
        invite_users=True,
        created_by="cli",
        created_at=AT,
    )
    revoked = await store.revoke_token(world.general, "t", AT)
    assert revoked is not None and revoked.revoked_at == AT
    again = await store.revoke_token(world.general, "t", datetime(2027, 1, 1, tzinfo=UTC))
    assert again is not None and again.revoked_at == AT  # the first revocation stands
    assert await store.revoke_token(world.general, "nope", AT) is None
    await store.touch_token(token.id, AT)
    assert (await store.token_by_hash("ab" * 32)).last_used_at == AT  # type: ignore[union-attr]
    names = [(t.organisation_id, t.name) for t in await store.tokens(None)]
    assert (world.general, "t") in names and (world.other, "t") in names
    assert [t.organisation_id for t in await store.tokens(world.other)] == [world.other] * len(
        await store.tokens(world.other)
    )


async def test_links_are_unique_per_organisation_and_go_with_the_account(world: ScimWorld) -> None:
    store = SqlScimStore(world.platform.db)
    for name in ("lia", "lou"):
        assert (await world.client.post("/Users", json=new_user(name))).status_code == 201
    link = UserLink(login="lia", organisation_id=world.general, user_name="Lou", updated_at=AT)
    with pytest.raises(ConflictError):  # "lou" is lou's userName (case-insensitive)
        await store.put_user_link(link)
    assert await store.login_of_user_name(world.general, "lia") == "lia"
    assert await store.login_of_user_name(world.other, "lia") is None
    await world.platform.directory.users.delete(SYSTEM_CALLER, "lia")
    assert await store.login_of_user_name(world.general, "lia") is None
    assert await store.user(world.general, "lia") is None


POPULATION: dict[str, dict[str, Any]] = {
    "p-amy": {
        "externalId": "X1",
        "title": "Nurse",
        "name": {"givenName": "Amy", "familyName": "Orr"},
    },
    "p-ben": {"active": False, "name": {"givenName": "Ben", "familyName": "Park"}},
    "p-cat": {"name": {"givenName": "Cat", "familyName": "Quinn"}, "userType": "Non-Physician"},
    "p-dee": {"externalId": "x1", "name": {"givenName": "Dee", "familyName": "Orr"}},
}

#: Filters the store compiles to SQL; each must select what the in-memory evaluation selects.
COMPILED = [
    'userName eq "p-amy"',
    'userName ne "p-amy"',
    'userName co "-b"',
    'userName sw "P-"',
    'userName ew "EE"',
    'userName gt "p-b"',
    'userName le "p-ben"',
    'externalId eq "X1"',
    'externalId ne "X1"',
    "externalId pr",
    'not (externalId eq "x1")',
    "active eq false",
    "active ne false",
    'not (active eq true) or name.givenName eq "cat"',
    'name.familyName eq "ORR" and not (name.givenName sw "a")',
    'emails.value ew "amy@general.example"',
    'emails co "ben"',
    'meta.created ge "2020-01-01T00:00:00Z"',
    'meta.lastModified lt "2020-01-01T00:00:00Z"',
    'id eq "p-cat"',
    "groups pr",
    'groups eq "1"',
    'groups ne "1"',
]


async def test_sql_and_memory_agree(world: ScimWorld) -> None:
    """One world per database for every filter (a world per filter would cost a minute)."""
    for name, more in POPULATION.items():
        r = await world.client.post("/Users", json=new_user(name, **more))
        assert r.status_code == 201, r.text
    store = SqlScimStore(world.platform.db)
    everyone, _ = await store.search_users(
        UserSearch(organisation_id=world.general, condition=None, limit=1000)
    )
    resources = {
        s.user.login: MODEL.model_validate(mapping.user_resource(s, domain="x")) for s in everyone
    }
    for expression in COMPILED:
        scim_filter = ScimFilter[MODEL](expression)  # type: ignore[valid-type]
        condition = user_condition(scim_filter.ast)
        assert condition is not None, f"{expression} is evaluated in memory"
        expected = {login for login, r in resources.items() if scim_filter.match(r)}
        found, count = await store.search_users(
            UserSearch(organisation_id=world.general, condition=condition, limit=1000)
        )
        assert {s.user.login for s in found} == expected, expression
        assert count == len(expected), expression
        page, _ = await store.search_users(
            UserSearch(
                organisation_id=world.general,
                condition=condition,
                sort=UserSort.USER_NAME,
                is_descending=True,
                offset=1,
                limit=2,
            )
        )
        assert [s.user.login for s in page] == sorted(expected, reverse=True)[1:3], expression
