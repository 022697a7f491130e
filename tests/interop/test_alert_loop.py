"""The whole alert loop, and coverage, with real clients on a real server with the demo hospital.

``carewire demo nurse-call`` raises a call from the command line; the server
alerts the bed's level-1 nurse, whose slixmpp client accepts with the
documented IQ; the call is updated and the backup escalation is cancelled.
A second call nobody answers reaches the level-2 nurse in the same room.

Coverage (docs/coverage.md) needs the demo's shifts, so it shares this
server: a message to an off-shift, offline physician is stored and its
sender told; a nurse's timed Do Not Disturb holds chat until she resumes.
Each test uses its own staff (Emergency), so the order does not matter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from slixmpp import JID
from slixmpp.xmlstream import ET

from tests.interop.helpers import log_tail
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

ALERT_NS = "urn:carewire:alert:0"
NURSE, BACKUP = "nurse.adams", "nurse.baker"  # level 1 and 2 of ICU-101A
BACKUP_RULE = "escalate-to-backup-nurse"
COVERAGE_NS = "urn:carewire:coverage:0"
# Emergency staff: the nurses hold active assignments (on shift), the physicians none.
ON_SHIFT_NURSE, OFF_SHIFT_DOCTOR = "nurse.evans", "dr.garcia"
DND_NURSE, DND_SENDER = "nurse.foster", "dr.hughes"


@pytest.fixture
def server(demo_server: RunningServer) -> RunningServer:
    """The demo hospital's server (shared with test_profanity.py, which uses other staff)."""
    return demo_server


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    r = server.cli("token", "create", f"loop-{time.monotonic_ns()}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    base = f"https://127.0.0.1:{server.ports['https']}/api/v1"
    async with httpx.AsyncClient(
        base_url=base,
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    ) as client:
        yield client


def _password(server: RunningServer) -> str:
    return (server.data_dir / "demo-password.txt").read_text().strip()


async def _backup_after(api: httpx.AsyncClient, seconds: int) -> None:
    """Shorten the demo's one-minute escalation so the test does not wait for it."""
    r = await api.get("/rules")
    [rule] = [x for x in r.json()["rules"] if x["name"] == BACKUP_RULE]
    rule["defer_seconds"] = seconds
    rule_id = rule.pop("id")
    r = await api.put(f"/rules/{rule_id}", json=rule)
    assert r.status_code == 200, r.text


def _alert_of(msg: Any) -> ET.Element | None:
    found: ET.Element | None = msg.xml.find(f"{{{ALERT_NS}}}alert")
    return found


async def _next_alert(client: SlixClient, timeout: float = 20) -> Any:
    return await client.next_matching(
        client.messages, lambda m: _alert_of(m) is not None, timeout=timeout
    )


async def _respond(client: SlixClient, server: RunningServer, alert_id: str, action: str) -> Any:
    iq = client.xmpp.Iq(stype="set", sto=server.domain)
    response = ET.Element(f"{{{ALERT_NS}}}response", {"alert": alert_id, "action": action})
    iq.append(response)
    return await iq.send(timeout=10)  # type: ignore[no-untyped-call]


async def _record(api: httpx.AsyncClient, call_prefix: str) -> dict[str, Any]:
    r = await api.get("/datasets/NURSE_CALLS/records", params={"limit": 100})
    assert r.status_code == 200, r.text
    found = [rec for rec in r.json()["records"] if rec["values"]["call_id"].startswith(call_prefix)]
    assert len(found) == 1, found
    return dict(found[0])


async def _delivery_status(api: httpx.AsyncClient, rule: str, count: int) -> list[str]:
    r = await api.get("/deliveries", params={"limit": 100})
    assert r.status_code == 200, r.text
    found = [d["values"] for d in r.json()["deliveries"] if d["values"].get("rule") == rule]
    return [str(v["status"]) for v in found][:count]


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def test_nurse_accepts_and_the_escalation_is_cancelled_then_an_unanswered_call_escalates(
    server: RunningServer,
    api: httpx.AsyncClient,
    slix: Callable[..., Awaitable[SlixClient]],
) -> None:
    # Longer than the scheduler's five-second look at firings the CLI hands over, so the
    # alert and its escalation are never due in the same pass.
    await _backup_after(api, 12)
    nurse = await slix(server, NURSE, _password(server))
    backup = await slix(server, BACKUP, _password(server))
    for client in (nurse, backup):
        client.xmpp.send_presence()  # available: alerts come at once, not from offline storage

    # 1. A call from the command line: the server's scheduler runs the alert rule.
    r = server.cli("demo", "nurse-call", "ICU-101A")
    assert r.returncode == 0, r.stderr
    msg = await _next_alert(nurse)
    alert = _alert_of(msg)
    assert alert is not None
    assert "Alice Moreau is calling from room 101, bed A." in msg["body"]
    room = str(msg["from"])
    assert room.endswith(f"@chat.{server.domain}")
    result = await _respond(nurse, server, alert.get("id", ""), "accept")
    assert result["type"] == "result"
    call = await _record(api, "ICU-101A")
    assert call["values"]["status"] == "Accepted", log_tail(server)
    assert call["values"]["responder"] == NURSE

    async def cancelled() -> bool:
        return await _delivery_status(api, BACKUP_RULE, 1) == ["Cancelled"]

    await _eventually(cancelled, timeout=45)
    assert backup.messages.empty() or all(
        _alert_of(m) is None
        for m in list(backup.messages._queue)  # type: ignore[attr-defined]
    )

    # 2. A call through the API that nobody answers: the backup is alerted in the same room.
    created = await api.post(
        "/datasets/NURSE_CALLS/records",
        json={
            "values": {
                "call_id": "second",
                "status": "Open",
                "bed": {
                    "bed_number": "A",
                    "room": {"room_number": "101", "facility": {"name": "Carewire General"}},
                },
            }
        },
    )
    assert created.status_code == 201, created.text
    first = await _next_alert(nurse)
    escalated = await _next_alert(backup, timeout=45)
    assert str(escalated["from"]) == str(first["from"])  # one room per call
    esc = _alert_of(escalated)
    assert esc is not None and esc.get("priority") == "urgent"
    result = await _respond(backup, server, esc.get("id", ""), "decline")
    assert result["type"] == "result"
    second = await _record(api, "second")
    assert second["values"]["status"] == "Declined"
    assert second["values"]["responder"] == BACKUP


# -- coverage ----------------------------------------------------------------------------------


def _notice_of(msg: Any) -> ET.Element | None:
    found: ET.Element | None = msg.xml.find(f"{{{COVERAGE_NS}}}notice")
    return found


async def _next_notice(client: SlixClient) -> ET.Element:
    msg = await client.next_matching(client.messages, lambda m: _notice_of(m) is not None)
    notice = _notice_of(msg)
    assert notice is not None
    return notice


def _chat(client: SlixClient, server: RunningServer, to: str, body: str, msg_id: str) -> None:
    msg = client.xmpp.make_message(mto=JID(server.jid(to)), mbody=body, mtype="chat")
    msg["id"] = msg_id
    msg.send()


async def _coverage_iq(client: SlixClient, kind: str, child: str, **attrs: str) -> Any:
    iq = client.xmpp.Iq(stype=kind)  # no 'to': the user's own account answers
    iq.append(ET.Element(f"{{{COVERAGE_NS}}}{child}", attrs))
    return await iq.send(timeout=10)  # type: ignore[no-untyped-call]


async def test_a_message_to_an_off_shift_offline_physician_is_stored_and_the_sender_told(
    server: RunningServer, slix: Callable[..., Awaitable[SlixClient]]
) -> None:
    nurse = await slix(server, ON_SHIFT_NURSE, _password(server), direct_tls=True)
    nurse.xmpp.send_presence()
    text = "Bed E1: lactate 4.2, please call"
    _chat(nurse, server, OFF_SHIFT_DOCTOR, text, "cov-1")
    msg = await nurse.next_matching(nurse.messages, lambda m: _notice_of(m) is not None)
    assert str(msg["from"]) == server.domain
    assert msg["body"] == (
        f"{OFF_SHIFT_DOCTOR} is off shift and offline on every device; "
        "your message is stored and reaches them when they connect."
    )
    notice = _notice_of(msg)
    assert notice is not None
    assert dict(notice.attrib) == {
        "jid": server.jid(OFF_SHIFT_DOCTOR),
        "id": "cov-1",
        "state": "stored",
        "reason": "off-shift-offline",
    }

    # Nothing lost: the physician's client gets the message when she logs in.
    doctor = await slix(server, OFF_SHIFT_DOCTOR, _password(server), resource="desk")
    doctor.xmpp.send_presence()
    got = await doctor.next_matching(doctor.messages, lambda m: bool(m["body"]))
    assert (got["body"], str(got["from"].bare)) == (text, server.jid(ON_SHIFT_NURSE))


async def test_a_timed_dnd_holds_chat_until_resume_then_it_arrives_in_order(
    server: RunningServer, slix: Callable[..., Awaitable[SlixClient]]
) -> None:
    nurse = await slix(server, DND_NURSE, _password(server), resource="phone")
    doctor = await slix(server, DND_SENDER, _password(server), direct_tls=True)
    for client in (nurse, doctor):
        client.xmpp.send_presence()
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    reply = await _coverage_iq(
        nurse, "set", "dnd", until=until.strftime("%Y-%m-%dT%H:%M:%SZ"), reason="central line"
    )
    assert reply["type"] == "result"

    texts = [f"Bed E3B: {n}" for n in ("first", "second", "third")]
    for n, text in enumerate(texts):
        _chat(doctor, server, DND_NURSE, text, f"dnd-{n}")
    notices = [await _next_notice(doctor) for _ in texts]
    assert [(x.get("id"), x.get("state"), x.get("reason")) for x in notices] == [
        (f"dnd-{n}", "held", "dnd") for n in range(len(texts))
    ]
    # The nurse's client got nothing; the round trip flushes whatever was on its way.
    status = (await _coverage_iq(nurse, "get", "status")).xml.find(f"{{{COVERAGE_NS}}}status")
    assert status is not None
    assert (status.get("busy"), status.get("reason"), status.get("held")) == ("true", "dnd", "3")
    assert [m["body"] for m in _drain(nurse.messages) if m["body"]] == []

    assert (await _coverage_iq(nurse, "set", "resume"))["type"] == "result"
    got = [await nurse.next_matching(nurse.messages, lambda m: bool(m["body"])) for _ in texts]
    assert [m["body"] for m in got] == texts
    assert {str(m["from"].bare) for m in got} == {server.jid(DND_SENDER)}


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out
