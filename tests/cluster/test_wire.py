"""Keys, envelopes and session entries of the cluster (no I/O), and the mirror of other nodes."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from carewire.assembly_cluster import cluster_service
from carewire.cluster.redis import describe
from carewire.cluster.registry import RemoteRegistry, entry_of
from carewire.cluster.wire import (
    Envelope,
    Event,
    EventKind,
    Keys,
    Kind,
    SessionEntry,
    WireError,
    decode_envelope,
    decode_event,
)
from carewire.config_cluster import ClusterSection
from carewire.core.sessions import Session, SessionManager, StanzaSink
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID

DOMAIN = "carewire.test"
PRESENCE = "<presence xmlns='jabber:client'><priority>5</priority></presence>"


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Element] = []

    def send_element(self, element: Element) -> None:
        self.sent.append(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        pass


def _registry() -> tuple[RemoteRegistry, dict[str, Recorder]]:
    sinks: dict[str, Recorder] = {}

    def make(node: str, jid: JID) -> StanzaSink:
        return sinks.setdefault(f"{node} {jid}", Recorder())

    return RemoteRegistry(DOMAIN, make), sinks


def test_keys_live_under_the_prefix() -> None:
    keys = Keys(prefix="cw:")
    assert keys.alive("n1") == "cw:node:n1:alive"
    assert keys.sessions("n1") == "cw:sessions:n1"
    assert keys.channel("n1") == "cw:node:n1"
    assert (keys.nodes, keys.rooms, keys.events) == ("cw:nodes", "cw:rooms", "cw:events")


def test_envelopes_and_events_round_trip_with_line_breaks_in_the_body() -> None:
    body = "<message xmlns='jabber:client'><body>two\nlines</body></message>"
    env = Envelope(kind=Kind.ROUTE, sender="a@d/r", to="room@chat.d", body=body)
    assert decode_envelope(env.encode().encode()) == env
    event = Event(kind=EventKind.UP, node="n1", jid="a@d/r", body='{"p": 1}')
    assert decode_event(event.encode()) == event


@pytest.mark.parametrize("data", [b"", b"D\nonly", b"Q\na\nb\nc", b"Z\n\n\n"])
def test_a_malformed_channel_message_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(WireError):
        decode_envelope(data)
    with pytest.raises(WireError):
        decode_event(data)


def test_session_entries_round_trip_and_reject_bad_values() -> None:
    entry = SessionEntry(priority=-3, presence=PRESENCE, carbons=True, interested=True)
    assert SessionEntry.decode(entry.encode()) == entry
    for bad in ("not json", "[]", '{"p": "high", "x": null, "c": false}', '{"p": 1}'):
        with pytest.raises(WireError):
            SessionEntry.decode(bad)


def test_the_mirror_answers_routing_questions_with_stand_ins() -> None:
    registry, sinks = _registry()
    body = SessionEntry(priority=5, presence=PRESENCE, carbons=True).encode()
    stand_in = registry.up("n2", "bob@carewire.test/desk", body)
    assert stand_in is not None and stand_in.node == "n2" and stand_in.is_available
    assert stand_in.data == {"carbons": True} and stand_in.priority == 5
    manager = SessionManager()
    manager.remote = registry
    assert manager.top_priority("bob") == [stand_in]
    assert manager.is_online("bob") and len(manager) == 0  # counting stays local
    assert manager.get(JID.parse("bob@carewire.test/desk")) is stand_in
    assert manager.local(JID.parse("bob@carewire.test/desk")) is None
    stand_in.send(Element("x"))
    assert len(sinks["n2 bob@carewire.test/desk"].sent) == 1
    # another domain's same-named user never matches
    assert registry.get(JID.parse("bob@elsewhere.example/desk")) is None
    registry.down("n2", "bob@carewire.test/desk")
    assert manager.of_user("bob") == [] and stand_in.is_closed


def test_a_node_that_is_gone_takes_its_sessions_along() -> None:
    registry, _ = _registry()
    registry.up("n2", "bob@carewire.test/a", SessionEntry().encode())
    registry.up("n3", "bob@carewire.test/b", SessionEntry().encode())
    assert registry.forget("n2") == [JID.parse("bob@carewire.test/a")]
    assert [s.node for s in registry.of_user("bob")] == ["n3"]
    registry.replace("n3", {"carol@carewire.test/c": SessionEntry().encode()})
    assert registry.of_user("bob") == [] and len(registry) == 1


def test_a_bad_entry_from_another_node_is_ignored() -> None:
    registry, _ = _registry()
    assert registry.up("n2", "not a jid@@", SessionEntry().encode()) is None
    assert registry.up("n2", "bob@carewire.test/x", "{garbage") is None
    bad_xml = SessionEntry(presence="<presence").encode()
    assert registry.up("n2", "bob@carewire.test/x", bad_xml) is None
    assert len(registry) == 0


def test_a_local_session_entry_says_what_routing_needs() -> None:
    session = Session(jid=JID.parse("a@carewire.test/r"), sink=Recorder(), priority=2)
    assert entry_of(session) == SessionEntry(priority=2)
    session.presence = Element("{jabber:client}presence")
    session.data["carbons"] = True
    session.is_interested = True
    entry = entry_of(session)
    assert entry.carbons and entry.interested and entry.presence is not None


def test_one_node_builds_no_cluster_and_passwords_stay_out_of_logs() -> None:
    assert cluster_service(ClusterSection(), kernel=None) is None  # type: ignore[arg-type]
    assert describe("redis://u:secret@h:6379/0") == "redis://u:***@h:6379/0"
    assert describe("redis://h:6379/0") == "redis://h:6379/0"
