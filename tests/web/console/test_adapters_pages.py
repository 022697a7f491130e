"""The adapter pages over HTTP: list, search, new, details, edit, rows, remove, roles."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.mail import OutboxMailer
from carewire.rules.model import Rule
from carewire.security.console_auth import Role
from carewire.web.console import ConsoleServices, create_console
from tests.web.console.conftest import CONFIG, GOOD, client_for, csrf_of, sign_in


@dataclass(slots=True, kw_only=True)
class Env:
    """The console on a full platform (adapters, datasets, rules), and a client."""

    platform: Assembly
    client: httpx.AsyncClient
    transport: httpx.ASGITransport

    async def as_user(self, name: str, role: Role = Role.SYSTEM_ADMIN) -> httpx.AsyncClient:
        """A new client signed in as a new user ``name``."""
        await self.platform.console.create_user(name, role, email=None, password=GOOD)
        client = client_for(self.transport)
        r = await sign_in(client, name)
        assert r.status_code == 303, r.text
        return client


def console_services(platform: Assembly, outbox: Path) -> ConsoleServices:
    """Every service the console's pages use, on ``platform`` (no certificates)."""
    return ConsoleServices(
        accounts=platform.console,
        audit=platform.audit,
        mailer=OutboxMailer(outbox, sender="carewire@carewire.test"),
        config=CONFIG,
        registry=platform.registry,
        datasets=platform.datasets,
        adapters=platform.adapters,
        rules=platform.rules,
        engine=platform.engine,
    )


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"))
    # XMPP, DataUpdate and the assignment manager, enabled
    await platform.ensure_default_adapters("h.example")
    await platform.adapters.create("DataUpdate", "Old updater", is_enabled=False)
    transport = httpx.ASGITransport(
        app=create_console(console_services(platform, tmp_path / "out"))
    )
    try:
        async with client_for(transport) as client:
            yield Env(platform=platform, client=client, transport=transport)
    finally:
        await platform.close()


async def admin(env: Env) -> httpx.AsyncClient:
    return await env.as_user("alice")


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str]
) -> httpx.Response:
    """Load ``page`` for its CSRF token and POST ``data`` to ``action``."""
    r = await client.get(page)
    assert r.status_code == 200, r.text
    return await client.post(action, data={**data, "csrf_token": csrf_of(r.text)})


