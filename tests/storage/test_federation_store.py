"""Federation's stores (storage/federation.py) on SQLite and PostgreSQL: policy, allow-list,
pins, the change counter every write increments, and the status rows written behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carewire.core.federation import DomainStatus
from carewire.errors import ConflictError
from carewire.federation.model import PinnedCertificate
from carewire.storage import Database
from carewire.storage.federation import SqlStatusStore, SqlTrustStore
from tests.storage.conftest import db, db_url, opened

__all__ = ["db", "db_url", "opened"]

AT = datetime(2026, 1, 2, tzinfo=UTC)


def _pin(domain: str, sha: str) -> PinnedCertificate:
    return PinnedCertificate(
        domain=domain,
        sha256=sha,
        pem="-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n",
        subject=f"CN={domain}",
        not_after=AT + timedelta(days=90),
        uploaded_by="cli:root",
        uploaded_at=AT,
    )


async def test_policy_allow_list_and_version(db: Database) -> None:
    store = SqlTrustStore(db)
    assert await store.version() == 0
    fresh = await store.snapshot()
    assert (fresh.version, fresh.certificates_only, fresh.allow, fresh.pins) == (
        0,
        False,
        frozenset(),
        {},
    )
    assert await store.add_allowed("b.example", by="cli:root", at=AT)
    assert not await store.add_allowed("b.example", by="cli:root", at=AT)  # no change
    assert await store.version() == 1
    await store.set_policy(certificates_only=True, allow=None, by="api:t", at=AT)
    policy = await store.policy()
    assert policy.certificates_only and policy.version == 2 and policy.updated_by == "api:t"
    assert [a.domain for a in policy.allow] == ["b.example"]
    assert policy.allow[0].added_by == "cli:root" and policy.allow[0].added_at == AT
    await store.set_policy(
        certificates_only=False, allow=["c.example", "d.example"], by="api:t", at=AT
    )
    assert (await store.snapshot()).allow == {"c.example", "d.example"}
    assert await store.remove_allowed("x.example", keep_one=True, by="a", at=AT) is False
    assert await store.remove_allowed("c.example", keep_one=True, by="a", at=AT) is True
    # The last partner stays unless the caller says otherwise.
    assert await store.remove_allowed("d.example", keep_one=True, by="a", at=AT) is None
    assert (await store.snapshot()).allow == {"d.example"}
    assert await store.remove_allowed("d.example", keep_one=False, by="a", at=AT) is True
    snap = await store.snapshot()
    assert snap.allow == frozenset() and snap.version == await store.version() == 5


async def test_pins(db: Database) -> None:
    store = SqlTrustStore(db)
    await store.add_pin(_pin("b.example", "ab" * 32))
    await store.add_pin(_pin("b.example", "cd" * 32))
    await store.add_pin(_pin("c.example", "ab" * 32))  # the same certificate, another domain
    with pytest.raises(ConflictError) as caught:
        await store.add_pin(_pin("b.example", "ab" * 32))
    assert caught.value.code == "certificate-exists"
    snap = await store.snapshot()
    assert snap.version == 3
    assert snap.pins == {
        "b.example": {"ab" * 32: AT + timedelta(days=90), "cd" * 32: AT + timedelta(days=90)},
        "c.example": {"ab" * 32: AT + timedelta(days=90)},
    }
    assert [p.sha256 for p in await store.pins("b.example")] == ["ab" * 32, "cd" * 32]
    assert len(await store.pins()) == 3
    assert await store.remove_pin("b.example", "ef" * 32, by="a", at=AT) is None
    removed = await store.remove_pin("b.example", "ab" * 32, by="a", at=AT)
    assert removed == _pin("b.example", "ab" * 32)
    assert [p.domain for p in await store.pins()] == ["b.example", "c.example"]
    assert await store.version() == 4


async def test_status_rows_upsert_per_domain_direction_and_node(db: Database) -> None:
    store = SqlStatusStore(db)
    await store.write([], AT)
    out = DomainStatus(
        domain="b.example",
        direction="out",
        connected=True,
        auth="certificate",
        tls_version="TLSv1.3",
        fingerprint="ab" * 32,
        certificate_not_after=AT + timedelta(days=30),
        since=AT,
        queued=2,
        stanzas_out=7,
        node="n1",
    )
    inbound = DomainStatus(domain="b.example", direction="in", connected=False, node="n1")
    await store.write([out, inbound], AT)
    failed = DomainStatus(
        domain="b.example",
        direction="out",
        connected=False,
        last_error="remote-server-timeout" + "x" * 2000,
        last_error_at=AT + timedelta(minutes=1),
        node="n1",
    )
    await store.write([failed], AT + timedelta(minutes=1))
    rows = await store.read()
    assert [(r.status.direction, r.status.connected) for r in rows] == [
        ("in", False),
        ("out", False),
    ]
    assert rows[1].status.last_error is not None and len(rows[1].status.last_error) == 1000
    assert rows[1].updated_at == AT + timedelta(minutes=1) and rows[1].status.auth is None
    await store.write([out], AT)
    assert (await store.read())[1].status == out
    assert await store.forget("b.example") == 2
    assert await store.read() == []
