"""Client settings, roster and patient IQs from slixmpp against a real server.

The adapter's settings are changed through the REST API while the server
runs, as an administrator would in the console, and the next settings IQ
must follow.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from slixmpp.exceptions import IqError

from tests.interop.helpers import own_server
from tests.interop.slix import TIMEOUT, SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

NS_SETTINGS = "urn:carewire:settings:0"
NS_ROSTER = "urn:carewire:roster:0"
NS_PATIENT = "urn:carewire:patient:0"
S = f"{{{NS_SETTINGS}}}"

Slix = Callable[..., Awaitable[SlixClient]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # Its own server: these tests change the XMPP adapter's settings.
    with own_server(tmp_path_factory, "client-settings", env={}, accounts=10) as s:
        yield s


@pytest.fixture
async def admin(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    r = server.cli("token", "create", f"settings-{uuid.uuid4().hex[:8]}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    base = f"https://127.0.0.1:{server.ports['https']}/api/v1"
    async with httpx.AsyncClient(
        base_url=base,
        verify=False,  # self-signed for the chat domain
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    ) as client:
        yield client


async def get(client: SlixClient, payload: str, to: str | None) -> ET.Element:
    """Send an IQ get with ``payload``; the payload of the result."""
    xmpp: Any = client.xmpp
    iq = xmpp.make_iq_get(ito=to)
    iq.xml.append(ET.fromstring(payload))
    reply = await iq.send(timeout=TIMEOUT)
    assert reply["type"] == "result"
    children: list[ET.Element] = list(reply.xml)
    assert len(children) == 1
    return children[0]


async def test_settings_iq_follows_the_adapter(
    server: RunningServer, admin: httpx.AsyncClient, slix: Slix
) -> None:
    login, password = server.account()
    client = await slix(server, login, password)
    settings = await get(client, f"<settings xmlns='{NS_SETTINGS}'/>", server.domain)
    assert settings.tag == f"{S}settings"
    assert settings.findtext(f"{S}offline-message-timeout") == str(7 * 86400)
    assert settings.find(f"{S}acknowledgements").get("enabled") == "true"  # type: ignore[union-attr]

    r = await admin.patch(
        "/adapters/XMPP",
        json={
            "settings": {
                "chat_domain": server.domain,
                "help_link": "https://help.example.test/",
                "desktop_session_timeout": "1 hour",
                "disable_acknowledgements": True,
                "phone_number_transformations": [{"pattern": "XXXX", "mask": "+1617555XXXX"}],
                "custom_parameters": [{"parameter": "site.id", "value": "2030"}],
            }
        },
    )
    assert r.status_code == 200, r.text
    settings = await get(client, f"<settings xmlns='{NS_SETTINGS}'/>", server.domain)
    assert settings.findtext(f"{S}help-link") == "https://help.example.test/"
    timeouts = {t.get("client"): t.text for t in settings.iterfind(f"{S}session-timeout")}
    assert timeouts == {"mobile": "off", "desktop": "3600"}
    assert settings.find(f"{S}acknowledgements").get("enabled") == "false"  # type: ignore[union-attr]
    phones = settings.findall(f"{S}phone-number-transformations/{S}transformation")
    assert [p.attrib for p in phones] == [{"pattern": "XXXX", "mask": "+1617555XXXX"}]
    params = settings.findall(f"{S}custom-parameters/{S}parameter")
    assert [p.attrib for p in params] == [{"name": "site.id", "value": "2030"}]

    info: Any = await client.plugin["xep_0030"].get_info(jid=server.domain, timeout=TIMEOUT)
    features = set(info["disco_info"]["features"])
    assert {NS_SETTINGS, NS_ROSTER, NS_PATIENT} <= features
    assert "urn:carewire:ack:0" not in features


async def test_roster_and_patient_iqs(
    server: RunningServer, admin: httpx.AsyncClient, slix: Slix
) -> None:
    for dataset, values in [
        ("FACILITIES", {"name": "General"}),
        ("UNITS", {"name": "Interop ICU", "facility": {"name": "General"}}),
        ("PATIENTS", {"mrn": "IOP-1", "first_name": "Jane", "sex": "F"}),
    ]:
        r = await admin.post(f"/datasets/{dataset}/records", json={"values": values})
        assert r.status_code == 201, r.text
    login, password = server.account()
    # Patient details answer the patient's care team: an active assignment for the patient.
    assignment = {
        "assignment_id": f"iop-{login}",
        "interface_id": "interop",
        "level": "1",
        "state": "active",
        "usr": {"login": login},
        "patient": {"mrn": "IOP-1"},
    }
    for dataset, values in [("USERS", {"login": login}), ("ASSIGNMENTS", assignment)]:
        r = await admin.put(f"/datasets/{dataset}/records", json={"values": values})
        assert r.status_code in (200, 201), r.text
    client = await slix(server, login, password)

    roster = await get(client, f"<roster xmlns='{NS_ROSTER}'/>", None)
    units = [u.get("name") for u in roster.iterfind(f"{{{NS_ROSTER}}}unit")]
    assert "Interop ICU" in units

    patient = await get(client, f"<patient xmlns='{NS_PATIENT}' mrn='IOP-1'/>", None)
    got = {d.get("label"): d.text for d in patient.iterfind(f"{{{NS_PATIENT}}}detail")}
    assert got["First Name"] == "Jane" and got["Sex"] == "F"
    assert "Last Name" in got and not got["Last Name"]  # present, empty

    with pytest.raises(IqError) as err:
        await get(client, f"<patient xmlns='{NS_PATIENT}' mrn='nobody'/>", None)
    assert err.value.condition == "item-not-found"
    with pytest.raises(IqError) as err:
        await get(client, f"<patient xmlns='{NS_PATIENT}'/>", None)
    assert err.value.condition == "bad-request"
