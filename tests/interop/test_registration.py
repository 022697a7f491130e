"""Onboarding end to end: the invitation mailed over SMTP, registration, an XMPP login.

A ``carewire serve`` subprocess sends mail to a real SMTP server (aiosmtpd on
127.0.0.1). A system administrator (made with ``carewire console user add``)
creates a hospital in the console over HTTPS; its first administrator's
invitation arrives over SMTP; the test follows the link, registers with a
password and a PIN, and a real XMPP client (slixmpp) logs in with that
password over TLS. The new administrator then signs in to the console with
their e-mail address and sees their organisation.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.interop.slix import connect
from tests.mailserver import SmtpServer, smtp_server, text_of
from tests.serverproc import RunningServer, init_data_dir, server_env, serving

__all__ = ["smtp_server"]

pytestmark = pytest.mark.interop

PASSWORD = "a long registration password"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


@pytest.fixture
def server(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[RunningServer]:
    """A server whose mail goes to ``smtp_server`` (plain SMTP on loopback)."""
    env = server_env()
    data_dir = tmp_path / "server"
    init_data_dir(data_dir, accounts=0, env=env)
    toml = data_dir / "carewire.toml"
    text = toml.read_text()
    text = text.replace('smtp_host = ""', 'smtp_host = "127.0.0.1"')
    text = text.replace("smtp_port = 587", f"smtp_port = {smtp_server.port}")
    text = text.replace("smtp_starttls = true", "smtp_starttls = false")
    toml.write_text(text)
    with serving(data_dir, accounts=0, env=env) as running:
        yield running


async def _wait_for_mail(smtp: SmtpServer, to: str, timeout: float = 20.0) -> str:
    """The text of the first message to ``to`` the SMTP server received."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for msg, (_sender, rcpts) in zip(smtp.inbox.messages, smtp.inbox.envelopes, strict=False):
            if to in rcpts:
                return text_of(msg)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no mail to {to} arrived; got {smtp.inbox.envelopes}")


async def _sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/signin")
    return await client.post(
        "/signin",
        data={"username": username, "password": password, "csrf_token": _csrf(page.text)},
    )


async def test_invited_administrator_registers_and_logs_in(
    server: RunningServer, smtp_server: SmtpServer
) -> None:
    made = server.cli("console", "user", "add", "root", "--role", "system-admin")
    assert made.returncode == 0, made.stderr
    (one_time,) = re.findall(r"one-time password\s+(\S+)", made.stdout)
    base = f"https://127.0.0.1:{server.ports['https']}"
    # The server's certificate is self-signed for its chat domain, not for 127.0.0.1.
    async with httpx.AsyncClient(base_url=base, verify=False, timeout=20) as console:
        r = await _sign_in(console, "root", one_time)
        assert r.status_code == 303 and r.headers["location"] == "/account/password"
        page = await console.get("/account/password")
        r = await console.post(
            "/account/password",
            data={
                "current": one_time,
                "password": PASSWORD,
                "confirm": PASSWORD,
                "csrf_token": _csrf(page.text),
            },
        )
        assert r.status_code == 303, r.text
        page = await console.get("/orgs/new")
        assert page.status_code == 200, page.text[:500]
        r = await console.post(
            "/orgs/new",
            data={
                "csrf_token": _csrf(page.text),
                "name": "Harbor General",
                "office_number": "(408) 882-5830",
                "default_time_zone": "America/Los_Angeles",
                "whole_org_messaging": "no",
                "non_user_messaging": "no",
                "high_priority_sound_seconds": "30",
                "message_expiration": "7d",
                "retention_value": "",
                "retention_unit": "years",
                "pin_length": "4",
                "admin_first_name": "Ada",
                "admin_last_name": "Lovelace",
                "admin_email": "ada@harbor.example",
            },
        )
        assert r.status_code == 303, r.text[:2000]
        hospital_path = r.headers["location"].split("?")[0]

    body = await _wait_for_mail(smtp_server, "ada@harbor.example")
    assert "Harbor General has invited you" in body and "administrator" in body
    found = re.search(r"https://\S+(/register/[A-Za-z0-9_-]+)", body)
    assert found, body
    link = found.group(1)

    async with httpx.AsyncClient(base_url=base, verify=False, timeout=20) as browser:
        form = await browser.get(link)
        assert form.status_code == 200 and "Harbor General" in form.text
        assert 'value="ada"' in form.text  # the login suggested from the address
        r = await browser.post(
            link,
            data={
                "csrf_token": _csrf(form.text),
                "login": "ada",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "cell_number": "(555) 669-2750",
                "time_zone": "America/Los_Angeles",
                "staff_type": "Physician",
                "password": PASSWORD,
                "password_confirm": PASSWORD,
                "pin": "5822",
                "pin_confirm": "5822",
            },
        )
        assert r.status_code == 200, r.text[:2000]
        assert "You are registered" in r.text and f"ada@{server.domain}" in r.text
        assert (await browser.get(link)).status_code == 410  # used up

    client = await connect(server, "ada", PASSWORD, direct_tls=True)
    try:
        assert str(client.jid.bare) == f"ada@{server.domain}"
        assert client.xmpp.is_connected()
    finally:
        await client.disconnect()

    async with httpx.AsyncClient(base_url=base, verify=False, timeout=20) as admin:
        r = await _sign_in(admin, "Ada@Harbor.example", PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/"
        r = await admin.get("/directory")
        assert r.headers["location"] == hospital_path
        page = await admin.get(hospital_path)
        assert "Update Organization" in page.text and "Lovelace, Ada" in page.text
