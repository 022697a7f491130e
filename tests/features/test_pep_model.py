"""The pure parts of PEP: node configuration and its forms, publish-options, XEP-0115 hashes."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.features.pep.caps import CapsRef, caps_of, is_verified, notify_nodes
from carewire.features.pep.model import (
    AccessModel,
    Limits,
    NodeConfig,
    SendLast,
    apply_form,
    check_preconditions,
    config_form,
    form_values,
)
from carewire.features.pep.omemo import E2EMode, E2EPolicy, check, disco_form, is_omemo_node
from carewire.xmpp.errors import StanzaError
from carewire.xmpp.parser import parse_document

LIMITS = Limits(max_items=50)

configs = st.builds(
    NodeConfig,
    access_model=st.sampled_from(AccessModel),
    max_items=st.integers(1, LIMITS.max_items),
    persist_items=st.booleans(),
    send_last_published_item=st.sampled_from(SendLast),
    notify_retract=st.booleans(),
    notify_delete=st.booleans(),
    deliver_payloads=st.booleans(),
    title=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20),
    type=st.sampled_from(["", "urn:xmpp:avatar:metadata"]),
)


@given(configs)
def test_a_configuration_survives_json_and_its_form(config: NodeConfig) -> None:
    assert NodeConfig.from_json(config.to_json()) == config
    form = parse_document(_serialised(config_form(config)))
    values = {k: v for k, v in form_values(form).items() if k != "FORM_TYPE"}
    assert apply_form(values, NodeConfig(), LIMITS) == config
    check_preconditions(values, config, LIMITS)  # a node meets its own configuration


def _serialised(el: Element) -> str:
    from carewire.xmpp.xml import serialize

    return serialize(el, None)


def test_max_means_the_limit_and_preconditions_compare_values() -> None:
    config = apply_form({"pubsub#max_items": ["max"]}, NodeConfig(), LIMITS)
    assert config.max_items == LIMITS.max_items
    check_preconditions({"pubsub#max_items": ["max"]}, config, LIMITS)
    with pytest.raises(StanzaError) as err:
        check_preconditions({"pubsub#access_model": ["open"]}, config, LIMITS)
    assert err.value.condition.value == "conflict"
    assert err.value.app_condition is not None
    assert err.value.app_condition.tag.endswith("precondition-not-met")
    # A value the service does not support never meets a precondition.
    with pytest.raises(StanzaError):
        check_preconditions({"pubsub#access_model": ["roster"]}, config, LIMITS)


# -- XEP-0115 -------------------------------------------------------------------------


def _info(xml: str) -> Element:
    return parse_document(f"<query xmlns='http://jabber.org/protocol/disco#info'>{xml}</query>")


FEATURES = (
    "<feature var='http://jabber.org/protocol/caps'/>"
    "<feature var='http://jabber.org/protocol/disco#info'/>"
    "<feature var='http://jabber.org/protocol/disco#items'/>"
    "<feature var='http://jabber.org/protocol/muc'/>"
)


def test_xep_0115_simple_example() -> None:
    """XEP-0115 §5.2: the simple generation example."""
    info = _info(f"<identity category='client' name='Exodus 0.9.1' type='pc'/>{FEATURES}")
    ref = CapsRef(
        hash="sha-1", node="http://code.google.com/p/exodus", ver="QgayPKawpkPSDYmwT/WM94uAlu0="
    )
    assert is_verified(ref, info)
    assert not is_verified(CapsRef(hash="md5", node="n", ver=ref.ver), info)


def test_xep_0115_complex_example() -> None:
    """XEP-0115 §5.3: identities with languages, and an extended form."""
    info = _info(
        "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
        "<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>"
        f"{FEATURES}"
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'>"
        "<value>urn:xmpp:dataforms:softwareinfo</value></field>"
        "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>"
        "<field var='os'><value>Mac</value></field>"
        "<field var='os_version'><value>10.5.1</value></field>"
        "<field var='software'><value>Psi</value></field>"
        "<field var='software_version'><value>0.11</value></field></x>"
    )
    ref = CapsRef(hash="sha-1", node="http://psi-im.org", ver="q07IKJEyjvHSyhy//CH0CxmKi8w=")
    assert is_verified(ref, info)


def test_caps_and_notify_parsing() -> None:
    presence = parse_document(
        "<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' "
        "hash='sha-1' node='n' ver='v'/></presence>"
    )
    assert caps_of(presence) == CapsRef(hash="sha-1", node="n", ver="v")
    assert caps_of(parse_document("<presence xmlns='jabber:client'/>")) is None
    nodes = notify_nodes(frozenset({"a+notify", "b", "urn:xmpp:avatar:metadata+notify"}))
    assert nodes == {"a", "urn:xmpp:avatar:metadata"}


# -- OMEMO policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "is_omemo"),
    [
        ("eu.siacs.conversations.axolotl.devicelist", True),
        ("eu.siacs.conversations.axolotl.bundles:42", True),
        ("urn:xmpp:omemo:2:devices", True),
        ("urn:xmpp:omemo:2:bundles", True),
        ("urn:xmpp:avatar:metadata", False),
        ("eu.siacs.conversations.axolotl", False),
    ],
)
def test_omemo_nodes(node: str, is_omemo: bool) -> None:
    assert is_omemo_node(node) is is_omemo
    refused = E2EPolicy(mode=E2EMode.REFUSE, reason="no")
    if is_omemo:
        with pytest.raises(StanzaError) as err:
            check(refused, node)
        assert err.value.condition.value == "not-allowed" and err.value.text == "no"
    else:
        check(refused, node)
    check(E2EPolicy(mode=E2EMode.ALLOW), node)


def test_the_disco_form_hides_the_reason_when_allowed() -> None:
    form = disco_form(E2EPolicy(mode=E2EMode.ALLOW, reason="unused"))
    values = [v.text or "" for v in form.iter("{jabber:x:data}value")]
    assert values == ["urn:carewire:e2e:0", "allow", ""]
