"""The /presence resource without an XMPP server in the process (real-server tests: interop)."""

from __future__ import annotations

from tests.web.conftest import Api


async def test_without_an_xmpp_server_the_presence_resource_is_unavailable(api: Api) -> None:
    r = await api.admin.put("/presence/ana", json={"presence_type": "Available"})
    assert r.status_code == 503
    assert r.json()["type"] == "urn:carewire:problem:unavailable"
    assert "not running" in r.json()["detail"]


async def test_a_read_only_token_cannot_set_presence(api: Api) -> None:
    r = await api.reader.put("/presence/ana", json={"presence_type": "Available"})
    assert r.status_code == 403
