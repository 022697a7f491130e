"""The /coverage resource on a platform without a running server (the desk reads the database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from carewire.core.accounts import AccountInput
from carewire.core.stores import BusyKind, BusyPeriod
from carewire.web.api import create_api
from tests.web.conftest import Api, client, services_of


async def test_status_lists_held_messages_without_bodies_and_release_is_requested(
    api: Api,
) -> None:
    p = api.platform
    await p.accounts.create(AccountInput(login="ann", password="secret"))
    until = api.clock.now() + timedelta(minutes=30)
    await p.stores.busy.put(
        [BusyPeriod(login="ann", kind=BusyKind.DND, until=until, note="procedure")]
    )
    stanza = "<message xmlns='jabber:client' from='bob@example.test/x'><body>PHI</body></message>"
    await p.stores.held.hold("ann", stanza, stamp=api.clock.now(), reason="dnd")
    app = create_api(replace(services_of(p), coverage=p.coverage, audit=p.audit))
    async with client(app, api.admin_token) as admin:
        r = await admin.get("/coverage/ann")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["busy"], body["reason"], body["note"], body["held_count"]) == (
            True,
            "dnd",
            "procedure",
            1,
        )
        assert body["held"][0]["sender"] == "bob@example.test"
        assert "PHI" not in r.text
        r = await admin.post("/coverage/ann/release")
        assert r.status_code == 200, r.text
        assert "requested" in r.json()["result"]
        assert (await admin.get("/coverage/nobody")).status_code == 404
    assert {b.kind for b in await p.stores.busy.of("ann")} == {BusyKind.RELEASE, BusyKind.DND}


async def test_without_the_desk_the_resource_is_unavailable(api: Api) -> None:
    assert (await api.admin.get("/coverage/ann")).status_code == 503
