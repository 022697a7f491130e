"""Copies of one stanza that share their children (a room's broadcast): written as a deep copy
would be, the inside written once, and any copy whose inside changed written in full."""

from __future__ import annotations

import copy
from xml.etree.ElementTree import Element, SubElement

import pytest

from carewire.xmpp import ns, xml
from carewire.xmpp.xml import SharedBody, SharedCopy, serialize

MESSAGE = f"{{{ns.CLIENT}}}message"


def _room_message() -> Element:
    msg = Element(MESSAGE, {"from": "ward@chat.example/Ann", "type": "groupchat", "id": "m1"})
    SubElement(msg, f"{{{ns.CLIENT}}}body").text = "Bed 4 <needs> a review & a 'chart'"
    sid = SubElement(msg, "{urn:xmpp:sid:0}stanza-id", {"by": "ward@chat.example", "id": "u-1"})
    sid.tail = None
    SubElement(msg, "{urn:xmpp:receipts}request")
    return msg


def _plain(msg: Element, to: str, parent_ns: str | None) -> str:
    """What the deep copy the room used to send would have written."""
    made = copy.deepcopy(msg)
    made.set("to", to)
    return serialize(made, parent_ns)


@pytest.mark.parametrize("parent_ns", [ns.CLIENT, None])
def test_every_copy_is_written_as_its_deep_copy_would_be(parent_ns: str | None) -> None:
    msg = _room_message()
    body = SharedBody(msg)
    for to in ("a@example/1", "b@example/phone", "c@example/x&y"):
        made = body.copy()
        made.set("to", to)
        assert type(made) is SharedCopy
        assert serialize(made, parent_ns) == _plain(msg, to, parent_ns)


def test_the_inside_is_written_once_for_all_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = _room_message()
    body = SharedBody(msg)
    calls: list[str] = []
    write = xml._write

    def counting(el: Element, *args: object) -> None:
        calls.append(el.tag)
        write(el, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(xml, "_write", counting)
    texts = []
    for n in range(50):
        made = body.copy()
        made.set("to", f"u{n}@example/r")
        texts.append(serialize(made))
    assert len(calls) == len(msg)  # the three children, once: never the copies themselves
    assert texts[7] == _plain(msg, "u7@example/r", ns.CLIENT)


def test_a_copy_given_another_child_is_written_in_full_and_the_others_are_not_touched() -> None:
    msg = _room_message()
    body = SharedBody(msg)
    first, second = body.copy(), body.copy()
    serialize(first)  # the shared inside is cached now
    SubElement(second, "{urn:xmpp:delay}delay", {"stamp": "2026-12-07T10:00:00Z"})
    written = serialize(second)
    assert written.endswith(
        '<delay xmlns="urn:xmpp:delay" stamp="2026-12-07T10:00:00Z"/></message>'
    )
    assert len(first) == len(msg) == 3
    assert serialize(first) == serialize(msg)


def test_a_copy_with_other_text_or_fewer_children_is_written_in_full() -> None:
    msg = _room_message()
    body = SharedBody(msg)
    serialize(body.copy())
    changed = body.copy()
    changed.text = "x"
    assert serialize(changed).startswith(
        '<message from="ward@chat.example/Ann" type="groupchat" id="m1">x<body>'
    )
    fewer = body.copy()
    fewer.remove(fewer[2])
    assert "urn:xmpp:receipts" not in serialize(fewer)


def test_a_namespaced_attribute_on_a_copy_still_gets_its_prefix() -> None:
    msg = _room_message()
    body = SharedBody(msg)
    made = body.copy()
    made.set("{urn:example:tag}mark", "1")
    assert serialize(made) == serialize(copy.deepcopy(made))
    written = serialize(made)
    assert written.startswith('<message xmlns:ns0="urn:example:tag" ')
    assert ' ns0:mark="1"><body>' in written


def test_copies_have_their_own_attributes_and_deep_copies_are_plain_elements() -> None:
    msg = _room_message()
    body = SharedBody(msg)
    a, b = body.copy(), body.copy()
    a.set("to", "a@example")
    assert b.get("to") is None and msg.get("to") is None
    deep = copy.deepcopy(a)
    assert type(deep) is Element and serialize(deep) == serialize(a)


def test_an_empty_stanza_is_written_as_an_empty_element() -> None:
    body = SharedBody(Element(MESSAGE, {"type": "groupchat"}))
    assert serialize(body.copy()) == '<message type="groupchat"/>'


def test_an_invalid_child_is_refused_for_every_copy() -> None:
    msg = _room_message()
    SubElement(msg, f"{{{ns.CLIENT}}}subject").text = "bad \x01 control"
    body = SharedBody(msg)
    for _ in range(2):
        with pytest.raises(ValueError):
            serialize(body.copy())


@pytest.mark.parametrize("parent_ns", [ns.CLIENT, None])
def test_the_start_tag_is_kept_once_and_each_copy_adds_its_own_to(parent_ns: str | None) -> None:
    msg = _room_message()
    body = SharedBody(msg)
    for to in ("a@example/1", 'q"uote@example/<r>'):
        made = body.copy()
        made.set("to", to)
        assert serialize(made, parent_ns) == _plain(msg, to, parent_ns)
    assert len(body.heads) == 1  # one start tag per opening (namespace declared or not)


def test_a_copy_whose_attributes_changed_is_not_written_with_the_kept_start_tag() -> None:
    msg = _room_message()
    body = SharedBody(msg)
    first = body.copy()
    first.set("to", "a@example/1")
    serialize(first)  # the start tag is kept now
    retyped = body.copy()
    retyped.set("type", "chat")  # changed in place: the same attribute names, in the same order
    retyped.set("to", "b@example/1")
    assert ' type="chat" ' in serialize(retyped)
    stamped = body.copy()
    stamped.set("to", "c@example/1")
    stamped.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")  # after 'to': written in full
    assert serialize(stamped) == serialize(copy.deepcopy(stamped))
    assert ' to="c@example/1" xml:lang="fr">' in serialize(stamped)


def test_a_stanza_with_to_of_its_own_keeps_it_replaced_in_place() -> None:
    msg = _room_message()
    msg.set("to", "ward@chat.example")
    body = SharedBody(msg)
    made = body.copy()
    made.set("to", "a@example/1")
    assert serialize(made) == _plain(msg, "a@example/1", ns.CLIENT)
    assert body.heads == {}  # not the case the kept start tag is for


def test_a_namespaced_attribute_on_the_stanza_is_never_kept_as_a_start_tag() -> None:
    msg = _room_message()
    msg.set("{urn:example:tag}mark", "1")
    body = SharedBody(msg)
    for to in ("a@example/1", "b@example/2"):
        made = body.copy()
        made.set("to", to)
        assert serialize(made) == _plain(msg, to, ns.CLIENT)
    assert set(body.heads.values()) == {""}
