"""The demo hospital: loaded into a running server's data, its staff log in and see each other."""

from __future__ import annotations

import re
from typing import Any

import pytest
from slixmpp import JID

from tests.interop.slix import SlixClient, connect
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


async def test_demo_staff_chat_and_see_each_other(server: RunningServer) -> None:
    """`carewire demo` accounts log in with a real client; rosters, presence and chat work."""
    r = server.cli("demo")
    assert r.returncode == 0, r.stderr
    password = re.search(r"password for all of them: (\S+)", r.stdout)
    assert password is not None
    nurse = await connect(server, "nurse.adams", password.group(1), resource="phone")
    doctor = await connect(server, "dr.chen", password.group(1), resource="desk")
    clients: list[SlixClient] = [nurse, doctor]
    try:
        roster = await nurse.xmpp.get_roster(timeout=10)
        assert roster is not None
        item = nurse.xmpp.client_roster[server.jid("dr.chen")]
        assert item["name"] == "Wei Chen, MD"
        assert item["groups"] == ["ICU"]
        assert item["subscription"] == "both"
        assert len(list(nurse.xmpp.client_roster)) == 3  # the other three ICU staff
        await doctor.xmpp.get_roster(timeout=10)
        doctor.xmpp.send_presence()
        nurse.xmpp.send_presence()

        def from_doctor(p: Any) -> bool:
            return str(p["from"].bare) == server.jid("dr.chen")

        await nurse.next_matching(nurse.presences, from_doctor)
        nurse.xmpp.send_message(
            mto=JID(server.jid("dr.chen")), mbody="Bed 4 BP 80/50", mtype="chat"
        )
        msg = await doctor.next(doctor.messages)
        assert msg["body"] == "Bed 4 BP 80/50"
    finally:
        for c in clients:
            await c.disconnect()