def names_in(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a></th>', html)


async def test_list_filter_and_search(env: Env) -> None:
    client = await admin(env)
    r = await client.get("/adapters")
    assert r.status_code == 200
    # Filter Disabled is checked by default
    assert names_in(r.text) == ["Assignment Manager", "DataUpdate", "XMPP"]
    assert 'name="hide_disabled" value="1" checked' in r.text and "3 of 4" in r.text
    assert "<caption>Adapters</caption>" in r.text and 'href="/adapters/new"' in r.text
    r = await client.get("/adapters", params={"filter": "1"})  # the box unchecked
    assert names_in(r.text) == ["Assignment Manager", "DataUpdate", "Old updater", "XMPP"]
    assert "<caption>All Adapters</caption>" in r.text and "4 of 4" in r.text
    r = await client.get("/adapters", params={"filter": "1", "search": "dataupd"})
    assert names_in(r.text) == ["DataUpdate", "Old updater"]  # component names match too
    assert "Adapters Search Results" in r.text and "2 of 4" in r.text
    assert 'aria-label="Clear the search"' in r.text
    r = await client.get("/adapters", params={"search": "nothing"})
    assert "No adapters match." in r.text and "0 of 4" in r.text


async def test_create_a_data_update_adapter(env: Env) -> None:
    client = await admin(env)
    r = await client.get("/adapters/new")
    assert r.status_code == 200 and "Create a New Adapter" in r.text
    for text in ('<label for="component">', '<label for="reference_name">', 'for="enabled"'):
        assert text in r.text
    assert '<option value="XMPP"' in r.text and '<option value="DataUpdate"' in r.text
    data = {"component": "DataUpdate", "reference_name": "Updater 2", "enabled": "on"}
    r = await post_form(client, "/adapters/new", "/adapters/new", data)
    assert (r.status_code, r.headers["location"]) == (303, "/adapters/Updater%202?m=created")
    config = env.platform.adapters.get("Updater 2")
    assert config.component == "DataUpdate" and config.is_enabled
    r = await client.get(r.headers["location"])
    assert "The adapter has been created." in r.text and "Updater 2 Adapter" in r.text
    assert "XMPP Certificate Manager" not in r.text and "Health" in r.text
    entries, _ = await env.platform.audit.store.entries(action="adapter.create")
    assert [e.event.actor for e in entries] == ["console:alice"]


async def test_new_adapter_problems_are_listed(env: Env) -> None:
    client = await admin(env)
    data = {
        "component": "XMPP",
        "reference_name": "",
        "s.mobile_session_timeout": "Off",
        "ds.ACTORS": "__create__",
        "dsnew.ACTORS": "",
    }
    r = await post_form(client, "/adapters/new?component=XMPP", "/adapters/new", data)
    assert r.status_code == 400
    html = r.text
    assert "The information provided is either invalid or incomplete." in html
    for line in ("Required: Reference Name", "Required: Chat Domain", "Required: ACTORS"):
        assert f"<li>{line}" in html, line
    assert 'id="f-chat_domain" name="s.chat_domain" value="" required aria-invalid="true"' in html
    data = {"component": "Nope", "reference_name": "x"}
    r = await post_form(client, "/adapters/new", "/adapters/new", data)
    assert r.status_code == 400 and "Required: Component Name" in r.text


async def test_new_xmpp_adapter_datasets_and_singleton(env: Env) -> None:
    client = await admin(env)
    r = await client.get("/adapters/new", params={"component": "XMPP"})
    assert '<label for="ds-ACTORS">ACTORS</label>' in r.text
    assert r.text.count('<option value="__create__"') == 30  # one per required dataset
    for label in ("Chat Domain", "Mobile Session Timeout", "Custom Parameters", "Patient Details"):
        assert label in r.text
    data = {
        "component": "XMPP",
        "reference_name": "Second XMPP",
        "enabled": "on",
        "s.chat_domain": "b.example",
        "ds.ACTORS": "__create__",
        "dsnew.ACTORS": "ACTORS_B",
    }
    r = await post_form(client, "/adapters/new", "/adapters/new", data)
    assert r.status_code == 400 and "only one XMPP adapter can be enabled" in r.text
    del data["enabled"]
    r = await post_form(client, "/adapters/new", "/adapters/new", data)
    assert r.status_code == 303, re.findall(r"<li>([^<]*?)</li>", r.text)
    assert env.platform.adapters.get("Second XMPP").required_datasets["ACTORS"] == "ACTORS_B"
    assert "ACTORS_B" in env.platform.registry


async def test_switching_kind_redraws_without_saving(env: Env) -> None:
    client = await admin(env)
    data = {"component": "XMPP", "reference_name": "Z", "_kind": "1"}
    r = await post_form(client, "/adapters/new", "/adapters/new", data)
    assert r.status_code == 200 and 'name="s.chat_domain"' in r.text
    assert 'value="Z"' in r.text and "Z" not in [
        a.reference_name for a in env.platform.adapters.list()
    ]


async def test_xmpp_details_link_to_the_certificate_manager(env: Env) -> None:
    client = await admin(env)
    r = await client.get("/adapters/XMPP")
    assert r.status_code == 200
    assert 'href="/certificates">XMPP Certificate Manager' in r.text
    assert "h.example" in r.text and 'href="/adapters/XMPP/edit"' in r.text
    assert 'href="/adapters/XMPP/remove"' in r.text
    assert (await client.get("/adapters/nobody")).status_code == 404


async def test_edit_rows_add_remove_and_save(env: Env) -> None:
    client = await admin(env)
    r = await client.get("/adapters/XMPP/edit")
    assert r.status_code == 200 and "Update Adapter" in r.text
    assert 'href="/adapters/XMPP/edit">Reset' in r.text and ">Deactivate<" in r.text
    base = {"reference_name": "XMPP", "enabled": "on", "s.chat_domain": "h.example"}
    base |= {f"s.{t}.rows": "0" for t in ("phone_number_transformations", "patient_details")}
    data = base | {"_row": "add:phone_number_transformations"}
    r = await post_form(client, "/adapters/XMPP/edit", "/adapters/XMPP/edit", data)
    assert r.status_code == 200
    assert 'name="s.phone_number_transformations.0.pattern"' in r.text
    assert 'aria-label="Remove row 1 of Phone Number Transformations"' in r.text
    rows = {
        "s.phone_number_transformations.rows": "2",
        "s.phone_number_transformations.0.pattern": "XXXX",
        "s.phone_number_transformations.0.mask": "+1555XXXX",
        "s.phone_number_transformations.0.active": "on",
        "s.phone_number_transformations.1.pattern": "",  # an empty row is dropped on Save
        "s.custom_parameters.rows": "1",
        "s.custom_parameters.0.parameter": "site.id",
        "s.custom_parameters.0.value": "2030",
    }
    data = base | rows | {"_row": "remove:phone_number_transformations:0"}
    r = await post_form(client, "/adapters/XMPP/edit", "/adapters/XMPP/edit", data)
    assert 'name="s.phone_number_transformations.0.pattern"' in r.text  # the empty row stays
    assert 'value="XXXX"' not in r.text and 'value="site.id"' in r.text
    data = base | rows | {"s.desktop_session_timeout": "1 hour"}
    r = await post_form(client, "/adapters/XMPP/edit", "/adapters/XMPP/edit", data)
    assert (r.status_code, r.headers["location"]) == (303, "/adapters/XMPP?m=saved")
    settings = env.platform.adapters.get("XMPP").settings
    assert settings["phone_number_transformations"] == [
        {"active": True, "pattern": "XXXX", "mask": "+1555XXXX"}
    ]
    assert settings["custom_parameters"] == [{"parameter": "site.id", "value": "2030"}]
    assert settings["desktop_session_timeout"] == "1 hour"
    r = await client.get("/adapters/XMPP/edit")
    assert 'value="+1555XXXX"' in r.text and '<option value="1 hour" selected>' in r.text


async def test_edit_problems_and_rename(env: Env) -> None:
    client = await admin(env)
    data = {"reference_name": "", "s.chat_domain": "", "s.patient_details.rows": "1"}
    data |= {"s.patient_details.0.label": "room"}  # no Attribute Path
    r = await post_form(client, "/adapters/XMPP/edit", "/adapters/XMPP/edit", data)
    assert r.status_code == 400
    assert (
        "<li>Required: Reference Name</li>" in r.text and "<li>Required: Chat Domain</li>" in r.text
    )
    assert "Patient Details: row 1: Required: Attribute Path" in r.text
    data = {"reference_name": "Renamed"}
    r = await post_form(client, "/adapters/DataUpdate/edit", "/adapters/DataUpdate/edit", data)
    assert r.headers["location"] == "/adapters/Renamed?m=saved"
    assert not env.platform.adapters.get("Renamed").is_enabled  # the box was left unchecked


async def test_deactivate_and_activate(env: Env) -> None:
    client = await admin(env)
    r = await post_form(client, "/adapters/DataUpdate/edit", "/adapters/DataUpdate/deactivate", {})
    assert (r.status_code, r.headers["location"]) == (303, "/adapters/DataUpdate/edit?m=disabled")
    assert not env.platform.adapters.get("DataUpdate").is_enabled
    r = await client.get(r.headers["location"])
    assert ">Activate<" in r.text and "deactivated" in r.text
    r = await post_form(client, "/adapters/DataUpdate/edit", "/adapters/DataUpdate/activate", {})
    assert env.platform.adapters.get("DataUpdate").is_enabled
    await env.platform.adapters.create("XMPP", "Spare", settings={"chat_domain": "s.example"})
    r = await post_form(client, "/adapters/Spare/edit", "/adapters/Spare/activate", {})
    assert r.status_code == 400 and "only one XMPP adapter can be enabled" in r.text


async def test_remove_with_confirmation(env: Env) -> None:
    client = await admin(env)
    r = await client.get("/adapters/Old%20updater/remove")
    assert r.status_code == 200 and "This cannot be undone" in r.text
    assert ">Ok</button>" in r.text and 'href="/adapters/Old%20updater">Cancel' in r.text
    r = await post_form(
        client, "/adapters/Old%20updater/remove", "/adapters/Old%20updater/remove", {}
    )
    assert (r.status_code, r.headers["location"]) == (303, "/adapters?m=removed")
    assert "Old updater" not in [a.reference_name for a in env.platform.adapters.list()]
    assert "The adapter has been removed." in (await client.get(r.headers["location"])).text


async def test_remove_refused_while_rules_use_it(env: Env) -> None:
    client = await admin(env)
    await env.platform.rules.create(
        Rule(
            name="Escalate",
            dataset="USERS",
            adapter="DataUpdate",
            action="Update Record",
            settings={"updates": "presence_status=Escalated"},
        )
    )
    r = await post_form(client, "/adapters/DataUpdate/remove", "/adapters/DataUpdate/remove", {})
    assert r.status_code == 409
    assert "1 rule(s) use the adapter &#39;DataUpdate&#39; (Escalate)" in r.text
    assert env.platform.adapters.get("DataUpdate")


async def test_auditor_sees_but_cannot_change(env: Env) -> None:
    client = await env.as_user("audrey", Role.AUDITOR)
    for path in ("/adapters", "/adapters/XMPP", "/adapters?filter=1&search=x"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert 'href="/adapters/new"' not in r.text and "/edit" not in r.text
    for path in ("/adapters/new", "/adapters/XMPP/edit", "/adapters/XMPP/remove"):
        assert (await client.get(path)).status_code == 403, path
    token = csrf_of((await client.get("/adapters")).text)  # the sign-out form's
    for path in ("/adapters/new", "/adapters/XMPP/edit", "/adapters/XMPP/deactivate"):
        r = await client.post(path, data={"csrf_token": token, "reference_name": "X"})
        assert r.status_code == 403, path
    r = await client.post("/adapters/XMPP/remove", data={"csrf_token": token})
    assert r.status_code == 403 and env.platform.adapters.get("XMPP").is_enabled


async def test_org_admin_may_change(env: Env) -> None:
    client = await env.as_user("olga", Role.ORG_ADMIN)
    r = await post_form(client, "/adapters/DataUpdate/edit", "/adapters/DataUpdate/deactivate", {})
    assert r.status_code == 303


async def test_posts_need_the_csrf_token(env: Env) -> None:
    client = await admin(env)
    for path in (
        "/adapters/new",
        "/adapters/XMPP/edit",
        "/adapters/XMPP/deactivate",
        "/adapters/XMPP/activate",
        "/adapters/DataUpdate/remove",
    ):
        r = await client.post(path, data={"reference_name": "X", "component": "DataUpdate"})
        assert r.status_code == 403 and "This form has expired" in r.text, path
    assert env.platform.adapters.get("DataUpdate").is_enabled


async def test_anonymous_is_sent_to_sign_in(env: Env) -> None:
    for path in ("/adapters", "/adapters/new", "/adapters/XMPP", "/adapters/XMPP/edit"):
        r = await env.client.get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/signin"), path


async def test_without_the_adapter_service_the_pages_are_absent(tmp_path: Path) -> None:
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"))
    try:
        svc = ConsoleServices(
            accounts=platform.console,
            audit=platform.audit,
            mailer=OutboxMailer(tmp_path),
            config=CONFIG,
        )
        transport = httpx.ASGITransport(app=create_console(svc))
        env = Env(platform=platform, client=client_for(transport), transport=transport)
        client = await admin(env)
        assert (await client.get("/adapters")).status_code == 404
    finally:
        await platform.close()


async def test_a_listening_hl7_adapter_shows_its_counters(env: Env) -> None:
    client = await admin(env)
    await env.platform.adapters.start()
    await env.platform.adapters.create("HL7 ADT", "ADT Feed", is_enabled=True, settings={"port": 0})
    for _ in range(200):
        if env.platform.adapters.health("ADT Feed").counters:
            break
        await asyncio.sleep(0.01)
    r = await client.get("/adapters/ADT%20Feed")
    assert r.status_code == 200
    assert "listening on 127.0.0.1:" in r.text
    assert "<dt>Acked ar</dt><dd>0</dd>" in r.text
    assert "<dt>Last message at</dt><dd>—</dd>" in r.text
