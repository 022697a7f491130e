"""The session index: replacement, priorities and availability."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from carewire.core.sessions import Session, SessionManager
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID


class Sink:
    def __init__(self) -> None:
        self.sent: list[Element] = []

    def send_element(self, element: Element) -> None:
        self.sent.append(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        pass


def sess(resource: str, priority: int = 0, available: bool = True) -> Session:
    s = Session(jid=JID.parse(f"alice@example.test/{resource}"), sink=Sink(), priority=priority)
    if available:
        s.presence = Element("presence")
    return s


def test_add_replace_remove() -> None:
    m = SessionManager()
    a = sess("phone")
    assert m.add(a) is None and len(m) == 1
    b = sess("phone")
    assert m.add(b) is a and len(m) == 1
    assert not m.remove(a)  # the replaced session is no longer indexed
    assert m.get(JID.parse("alice@example.test/phone")) is b
    assert m.remove(b) and len(m) == 0 and not m.is_online("alice")


def test_priorities() -> None:
    m = SessionManager()
    low, high1, high2, neg = sess("a", 1), sess("b", 5), sess("c", 5), sess("d", -1)
    idle = sess("e", 9, available=False)
    for s in (low, high1, high2, neg, idle):
        m.add(s)
    assert set(m.top_priority("alice")) == {high1, high2}
    assert set(m.non_negative("alice")) == {low, high1, high2}
    assert len(m.available_of_user("alice")) == 4
    assert len(list(m)) == 5
    only_neg = SessionManager()
    only_neg.add(sess("x", -3))
    assert only_neg.top_priority("alice") == []


def test_closed_sessions_do_not_send() -> None:
    s = sess("a")
    s.is_closed = True
    s.send(Element("message"))
    assert s.sink.sent == []  # type: ignore[attr-defined]


def test_generated_resources_are_unique() -> None:
    assert len({SessionManager.generate_resource() for _ in range(100)}) == 100
