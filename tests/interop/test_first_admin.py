"""One administrator: the credentials `carewire init` prints work for chat and the console.

A real ``carewire init`` (its printed output is read like a person would) and
a real ``carewire serve``: an XMPP login over STARTTLS and a console sign-in
over HTTPS take the same credentials, and a password changed in the console
is the chat password from then on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.interop.rawclient import RawClient
from tests.serverproc import DOMAIN, RunningServer, cli, server_env, serving

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


@pytest.fixture
def printed(tmp_path: Path) -> Iterator[tuple[RunningServer, str, str]]:
    """A server on a fresh ``carewire init`` (not a cached copy), with what init printed."""
    data, env = tmp_path / "data", server_env()
    made = cli("init", "--data-dir", str(data), "--domain", DOMAIN, env=env)
    assert made.returncode == 0, made.stderr
    (admin,) = re.findall(r"^  administrator\s+(\S+)", made.stdout, re.MULTILINE)
    (password,) = re.findall(r"^  password\s+(\S+)", made.stdout, re.MULTILINE)
    with serving(data, accounts=0, env=env) as server:
        yield server, admin, password


async def xmpp_login(server: RunningServer, login: str, password: str) -> str:
    """The SASL answer to PLAIN with these credentials, over STARTTLS."""
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    try:
        await client.open_stream()
        await client.starttls()
        return await client.authenticate(login, password)
    finally:
        await client.aclose()


async def test_init_credentials_sign_in_to_chat_and_the_console(
    printed: tuple[RunningServer, str, str],
) -> None:
    server, admin, password = printed
    login = admin.split("@")[0]
    assert admin == f"admin@{DOMAIN}"
    assert (await xmpp_login(server, login, password)).startswith("<success")
    base = f"https://127.0.0.1:{server.ports['https']}"
    # The server's certificate is self-signed for its chat domain, not for 127.0.0.1.
    for name in (admin, login):  # the console takes the chat address or the name
        async with httpx.AsyncClient(base_url=base, verify=False, timeout=20) as console:
            page = await console.get("/signin")
            r = await console.post(
                "/signin",
                data={"username": name, "password": password, "csrf_token": csrf(page.text)},
            )
            assert r.status_code == 303 and r.headers["location"] == "/", r.text[:500]
            home = await console.get("/")
            assert home.status_code == 200 and "System administrator" in home.text

    # A new password chosen in the console is the chat password too.
    async with httpx.AsyncClient(base_url=base, verify=False, timeout=20) as console:
        page = await console.get("/signin")
        data = {"username": login, "password": password, "csrf_token": csrf(page.text)}
        assert (await console.post("/signin", data=data)).status_code == 303
        new = "one password for both, changed"
        page = await console.get("/account/password")
        r = await console.post(
            "/account/password",
            data={
                "current": password,
                "password": new,
                "confirm": new,
                "csrf_token": csrf(page.text),
            },
        )
        assert r.status_code == 303, r.text[:500]
    assert (await xmpp_login(server, login, new)).startswith("<success")
    assert (await xmpp_login(server, login, password)).startswith("<failure")
