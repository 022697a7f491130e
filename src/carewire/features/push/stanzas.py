"""XEP-0357 and XEP-0050 stanzas of push: enable, disable, publish, registration commands.

Pure: elements in, dataclasses out, and back. A malformed request raises a
:class:`~carewire.xmpp.errors.StanzaError` naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from carewire.push.model import Notification, PushPriority
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.xml import make

PUSH: Final = "urn:xmpp:push:0"
SUMMARY: Final = "urn:xmpp:push:summary"
PUBLISH_OPTIONS: Final = "http://jabber.org/protocol/pubsub#publish-options"
PUBSUB: Final = "http://jabber.org/protocol/pubsub"
COMMANDS: Final = "http://jabber.org/protocol/commands"
ENABLE: Final = f"{{{PUSH}}}enable"
DISABLE: Final = f"{{{PUSH}}}disable"
NOTIFICATION: Final = f"{{{PUSH}}}notification"
COMMAND: Final = f"{{{COMMANDS}}}command"
X: Final = f"{{{ns.DATA_FORMS}}}x"
FIELD: Final = f"{{{ns.DATA_FORMS}}}field"
VALUE: Final = f"{{{ns.DATA_FORMS}}}value"
#: Summary fields of ours (XEP-0357 §7: other fields MAY be included). No sender, no body.
PRIORITY_FIELD: Final = "carewire-priority"
ID_FIELD: Final = "carewire-id"
#: The registration commands (XEP-0050 nodes) on push.DOMAIN.
REGISTER_PREFIX: Final = "register-push-"
UNREGISTER: Final = "unregister-push"


@dataclass(frozen=True, slots=True, kw_only=True)
class Enable:
    """An ``<enable/>`` request."""

    jid: JID
    node: str
    secret: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Disable:
    """A ``<disable/>`` request (``node`` None: every node at ``jid``)."""

    jid: JID
    node: str | None


def form_values(form: Element) -> dict[str, str]:
    """The first value of each field of a data form."""
    values: dict[str, str] = {}
    for field in form.iter(FIELD):
        var = field.get("var")
        value = field.find(VALUE)
        if var and var not in values:
            values[var] = (value.text or "") if value is not None else ""
    return values


def form(form_type: str | None, fields: dict[str, str], *, kind: str = "submit") -> Element:
    """A data form (``FORM_TYPE`` first, hidden, when given)."""
    x = make(X, {"type": kind})
    if form_type is not None:
        hidden = SubElement(x, FIELD, {"var": "FORM_TYPE", "type": "hidden"})
        SubElement(hidden, VALUE).text = form_type
    for var, value in fields.items():
        SubElement(SubElement(x, FIELD, {"var": var}), VALUE).text = value
    return x


def _jid(value: str | None, what: str) -> JID:
    if not value:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"{what}: the 'jid' attribute is required")
    try:
        return JID.parse(value)
    except InvalidJID:
        raise StanzaError(StanzaCondition.JID_MALFORMED, f"{what}: malformed 'jid'") from None


def parse_enable(el: Element) -> Enable:
    """XEP-0357 §5: "MUST contain a 'jid' attribute"; our app server also needs node and secret."""
    jid = _jid(el.get("jid"), "enable")
    node = el.get("node") or ""
    if not node:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "enable: the 'node' attribute is required")
    secret = ""
    for x in el.findall(X):
        values = form_values(x)
        if values.get("FORM_TYPE") == PUBLISH_OPTIONS:
            secret = values.get("secret", "")
    return Enable(jid=jid, node=node, secret=secret)


def parse_disable(el: Element) -> Disable:
    """XEP-0357 §6: "MUST include a 'jid' attribute"; 'node' is optional."""
    return Disable(jid=_jid(el.get("jid"), "disable"), node=el.get("node") or None)


def build_publish(node: str, secret: str, note: Notification) -> Element:
    """The pubsub payload of a XEP-0357 §7 publish: the summary, and the secret as options."""
    pubsub = make(f"{{{PUBSUB}}}pubsub")
    publish = SubElement(pubsub, f"{{{PUBSUB}}}publish", {"node": node})
    item = SubElement(publish, f"{{{PUBSUB}}}item")
    notification = SubElement(item, NOTIFICATION)
    notification.append(
        form(
            SUMMARY,
            {
                "message-count": str(note.count),
                PRIORITY_FIELD: note.priority.value,
                ID_FIELD: note.opaque_id,
            },
        )
    )
    options = SubElement(pubsub, f"{{{PUBSUB}}}publish-options")
    options.append(form(PUBLISH_OPTIONS, {"secret": secret}))
    return pubsub


def parse_publish(pubsub: Element) -> tuple[str, str, Notification]:
    """The node, secret and notification of a publish (the inverse of :func:`build_publish`)."""
    publish = pubsub.find(f"{{{PUBSUB}}}publish")
    node = "" if publish is None else publish.get("node", "")
    if publish is None or not node:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "publish: a node is required")
    notification = publish.find(f"{{{PUBSUB}}}item/{NOTIFICATION}")
    summary: dict[str, str] = {}
    if notification is not None:
        for x in notification.findall(X):
            values = form_values(x)
            if values.get("FORM_TYPE") == SUMMARY:
                summary = values
    secret = ""
    for x in pubsub.findall(f"{{{PUBSUB}}}publish-options/{X}"):
        values = form_values(x)
        if values.get("FORM_TYPE") == PUBLISH_OPTIONS:
            secret = values.get("secret", "")
    try:
        count = max(0, int(summary.get("message-count", "1")))
        priority = PushPriority(summary.get(PRIORITY_FIELD, PushPriority.NORMAL.value))
    except ValueError:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "publish: malformed summary") from None
    note = Notification(count=count, priority=priority, opaque_id=summary.get(ID_FIELD, "")[:64])
    return node, secret, note


def command_result(node: str, session_id: str, fields: dict[str, str]) -> Element:
    """A completed XEP-0050 command with a result form."""
    command = make(COMMAND, {"node": node, "sessionid": session_id, "status": "completed"})
    command.append(form(None, fields, kind="result"))
    return command


def command_form(node: str, session_id: str, service: str) -> Element:
    """The form a registration command asks the client to fill in (XEP-0050 §3.4)."""
    command = make(COMMAND, {"node": node, "sessionid": session_id, "status": "executing"})
    actions = SubElement(command, f"{{{COMMANDS}}}actions", {"execute": "complete"})
    SubElement(actions, f"{{{COMMANDS}}}complete")
    x = SubElement(command, X, {"type": "form"})
    SubElement(x, f"{{{ns.DATA_FORMS}}}title").text = f"Register a {service} device token"
    SubElement(x, FIELD, {"var": "token", "type": "text-single", "label": "Device token"}).append(
        make(f"{{{ns.DATA_FORMS}}}required")
    )
    if service == "apns":
        SubElement(x, FIELD, {"var": "app-id", "type": "text-single", "label": "App bundle id"})
    return command
