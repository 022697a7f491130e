"""XEP-0363 slot requests to ``upload.DOMAIN`` (carewire.features.upload) on the in-process harness.

The HTTP side (PUT, GET and their errors over real TLS) is in
``tests/web/test_upload.py``; a real client's upload in ``tests/interop/test_upload.py``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.assembly import Options, assemble
from carewire.clock import FakeClock
from carewire.core import hook_names as H
from carewire.directory.model import (
    SYSTEM_CALLER,
    MessageExpiration,
    OrganisationUpdate,
    RetentionUnit,
)
from carewire.features.expiry import OrganisationLifetimes
from carewire.features.upload import NS
from carewire.uploads import UploadService, UploadSettings, UploadState
from carewire.uploads.service import token_hash
from carewire.xmpp import ns
from tests.features.directory_setup import Directory
from tests.features.harness import DOMAIN, Harness, error_condition
from tests.hashing import CHEAP_HASHER
from tests.templates import prefill

UPLOAD = f"upload.{DOMAIN}"
BASE = f"https://{DOMAIN}:8443"
FEW = ("c2s", "presence", "disco", "upload")
URL = re.compile(rf"^{re.escape(BASE)}/upload/([A-Za-z0-9_-]{{32}})/(.+)$")


async def upload_harness(
    tmp_path: Path, features: Sequence[str] = FEW, **settings: object
) -> Harness:
    """The assembly with file sharing on (1000-byte files, a 2500-byte quota unless given)."""
    upload = UploadSettings(
        directory=tmp_path / "uploads", max_file_size=1000, quota=2500, public_url=BASE
    )
    options = Options(
        url=await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"),
        domain=DOMAIN,
        clock=FakeClock(),
        secret_hasher=CHEAP_HASHER,
        upload=replace(upload, **settings),  # type: ignore[arg-type]
    )
    platform = await assemble(options)
    try:
        await platform.ensure_default_adapters(DOMAIN)
        platform.load_features(features)
        await platform.start(scheduler=False)
    except BaseException:
        await platform.close()
        raise
    await platform.kernel.hooks.fire(H.SERVER_STARTED, None)
    return Harness(platform.kernel, platform.db, platform)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await upload_harness(tmp_path)
    yield harness
    await harness.close()


def service(h: Harness) -> UploadService:
    return h.kernel.ctx.require(UploadService)


def slot_request(filename: str, size: int | str, content_type: str | None = "image/png") -> str:
    ctype = f" content-type='{content_type}'" if content_type is not None else ""
    return (
        f"<iq type='get' id='s1' to='{UPLOAD}'>"
        f"<request xmlns='{NS}' filename='{filename}' size='{size}'{ctype}/></iq>"
    )


def slot_urls(reply: Element) -> tuple[str, str]:
    assert reply.get("type") == "result", reply
    assert reply.get("from") == UPLOAD
    slot = reply.find(f"{{{NS}}}slot")
    assert slot is not None
    put, get = slot.find(f"{{{NS}}}put"), slot.find(f"{{{NS}}}get")
    assert put is not None and get is not None
    return put.get("url", ""), get.get("url", "")


def error_of(reply: Element) -> tuple[str | None, str | None, Element]:
    """The condition, the error type and the error element of an error reply."""
    assert reply.get("type") == "error", reply
    err = reply.find(f"{{{ns.CLIENT}}}error")
    assert err is not None
    return error_condition(reply), err.get("type"), err


async def test_server_lists_the_service_and_its_info_gives_the_size_limit(h: Harness) -> None:
    items = await h.ask(
        "alice", f"<iq type='get' id='i' to='{DOMAIN}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
    )
    assert UPLOAD in [i.get("jid") for i in items.iter(f"{{{ns.DISCO_ITEMS}}}item")]
    info = await h.ask(
        "alice", f"<iq type='get' id='i' to='{UPLOAD}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    identity = info.find(f".//{{{ns.DISCO_INFO}}}identity")
    assert identity is not None
    assert (identity.get("category"), identity.get("type")) == ("store", "file")
    features = {f.get("var") for f in info.iter(f"{{{ns.DISCO_INFO}}}feature")}
    assert NS in features
    fields = {
        f.get("var"): f.findtext(f"{{{ns.DATA_FORMS}}}value")
        for f in info.iter(f"{{{ns.DATA_FORMS}}}field")
    }
    assert fields == {"FORM_TYPE": NS, "max-file-size": "1000"}
    empty = await h.ask(
        "alice", f"<iq type='get' id='i' to='{UPLOAD}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
    )
    assert empty.get("type") == "result" and len(empty[0]) == 0


async def test_slot_gives_one_unguessable_url_kept_sealed(h: Harness) -> None:
    put, get = slot_urls(await h.ask("alice", slot_request("scan résumé.png", 600)))
    assert put == get
    m = URL.match(put)
    assert m is not None
    assert m.group(2) == "scan%20r%C3%A9sum%C3%A9.png"  # the name and its ending kept
    record = await service(h).store.by_token(token_hash(m.group(1)))
    assert record is not None and record.state is UploadState.SLOT
    assert (record.owner, record.size, record.content_type) == ("alice", 600, "image/png")
    assert record.filename.startswith("cw1:") and "scan" not in record.filename
    assert m.group(1) not in record.token_hash and record.file_id not in put
    assert record.slot_expires_at - record.created_at == timedelta(minutes=5)
    other, _ = slot_urls(await h.ask("alice", slot_request("scan résumé.png", 600)))
    assert other != put


async def test_too_large_is_not_acceptable_with_max_file_size(h: Harness) -> None:
    bob, bob_sink = await h.login("bob")
    reply = await h.ask("alice", slot_request("big.png", 1001))
    assert bob_sink.take() == [] and h.kernel.sessions.get(bob.jid) is bob  # bob untouched
    condition, kind, err = error_of(reply)
    assert (condition, kind) == ("not-acceptable", "modify")
    assert err.findtext(f"{{{NS}}}file-too-large/{{{NS}}}max-file-size") == "1000"
    assert err.findtext(f"{{{ns.STANZAS_ERR}}}text") == (
        "File too large. The maximum file size is 1000 bytes"
    )


async def test_over_quota_is_a_resource_constraint_and_other_users_are_untouched(
    h: Harness,
) -> None:
    for _ in range(2):
        slot_urls(await h.ask("alice", slot_request("a.png", 1000)))
    condition, kind, err = error_of(await h.ask("alice", slot_request("a.png", 501)))
    assert (condition, kind) == ("resource-constraint", "wait")
    assert "Quota reached: 2000 of 2500 bytes" in (err.findtext(f"{{{ns.STANZAS_ERR}}}text") or "")
    slot_urls(await h.ask("alice", slot_request("a.png", 500)))  # what fits still fits
    slot_urls(await h.ask("bob", slot_request("b.png", 1000)))  # another user's quota is his own
    # Slots never used stop counting once their grace period is over.
    h.clock.advance(timedelta(minutes=16).total_seconds())
    slot_urls(await h.ask("alice", slot_request("a.png", 1000)))


MALFORMED = [
    ("a.png", "", "image/png"),
    ("a.png", "-5", "image/png"),
    ("a.png", "ten", "image/png"),
    ("a.png", "0", "image/png"),
    ("a.png", "9" * 19, "image/png"),
    ("../etc/passwd", "10", "image/png"),
    ("a\\b", "10", "image/png"),
    ("", "10", "image/png"),
    ("x" * 256, "10", "image/png"),
    ("a.png", "10", "not a type"),
    ("a.png", "10", "text/html&#13;&#10;X-Evil: 1"),
]


async def test_malformed_requests_are_bad_requests(h: Harness) -> None:
    for filename, size, content_type in MALFORMED:
        reply = await h.ask("alice", slot_request(filename, size, content_type))
        condition, kind, _ = error_of(reply)
        assert (condition, kind) == ("bad-request", "modify"), (filename, size, content_type)


async def test_missing_filename_and_other_payloads(h: Harness) -> None:
    reply = await h.ask(
        "alice", f"<iq type='get' id='r' to='{UPLOAD}'><request xmlns='{NS}' size='5'/></iq>"
    )
    assert error_of(reply)[0] == "bad-request"
    reply = await h.ask(
        "alice",
        f"<iq type='set' id='r' to='{UPLOAD}'><request xmlns='{NS}' filename='a' size='5'/></iq>",
    )
    assert error_of(reply)[0] == "service-unavailable"
    reply = await h.ask(
        "alice",
        f"<iq type='get' id='r' to='someone@{UPLOAD}'><query xmlns='{ns.DISCO_INFO}'/></iq>",
    )
    assert error_of(reply)[0] == "service-unavailable"
    reply = await h.ask("alice", f"<message id='m' to='{UPLOAD}'><body>hi</body></message>")
    assert error_of(reply)[0] == "service-unavailable"


async def test_content_type_defaults_to_octet_stream(h: Harness) -> None:
    put, _ = slot_urls(await h.ask("alice", slot_request("notes", 10, None)))
    m = URL.match(put)
    assert m is not None
    record = await service(h).store.by_token(token_hash(m.group(1)))
    assert record is not None and record.content_type == "application/octet-stream"


async def test_without_an_https_listener_the_service_is_unavailable(h: Harness) -> None:
    service(h).base_url = None
    assert error_of(await h.ask("alice", slot_request("a.png", 10)))[0] == "service-unavailable"


async def test_file_sharing_off_means_no_service(tmp_path: Path) -> None:
    from tests.features.harness import make_harness

    plain = await make_harness(tmp_path, features=("c2s", "disco", "upload"))
    try:
        items = await plain.ask(
            "alice", f"<iq type='get' id='i' to='{DOMAIN}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
        )
        assert UPLOAD not in [i.get("jid") for i in items.iter(f"{{{ns.DISCO_ITEMS}}}item")]
        assert error_of(await plain.ask("alice", slot_request("a.png", 10)))[0] == (
            "service-unavailable"
        )
    finally:
        await plain.close()


async def test_files_live_as_long_as_the_organisations_message_expiration(tmp_path: Path) -> None:
    h = await upload_harness(
        tmp_path, features=("c2s", "presence", "disco", "tracking", "expiry", "upload")
    )
    try:
        d = Directory(h)
        org = await d.hospital("Abelard Medical Center")
        await d.user(org, "alice", "Alice", "Able")
        settings = replace(org.settings, message_expiration=MessageExpiration.MINUTES_30)
        await d.svc.organisations.update(
            SYSTEM_CALLER, org.id, OrganisationUpdate(settings=settings)
        )
        await h.kernel.ctx.require(OrganisationLifetimes).refresh()
        for login, lifetime in (("alice", timedelta(minutes=30)), ("zed", timedelta(days=7))):
            put, _ = slot_urls(await h.ask(login, slot_request("a.png", 10)))
            m = URL.match(put)
            assert m is not None
            record = await service(h).store.by_token(token_hash(m.group(1)))
            assert record is not None
            assert record.expires_at - record.created_at == lifetime
    finally:
        await h.close()


async def test_the_retention_purge_deletes_the_organisations_older_files(tmp_path: Path) -> None:
    h = await upload_harness(tmp_path)
    try:
        assert h.platform is not None
        d = Directory(h)
        org = await d.hospital("Abelard Medical Center")
        await d.user(org, "alice", "Alice", "Able")
        settings = replace(org.settings, retention_value=1, retention_unit=RetentionUnit.DAYS)
        await d.svc.organisations.update(
            SYSTEM_CALLER, org.id, OrganisationUpdate(settings=settings)
        )
        urls = {}
        for login in ("alice", "bob"):
            put, _ = slot_urls(await h.ask(login, slot_request("a.png", 10)))
            m = URL.match(put)
            assert m is not None
            urls[login] = m.group(1)
        h.clock.advance(timedelta(days=2).total_seconds())
        (plan,) = await h.platform.retention.dry_run()
        assert plan.files == 1
        (done,) = await h.platform.retention.run()
        assert done.files == 1
        assert await service(h).store.by_token(token_hash(urls["alice"])) is None
        assert await service(h).store.by_token(token_hash(urls["bob"])) is not None
        entries, _ = await h.platform.audit.store.entries(action="retention.purge")
        assert entries[0].event.details["files"] == 1
    finally:
        await h.close()
