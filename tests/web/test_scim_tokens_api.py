"""``/scim-tokens``: an administrator creates (shown once), lists and revokes SCIM tokens."""

from __future__ import annotations

from carewire.security.tokens import Role
from tests.web.conftest import assert_problem
from tests.web.directory_world import CLIENT_IP, World, db_url, world

__all__ = ["db_url", "world"]


async def test_create_list_revoke_and_scope(world: World) -> None:
    general = await world.hospital("General")
    other = await world.hospital("Other")
    admin = await world.client("general-admin", organisation=general)
    r = await admin.post("/scim-tokens", json={"name": "entra-id"})
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["token"]
    assert token.startswith("cwscim_") and created["organisation"] == general
    assert created["invite_users"] is True and created["created_by"] == "api:general-admin"
    r = await admin.get("/scim-tokens")
    assert r.status_code == 200
    (listed,) = r.json()["tokens"]
    assert listed["name"] == "entra-id" and "token" not in listed and token not in r.text
    assert_problem(await admin.post("/scim-tokens", json={"name": "entra-id"}), 409, "token-exists")
    # Another organisation's tokens do not exist for this administrator.
    assert_problem(
        await admin.post("/scim-tokens", json={"name": "x", "organisation": other}),
        404,
        "unknown-organisation",
    )
    r = await world.system.get("/scim-tokens", params={"organisation": other})
    assert r.json() == {"tokens": []}
    reader = await world.client("general-reader", role=Role.READ_ONLY, organisation=general)
    assert (await reader.get("/scim-tokens")).status_code == 200
    assert (await reader.post("/scim-tokens", json={"name": "y"})).status_code == 403
    r = await admin.delete("/scim-tokens/entra-id")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert_problem(await admin.delete("/scim-tokens/nope"), 404, "unknown-token")
    (entry, *_) = await world.audit("scim.token.revoke")
    assert entry.event.actor == "api:general-admin" and entry.event.remote_ip == CLIENT_IP
    assert token not in str(entry.event.details)
