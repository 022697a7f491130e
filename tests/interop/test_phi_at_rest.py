"""PHI end to end: an ADT admit over MLLP, the care team over XMPP, the glass, nothing at rest.

A real server with the demo hospital: an HL7 ADT adapter is created through
the REST API and an A01 whose name and MRN hold markers is sent over MLLP.
The level-1 nurse of the patient's bed reads the patient's details over
XMPP (slixmpp, TLS); another user is refused, breaks the glass with a reason
(holding a marker too) and then reads. After the server stops, no marker is
in any file under the data directory. After a restart the patient is found
by MRN through the API, the audit trail holds the reads, the refusal and the
grant, and ``carewire audit break-glass`` lists the grant with its reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from hl7.client import MLLPClient
from slixmpp.exceptions import IqError

from tests.interop.slix import SlixClient
from tests.serverproc import (
    DEMO_ACCOUNTS,
    RunningServer,
    init_data_dir,
    server_env,
    serving,
)

pytestmark = pytest.mark.interop

Slix = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 15.0
NS_PATIENT = "urn:carewire:patient:0"
NURSE = "nurse.adams"  # level-1 nurse of ICU-101A in the demo hospital


def _a01(mrn: str, last: str, first: str) -> bytes:
    segments = [
        "MSH|^~\\&|ADMIT|GENERAL|CAREWIRE|CW|20260301080000||ADT^A01^ADT_A01|PHI-0001|P|2.5",
        "EVN|A01|20260301080000",
        f"PID|1||{mrn}^^^GENERAL^MR||{last}^{first}||19610615|F",
        "PV1|1|I|ICU^101^A^Carewire General||||||||||||||||V1|||||||||||||||||||||||||"
        "20260301075500",
    ]
    return ("\r".join(segments) + "\r").encode()


async def _api(server: RunningServer) -> httpx.AsyncClient:
    r = server.cli("token", "create", f"phi-{uuid.uuid4().hex[:8]}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,  # the chat domain's self-signed certificate
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    )


async def _adt_port(api: httpx.AsyncClient) -> int:
    body = {"component": "HL7 ADT", "reference_name": "ADT", "enabled": True}
    r = await api.post("/adapters", json={**body, "settings": {"port": 0}})
    assert r.status_code == 201, r.text
    for _ in range(100):
        note = str((await api.get("/adapters/ADT")).json().get("health", {}).get("note", ""))
        if note.startswith("listening on 127.0.0.1:"):
            return int(note.split(":")[1].split(",")[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"the ADT listener did not start: {note}")


async def _iq(client: SlixClient, kind: str, payload: str) -> ET.Element:
    xmpp: Any = client.xmpp  # slixmpp's stanza API is untyped
    iq = xmpp.make_iq_get() if kind == "get" else xmpp.make_iq_set()
    iq.xml.append(ET.fromstring(payload))
    reply = await iq.send(timeout=TIMEOUT)
    children: list[ET.Element] = list(reply.xml)
    assert len(children) == 1
    return children[0]


def _first_name(patient: ET.Element) -> str | None:
    got = {d.get("label"): d.text for d in patient.iterfind(f"{{{NS_PATIENT}}}detail")}
    return got.get("First Name")


async def test_adt_patient_sealed_care_team_and_break_glass(tmp_path: Path, slix: Slix) -> None:
    data_dir = tmp_path / "data"
    env = server_env()
    init_data_dir(data_dir, accounts=DEMO_ACCOUNTS, env=env, demo=True)
    tag = uuid.uuid4().hex.upper()[:12]
    mrn, last, first, why = f"MRNMK{tag}", f"LASTMK{tag}", f"FIRSTMK{tag}", f"WHYMK{tag}"
    password = (data_dir / "demo-password.txt").read_text().strip()

    with serving(data_dir, accounts=2, env=env) as server:
        async with await _api(server) as api:
            port = await _adt_port(api)

            def send() -> bytes:
                with MLLPClient("127.0.0.1", port) as client:
                    return bytes(client.send_message(_a01(mrn, last, first)))

            ack = await asyncio.to_thread(send)
            assert b"MSA|AA|PHI-0001" in ack, ack

        nurse = await slix(server, NURSE, password)
        patient = await _iq(nurse, "get", f"<patient xmlns='{NS_PATIENT}' mrn='{mrn}'/>")
        assert _first_name(patient) == first

        outsider = await slix(server, "user0", "pw-user0")
        ask = f"<patient xmlns='{NS_PATIENT}' mrn='{mrn}'/>"
        with pytest.raises(IqError) as refused:
            await _iq(outsider, "get", ask)
        assert refused.value.condition == "forbidden"
        glass = (
            f"<break-glass xmlns='{NS_PATIENT}' mrn='{mrn}'><reason>{why}</reason></break-glass>"
        )
        grant = await _iq(outsider, "set", glass)
        assert grant.get("grant") and grant.get("expires")
        assert _first_name(await _iq(outsider, "get", ask)) == first
        for c in (nurse, outsider):
            await c.disconnect()

    files = [p for p in data_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    found = [
        (str(p.relative_to(data_dir)), m)
        for p in files
        for m in (mrn, last, first, why)
        if m.encode() in p.read_bytes()
    ]
    assert found == [], f"PHI found at rest: {found}"
    assert len(files) >= 3

    with serving(data_dir, accounts=2, env=env) as server:
        async with await _api(server) as api:
            reply = await api.get("/datasets/PATIENTS/records", params={"filter": f"mrn:eq:{mrn}"})
            assert reply.status_code == 200, reply.text
            [rec] = reply.json()["records"]
            assert (rec["values"]["last_name"], rec["values"]["dob"]) == (last, "1961-06-15")
            assert rec["values"]["bed"] is not None
        listed = server.cli("audit", "list", "--action", "phi", "--limit", "20")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert any(f"xmpp:{NURSE}" in ln and "phi.read" in ln and "success" in ln for ln in lines)
        assert any("xmpp:user0" in ln and "phi.read" in ln and "failure" in ln for ln in lines)
        assert any("xmpp:user0" in ln and "phi.break-glass" in ln for ln in lines)
        assert any("api:phi-" in ln and "phi.read" in ln for ln in lines)  # the search above
        report = server.cli("audit", "break-glass")
        assert report.returncode == 0, report.stderr
        assert "user0" in report.stdout and why in report.stdout
