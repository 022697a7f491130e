"""``/organisations/{id}/ldap``: settings (secret write-only), status, Sync Users Now, reports."""

from __future__ import annotations

import pytest

from tests.identity.conftest import slapd, unit
from tests.ldapserver import BIND_DN, BIND_PW, Slapd
from tests.web.conftest import assert_problem
from tests.web.directory_world import World, db_url, world

__all__ = ["db_url", "slapd", "world"]
pytestmark = pytest.mark.slow


async def test_settings_sync_runs_and_report(world: World, slapd: Slapd) -> None:
    org = await world.hospital("General")
    admin = await world.client("general", organisation=org)
    base, uids = unit(slapd, 3)
    path = f"/organisations/{org}/ldap"
    assert_problem(await admin.get(path), 404, "not-found")
    body = {
        "url": slapd.url,
        "bind_dn": BIND_DN,
        "bind_secret": BIND_PW,
        "base_dn": base,
        "ca_file": str(slapd.ca_file),
    }
    problem = assert_problem(
        await admin.put(path, json={**body, "url": "http://x"}), 422, "invalid-field"
    )
    assert problem["field"] == "url"
    r = await admin.put(path, json=body)
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["has_secret"] is True and "bind_secret" not in saved
    assert BIND_PW not in r.text and BIND_PW not in (await admin.get(path)).text
    # Saving again without the secret keeps it.
    assert (await admin.put(path, json={**body, "bind_secret": None})).json()["has_secret"]
    r = await admin.post(f"{path}/sync", json={})
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["state"] == "done" and run["counts"]["created"] == 3
    status = (await admin.get(f"{path}/status")).json()
    assert status["is_connected"] and status["linked_users"] == 3
    assert status["last_run"]["id"] == run["id"]
    runs = (await admin.get(f"{path}/runs")).json()
    assert runs["total"] == 1 and runs["runs"][0]["id"] == run["id"]
    report = (await admin.get(f"{path}/runs/{run['id']}")).json()
    assert sorted(line["login"] for line in report["lines"]) == sorted(uids)
    assert {line["change"] for line in report["lines"]} == {"CREATED"}
    # Synced fields are read-only through the users resource too.
    r = await admin.patch(f"/users/{uids[0]}", json={"last_name": "Edited"})
    assert_problem(r, 403, "synced-field")
    entries = await world.audit("directory.ldap.settings.create")
    assert entries and BIND_PW not in str(entries[0].event.details)
    assert await world.audit("directory.ldap.sync")
    # Another organisation's token sees nothing of it.
    other = await world.hospital("Other")
    stranger = await world.client("other", organisation=other)
    assert_problem(await stranger.get(path), 404, "unknown-organisation")
    assert_problem(await stranger.post(f"{path}/sync", json={}), 404, "not-found")
