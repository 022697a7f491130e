"""The /push REST resource: attempts tracked like deliveries, registrations without tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from carewire.push.model import AttemptState, PushPriority
from carewire.push.records import AttemptChange, NewAttempt
from carewire.security.tokens import Role
from carewire.web.api import create_api
from tests.push.conftest import APNS_TOKEN, ProviderKeys, push_settings
from tests.push.pushserver import PushServer
from tests.push.test_feature import push_harness
from tests.web.conftest import client, services_of

QUEUED = AttemptChange(
    state=AttemptState.QUEUED,
    status=None,
    reason="",
    provider_id="",
    tries=0,
    at=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
)


async def test_attempts_and_registrations(
    tmp_path: Path, pushserver: PushServer, provider_keys: ProviderKeys
) -> None:
    h = await push_harness(tmp_path, push_settings(pushserver, provider_keys))
    try:
        p = h.platform
        assert p is not None and p.push is not None
        await h.account("nurse")
        reg, _ = await p.push.register("nurse", "phone", service="apns", token=APNS_TOKEN)
        rejected = AttemptChange(
            state=AttemptState.REJECTED,
            status=410,
            reason="Unregistered",
            provider_id="A-1",
            tries=1,
            at=h.clock.now(),
        )
        new = NewAttempt(
            registration=reg,
            login="nurse",
            device=reg.device,
            priority=PushPriority.URGENT,
            opaque_id="o1",
            change=QUEUED,
        )
        await p.push.store.save_attempts([new], [("o1", rejected)])
        _, token = await p.tokens.create("reader", Role.READ_ONLY)
        app = create_api(replace(services_of(p), push=p.push))
        async with client(app, token) as reader:
            r = await reader.get("/push/attempts", params={"login": "nurse", "state": "rejected"})
            assert r.status_code == 200, r.text
            (row,) = r.json()
            assert (
                row["state"],
                row["status"],
                row["reason"],
                row["provider_id"],
                row["tries"],
            ) == ("rejected", 410, "Unregistered", "A-1", 1)
            assert (
                await reader.get("/push/attempts", params={"state": "nonsense"})
            ).status_code == 422
            r = await reader.get("/push/registrations/nurse")
            assert r.status_code == 200
            assert r.json()[0]["device"] == "nurse/phone" and APNS_TOKEN not in r.text
            assert reg.node not in r.text
        async with client(create_api(services_of(p)), token) as without:
            assert (await without.get("/push/attempts")).status_code == 503
    finally:
        await h.close()
