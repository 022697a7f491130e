"""The datasets and records pages over HTTP: definitions, new attributes, search, edit, roles."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import SystemClock
from carewire.datasets.model import Attribute, AttrType
from carewire.mail import OutboxMailer
from carewire.security.console_auth import ConsoleAccounts, Role
from carewire.storage.console import SqlConsoleStore
from carewire.web.console import ConsoleServices, create_console
from tests.web.console.conftest import CHEAP, CONFIG, GOOD, client_for, csrf_of, sign_in


@dataclass(slots=True, kw_only=True)
class Full:
    """The console on a whole platform, with a way to sign people in."""

    platform: Assembly
    transport: httpx.ASGITransport
    stack: contextlib.AsyncExitStack

    async def user(self, name: str, role: Role = Role.SYSTEM_ADMIN) -> httpx.AsyncClient:
        """A signed-in browser of a new user with ``role``."""
        accounts = ConsoleAccounts(
            SqlConsoleStore(self.platform.db), SystemClock(), self.platform.audit, hasher=CHEAP
        )
        await accounts.create_user(name, role, password=GOOD)
        client = await self.stack.enter_async_context(client_for(self.transport))
        r = await sign_in(client, name)
        assert r.status_code == 303, r.text
        return client


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[Full]:
    """The console with datasets, rules, adapters and the engine on SQLite."""
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"))
    accounts = ConsoleAccounts(
        SqlConsoleStore(platform.db), SystemClock(), platform.audit, hasher=CHEAP
    )
    svc = ConsoleServices(
        accounts=accounts,
        audit=platform.audit,
        mailer=OutboxMailer(tmp_path / "outbox", sender="carewire@carewire.test"),
        config=CONFIG,
        registry=platform.registry,
        datasets=platform.datasets,
        adapters=platform.adapters,
        rules=platform.rules,
        engine=platform.engine,
    )
    transport = httpx.ASGITransport(app=create_console(svc))
    async with contextlib.AsyncExitStack() as stack:
        try:
            yield Full(platform=platform, transport=transport, stack=stack)
        finally:
            await platform.close()


async def post(
    client: httpx.AsyncClient, page: str, url: str, data: dict[str, str]
) -> httpx.Response:
    """Load ``page`` for its CSRF token and post ``data`` to ``url``."""
    token = csrf_of((await client.get(page)).text)
    return await client.post(url, data={**data, "csrf_token": token})


async def wards(full: Full, count: int = 0) -> None:
    """A WARDS dataset (code key, level, open, opened_on, checked_at) with ``count`` records."""
    await full.platform.registry.create_dataset(
        "WARDS",
        description="hospital wards",
        attributes=[
            Attribute(name="code", type=AttrType.STRING, is_key=True),
            Attribute(name="level", type=AttrType.INTEGER),
            Attribute(name="is_open", type=AttrType.BOOLEAN),
            Attribute(name="opened_on", type=AttrType.DATE),
            Attribute(name="checked_at", type=AttrType.DATETIME),
        ],
    )
    for i in range(1, count + 1):
        await full.platform.datasets.create("WARDS", {"code": f"W{i:02}", "level": i % 3})


async def test_datasets_list_and_detail(full: Full) -> None:
    admin = await full.user("admin")
    r = await admin.get("/datasets")
    assert r.status_code == 200
    assert 'href="/datasets/ROOMS"' in r.text and "DELIVERIES" in r.text
    r = await admin.get("/datasets/ROOMS")
    assert r.status_code == 200
    assert "room_number" in r.text and 'href="/datasets/FACILITIES"' in r.text
    assert "Add attribute" in r.text and '<label for="attr_name">' in r.text
    assert (await admin.get("/datasets/NOPE")).status_code == 404


async def test_add_attribute_and_its_refusals(full: Full) -> None:
    await wards(full, count=1)
    admin = await full.user("admin")
    form = {"attr_name": "floor", "attr_type": "Integer", "description": "the floor"}
    r = await post(admin, "/datasets/WARDS", "/datasets/WARDS/attributes", form)
    assert (r.status_code, r.headers["location"]) == (303, "/datasets/WARDS?m=added")
    attr = full.platform.registry.get("WARDS").attribute("floor")
    assert attr is not None and attr.type is AttrType.INTEGER and not attr.is_required
    required = {"attr_name": "ward_head", "attr_type": "String", "required": "on"}
    r = await post(admin, "/datasets/WARDS", "/datasets/WARDS/attributes", required)
    assert r.status_code == 400
    assert "cannot add a required attribute while WARDS has records" in r.text
    assert 'value="ward_head"' in r.text
    r = await post(
        admin, "/datasets/WARDS", "/datasets/WARDS/attributes", {**form, "attr_name": "Bad Name"}
    )
    assert r.status_code == 400 and 'role="alert"' in r.text
    entries, _ = await full.platform.audit.store.entries(action="dataset.update")
    assert [e.event.target for e in entries] == ["WARDS"]


async def test_records_search_sort_and_paging(full: Full) -> None:
    await wards(full, count=30)
    admin = await full.user("admin")
    r = await admin.get("/datasets/WARDS/records")
    assert r.status_code == 200 and "1–25 of 30" in r.text
    assert 'href="?offset=25&amp;limit=25"' in r.text and "Create record" in r.text
    r = await admin.get("/datasets/WARDS/records", params={"offset": "25"})
    assert "26–30 of 30" in r.text and ">W30<" not in r.text.split("W26")[0]
    r = await admin.get("/datasets/WARDS/records", params={"filter": "code:eq:W03"})
    assert "1–1 of 1" in r.text and "W03" in r.text and "W04" not in r.text
    params = {"field": "level", "op": "eq", "value": "0"}
    r = await admin.get("/datasets/WARDS/records", params=params)
    assert "1–10 of 10" in r.text
    r = await admin.get("/datasets/WARDS/records", params={"sort": "-code"})
    body = r.text
    assert body.index(">W30<") < body.index(">W29<")
    assert 'aria-sort="descending"' in body and 'href="?sort=code"' in body
    r = await admin.get("/datasets/WARDS/records", params={"filter": "code:like:x"})
    assert r.status_code == 400 and "unknown operator" in r.text
    r = await admin.get("/datasets/WARDS/records", params={"filter": "level:eq:many"})
    assert r.status_code == 400 and "is not a valid Integer" in r.text


async def test_record_create_edit_delete(full: Full) -> None:
    await wards(full)
    admin = await full.user("admin")
    r = await admin.get("/datasets/WARDS/records/new")
    assert r.status_code == 200
    for name, kind in (("level", "number"), ("is_open", "checkbox"), ("opened_on", "date")):
        assert f'<label for="f_{name}">' in r.text
        assert f'name="f_{name}" type="{kind}"' in r.text
    assert 'type="datetime-local"' in r.text and "UTC" in r.text
    values = {
        "f_code": "E1",
        "f_level": "2",
        "f_is_open": "on",
        "f_opened_on": "2026-01-31",
        "f_checked_at": "2026-02-01T08:30:00",
    }
    new = "/datasets/WARDS/records/new"
    r = await post(admin, new, "/datasets/WARDS/records", values)
    assert r.status_code == 303
    record_id = int(r.headers["location"].split("/")[-1].split("?")[0])
    rec = await full.platform.datasets.get("WARDS", record_id)
    assert rec.values["level"] == 2 and rec.values["is_open"] is True
    assert rec.values["checked_at"] == datetime(2026, 2, 1, 8, 30, tzinfo=UTC)
    page = f"/datasets/WARDS/records/{record_id}"
    r = await admin.get(page)
    assert 'value="2026-02-01T08:30:00"' in r.text and "checked" in r.text
    r = await post(admin, page, page, {**values, "f_level": "high"})
    assert r.status_code == 400 and "is not a valid Integer" in r.text
    assert 'aria-invalid="true"' in r.text
    r = await post(admin, new, "/datasets/WARDS/records", {**values, "f_code": ""})
    assert r.status_code == 400 and 'role="alert"' in r.text
    r = await post(admin, page, page, {**values, "f_level": "5", "f_is_open": ""})
    assert r.status_code == 303
    rec = await full.platform.datasets.get("WARDS", record_id)
    assert rec.values["level"] == 5 and rec.values["is_open"] is False
    confirm = await admin.get(f"{page}/delete")
    assert confirm.status_code == 200 and "Delete WARDS record" in confirm.text
    r = await post(admin, f"{page}/delete", f"{page}/delete", {})
    assert (r.status_code, r.headers["location"]) == (303, "/datasets/WARDS/records")
    assert (await admin.get(page)).status_code == 404


async def test_auditor_reads_only(full: Full) -> None:
    await wards(full, count=1)
    admin = await full.user("admin")
    auditor = await full.user("audrey", Role.AUDITOR)
    r = await auditor.get("/datasets/WARDS")
    assert r.status_code == 200 and "Add attribute" not in r.text
    r = await auditor.get("/datasets/WARDS/records/1")
    assert r.status_code == 200 and "<fieldset disabled>" in r.text and "Save record" not in r.text
    assert (await auditor.get("/datasets/WARDS/records/new")).status_code == 403
    token = csrf_of((await auditor.get("/datasets/WARDS/records")).text)
    for url in (
        "/datasets/WARDS/attributes",
        "/datasets/WARDS/records",
        "/datasets/WARDS/records/1/delete",
    ):
        r = await auditor.post(url, data={"csrf_token": token, "attr_name": "x"})
        assert r.status_code == 403, url
    r = await admin.post("/datasets/WARDS/records/1/delete", data={})
    assert r.status_code == 403 and "This form has expired" in r.text
    assert (await full.platform.datasets.get("WARDS", 1)).values["code"] == "W01"


async def test_anonymous_is_sent_to_sign_in(full: Full) -> None:
    async with client_for(full.transport) as anonymous:
        for path in ("/datasets", "/datasets/ROOMS", "/datasets/ROOMS/records"):
            r = await anonymous.get(path)
            assert (r.status_code, r.headers["location"]) == (303, "/signin"), path


# --- PHI --------------------------------------------------------------------------------------


async def test_phi_flag_on_the_dataset_page_and_audited_record_pages(full: Full) -> None:
    await wards(full, count=2)
    admin = await full.user("admin")
    r = await admin.get("/datasets/PATIENTS")
    assert "Unmark mrn as PHI" in r.text and "Mark sex as PHI" in r.text
    r = await post(admin, "/datasets/WARDS", "/datasets/WARDS/attributes/level/phi", {"phi": "on"})
    assert r.status_code == 303 and r.headers["location"] == "/datasets/WARDS?m=phi"
    level = full.platform.registry.get("WARDS").attribute("level")
    assert level is not None and level.is_phi
    # A range on it is now refused, with the reason on the page.
    r = await admin.get("/datasets/WARDS/records", params={"filter": "level:gt:0"})
    assert r.status_code == 400 and "is PHI, stored encrypted" in r.text
    r = await admin.get("/datasets/WARDS/records", params={"filter": "level:eq:1"})
    assert r.status_code == 200 and "W01" in r.text and "W02" not in r.text
    rec = await full.platform.datasets.create("WARDS", {"code": "W09", "level": 1})
    assert (await admin.get(f"/datasets/WARDS/records/{rec.id}")).status_code == 200
    r = await post(admin, "/datasets/PATIENTS", "/datasets/PATIENTS/attributes/mrn/phi", {})
    assert r.status_code == 400 and "built-in PHI attribute stays" in r.text

    entries, _ = await full.platform.audit.store.entries(action="phi.read", limit=10)
    assert [(e.event.actor, e.event.target) for e in entries] == [
        ("console:admin", f"WARDS/{rec.id}"),
        ("console:admin", "WARDS/1"),  # the one record the search found
    ]
    assert entries[1].event.details["ids"] == [1]
    changes, _ = await full.platform.audit.store.entries(action="dataset.update", limit=10)
    assert changes[0].event.details == {"attribute": "level", "phi": True}
    # Unmarking: the values are back in clear and ranges work again.
    r = await post(admin, "/datasets/WARDS", "/datasets/WARDS/attributes/level/phi", {})
    assert r.status_code == 303
    r = await admin.get("/datasets/WARDS/records", params={"filter": "level:gt:0"})
    assert r.status_code == 200 and "W09" in r.text


async def test_phi_flag_needs_a_writer(full: Full) -> None:
    await wards(full)
    viewer = await full.user("viewer", Role.AUDITOR)
    r = await viewer.get("/datasets/WARDS")
    assert "Mark level as PHI" not in r.text
    token = csrf_of((await viewer.get("/datasets/WARDS/records")).text)
    r = await viewer.post(
        "/datasets/WARDS/attributes/level/phi", data={"phi": "on", "csrf_token": token}
    )
    assert r.status_code == 403
    assert not full.platform.registry.get("WARDS").attribute("level").is_phi  # type: ignore[union-attr]
