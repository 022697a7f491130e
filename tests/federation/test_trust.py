"""Trusted domains (federation/trust.py) on the real store: the cache the streams read, its
refresh from another node's changes, the audit trail of each change, and the refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_federation import federation_admin
from carewire.clock import FakeClock
from carewire.core.federation import DomainStatus, FederationPolicy
from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.security.audit import Channel, Outcome
from carewire.security.cert_manager import Caller
from carewire.security.certificates import CertificateError
from tests.federation.peers import LOCAL, PEER, peer, sha256
from tests.security.pki import NOW
from tests.templates import prefill

BY = Caller(actor="console:alice", channel=Channel.CONSOLE, remote_ip="192.0.2.9")


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Assembly]:
    url = await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    opened = await assemble(Options(url=url, domain=LOCAL, clock=FakeClock(NOW)))
    try:
        yield opened
    finally:
        await opened.close()


async def _actions(platform: Assembly) -> list[tuple[str, str, str, str]]:
    entries, _ = await platform.audit.store.entries(limit=100)
    return [
        (e.event.action, e.event.target, e.event.outcome.value, e.event.actor)
        for e in reversed(entries)
        if e.event.action.startswith("federation.")
    ]


async def test_open_by_default_then_allow_list_and_switch(platform: Assembly) -> None:
    trust = platform.federation.trust
    changes: list[FederationPolicy] = []
    trust.on_change(lambda: changes.append(trust.policy()))
    assert trust.policy() == FederationPolicy()
    assert trust.policy().permits("anyone.example")
    assert await trust.allow(" B.Example. ", by=BY) == (PEER, True)
    assert await trust.allow(PEER, by=BY) == (PEER, False)  # nothing changes, nothing recorded
    assert trust.policy().allow == {PEER} and not trust.policy().permits("c.example")
    record = await trust.set_policy(certificates_only=True, by=BY)
    assert record.certificates_only and [a.domain for a in record.allow] == [PEER]
    assert record.allow[0].added_by == "console:alice"
    assert changes == [
        FederationPolicy(allow=frozenset({PEER})),
        FederationPolicy(allow=frozenset({PEER}), certificates_only=True),
    ]
    await trust.set_policy(certificates_only=True, allow=["c.example", "D.example"], by=BY)
    assert trust.policy().allow == {"c.example", "d.example"}
    assert await trust.disallow("c.example", by=BY) == "c.example"
    with pytest.raises(ConflictError) as last:
        await trust.disallow("d.example", by=BY)
    assert last.value.code == "last-allowed-domain" and "open to every domain" in last.value.message
    with pytest.raises(NotFoundError) as unknown:
        await trust.disallow("x.example", by=BY)
    assert unknown.value.code == "unknown-domain"
    with pytest.raises(ValidationError):
        await trust.set_policy(certificates_only=False, allow=["ok.example", "*.bad"], by=BY)
    assert trust.policy().allow == {"d.example"}  # nothing changed
    await trust.set_policy(certificates_only=False, allow=[], by=BY)
    assert trust.policy() == FederationPolicy()
    assert len(changes) == 5
    assert await _actions(platform) == [
        ("federation.allow", PEER, "success", "console:alice"),
        ("federation.policy", "federation", "success", "console:alice"),
        ("federation.policy", "federation", "success", "console:alice"),
        ("federation.disallow", "c.example", "success", "console:alice"),
        ("federation.policy", "federation", "success", "console:alice"),
    ]
    entries, _ = await platform.audit.store.entries(action="federation.policy", limit=1)
    assert entries[0].event.details == {
        "certificates_only": False,
        "was_certificates_only": True,
        "allow": [],
        "was_allow": ["d.example"],
    }
    assert entries[0].event.remote_ip == "192.0.2.9" and entries[0].event.channel is Channel.CONSOLE


async def test_pins_are_read_from_the_cache_until_they_expire(platform: Assembly) -> None:
    trust = platform.federation.trust
    cert = peer()
    outcome = await trust.pin("B.example", cert.cert_pem(), by=BY)
    assert outcome.pin.sha256 == sha256(cert) and outcome.warnings == ()
    assert outcome.pin.domain == PEER and outcome.pin.uploaded_by == "console:alice"
    assert trust.pinned(PEER) == {sha256(cert)} == trust.pinned("B.EXAMPLE.")
    assert trust.pinned("c.example") == frozenset() == trust.pinned("not a domain")
    with pytest.raises(ConflictError) as again:
        await trust.pin(PEER, cert.cert_pem(), by=BY)
    assert again.value.code == "certificate-exists"
    soon = peer(days=5)
    await trust.pin(PEER, soon.cert_pem(), by=BY)
    assert trust.pinned(PEER) == {sha256(cert), sha256(soon)}
    assert isinstance(platform.clock, FakeClock)
    platform.clock.advance(timedelta(days=6).total_seconds())
    assert trust.pinned(PEER) == {sha256(cert)}  # the expired one no longer authenticates
    assert {p.sha256 for p in await trust.certificates(PEER)} == {sha256(cert), sha256(soon)}
    removed = await trust.unpin(PEER, bytes.fromhex(sha256(soon)).hex(":").upper(), by=BY)
    assert removed.sha256 == sha256(soon)
    with pytest.raises(NotFoundError) as gone:
        await trust.unpin(PEER, sha256(soon), by=BY)
    assert gone.value.code == "unknown-certificate"
    with pytest.raises(CertificateError) as bad:
        await trust.unpin(PEER, "nope", by=BY)
    assert bad.value.code == "invalid-fingerprint"
    with pytest.raises(CertificateError):
        await trust.pin(PEER, cert.cert_pem() + cert.key_pem(), by=BY)
    with pytest.raises(ValidationError):
        await trust.pin(LOCAL, cert.cert_pem(), by=BY)
    actions = await _actions(platform)
    assert actions == [
        ("federation.pin", PEER, "success", "console:alice"),
        ("federation.pin", PEER, "success", "console:alice"),
        ("federation.unpin", PEER, "success", "console:alice"),
        ("federation.pin", PEER, "failure", "console:alice"),
    ]
    entries, _ = await platform.audit.store.entries(action="federation.pin", limit=1)
    assert "private key" in str(entries[0].event.details["reason"])
    assert "BEGIN" not in str(entries[0].event.details)


async def test_a_pin_for_a_domain_off_the_allow_list_warns(platform: Assembly) -> None:
    trust = platform.federation.trust
    await trust.allow("c.example", by=BY)
    outcome = await trust.pin(PEER, peer().cert_pem(), by=BY)
    assert outcome.warnings == ("b.example is not on the allow-list: streams with it stay refused",)


async def test_another_node_sees_changes_on_refresh(platform: Assembly) -> None:
    other = await federation_admin(platform.db, platform.audit, platform.clock, domain=LOCAL)
    seen: list[int] = []
    other.trust.on_change(lambda: seen.append(other.trust.version))
    assert not await other.trust.refresh()
    await platform.federation.trust.allow(PEER, by=BY)
    await platform.federation.trust.pin(PEER, peer().cert_pem(), by=BY)
    assert other.trust.policy().permits("c.example") and other.trust.pinned(PEER) == frozenset()
    assert await other.trust.refresh()
    assert not other.trust.policy().permits("c.example")
    assert other.trust.pinned(PEER) == {sha256(peer())}
    assert seen == [2] and not await other.trust.refresh()


async def test_a_failing_subscriber_does_not_undo_the_change(platform: Assembly) -> None:
    trust = platform.federation.trust
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("a bug in a stream manager")

    trust.on_change(broken)
    trust.on_change(lambda: calls.append("next"))
    await trust.allow(PEER, by=BY)
    assert calls == ["broken", "next"] and trust.policy().allow == {PEER}


async def test_overview_joins_status_allow_list_and_pins(platform: Assembly) -> None:
    admin = platform.federation
    admin.status.node = "n1"
    admin.status.update(DomainStatus(domain="c.example", direction="out", connected=True))
    admin.status.update(
        DomainStatus(domain="c.example", direction="in", connected=False, node="n2")
    )
    await admin.trust.allow(PEER, by=BY)
    await admin.trust.pin("d.example", peer("d.example").cert_pem(), by=BY)
    overview = await admin.overview()
    assert [(d.domain, d.is_allowed, d.is_listed, d.pins, d.is_connected) for d in overview] == [
        (PEER, True, True, 0, False),
        ("c.example", False, False, 0, True),
        ("d.example", False, False, 1, False),
    ]
    assert [(s.status.direction, s.status.node) for s in overview[1].streams] == [
        ("in", "n2"),
        ("out", "n1"),
    ]
    assert outcome_outcomes(await _actions(platform)) == {Outcome.SUCCESS.value}


def outcome_outcomes(actions: list[tuple[str, str, str, str]]) -> set[str]:
    """The outcomes of the recorded actions."""
    return {a[2] for a in actions}
