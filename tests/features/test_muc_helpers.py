"""Shared helpers of the multi-user chat tests (XEP-0045) on the feature harness."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from carewire.core.sessions import Session
from carewire.features.muc import MucService
from tests.features.harness import DOMAIN, Harness, RecordingSink, error_condition

CHAT = f"chat.{DOMAIN}"
MUC = "http://jabber.org/protocol/muc"
MUC_USER = f"{MUC}#user"
MUC_OWNER = f"{MUC}#owner"
MUC_ADMIN = f"{MUC}#admin"
C = "{jabber:client}"
XUSER = f"{{{MUC_USER}}}x"


def service(h: Harness) -> MucService:
    svc = h.kernel.ctx.require(MucService)
    assert svc is not None
    return svc


def codes(stanza: Element) -> set[int]:
    """The muc#user status codes of a stanza."""
    x = stanza.find(XUSER)
    return (
        set()
        if x is None
        else {int(s.get("code", "0")) for s in x.findall(f"{{{MUC_USER}}}status")}
    )


def item(stanza: Element) -> dict[str, str]:
    x = stanza.find(XUSER)
    assert x is not None
    found = x.find(f"{{{MUC_USER}}}item")
    assert found is not None
    return dict(found.attrib)


def presences(sent: list[Element]) -> list[Element]:
    return [s for s in sent if s.tag == f"{C}presence"]


def messages(sent: list[Element]) -> list[Element]:
    return [s for s in sent if s.tag == f"{C}message"]


def body(stanza: Element) -> str | None:
    return stanza.findtext(f"{C}body")


async def join(h: Harness, session: Session, room: str, nick: str, *, inner: str = "") -> None:
    await h.send(
        session, f"<presence to='{room}@{CHAT}/{nick}'><x xmlns='{MUC}'>{inner}</x></presence>"
    )


async def make_room(
    h: Harness, login: str, room: str, *, config: str = "", nick: str | None = None
) -> tuple[Session, RecordingSink]:
    """``login`` logs in, creates ``room`` and submits a form (instant room when empty)."""
    session, sink = await h.login(login)
    await join(h, session, room, nick or login)
    fields = (
        f"<field var='FORM_TYPE'><value>{MUC}#roomconfig</value></field>{config}" if config else ""
    )
    await h.send(
        session,
        f"<iq type='set' id='cfg' to='{room}@{CHAT}'><query xmlns='{MUC_OWNER}'>"
        f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>",
    )
    sent = sink.take()
    assert [error_condition(s) for s in sent if s.get("id") == "cfg"] == [None], sent
    return session, sink


def field(var: str, value: str) -> str:
    return f"<field var='{var}'><value>{value}</value></field>"
