"""The pubsub subset PEP needs (XEP-0060, XEP-0163, XEP-0223): names, node configuration, errors.

Pure functions and values: a node's configuration is a :class:`NodeConfig`,
stored as JSON, shown as a ``pubsub#node_config`` data form, changed by a
submitted form (configure) or checked against ``pubsub#publish-options``
preconditions (XEP-0060 §7.1.5). Errors carry the XEP-0060 application
conditions of ``http://jabber.org/protocol/pubsub#errors``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError

PUBSUB = "http://jabber.org/protocol/pubsub"
PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"

X = f"{{{ns.DATA_FORMS}}}x"
FIELD = f"{{{ns.DATA_FORMS}}}field"
VALUE = f"{{{ns.DATA_FORMS}}}value"
OPTION = f"{{{ns.DATA_FORMS}}}option"

_BOOL = {"1": True, "true": True, "0": False, "false": False}


class AccessModel(StrEnum):
    """Who may read a node's items and get its notifications (XEP-0060 §4.5)."""

    OPEN = "open"  # every account of this server
    PRESENCE = "presence"  # contacts subscribed to the owner's presence (the PEP default)
    WHITELIST = "whitelist"  # the owner alone (XEP-0223 private storage)


class SendLast(StrEnum):
    """When the last item goes to a new subscriber (``pubsub#send_last_published_item``)."""

    NEVER = "never"
    ON_SUB = "on_sub"
    ON_SUB_AND_PRESENCE = "on_sub_and_presence"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The operator's limits on PEP (``[pep]``)."""

    item_max_bytes: int = 65_536
    avatar_max_bytes: int = 196_608  # the avatar data node: base64 image bytes
    max_items: int = 256  # items per node, at most (``max_items='max'`` means this)
    max_nodes: int = 256  # nodes per account, at most


#: Longest node id and item id kept (the store's columns).
MAX_ID_LENGTH = 1023


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """A node's configuration (XEP-0060 §16.4.3, the fields PEP clients set)."""

    access_model: AccessModel = AccessModel.PRESENCE
    max_items: int = 1
    persist_items: bool = True
    send_last_published_item: SendLast = SendLast.ON_SUB_AND_PRESENCE
    notify_retract: bool = True
    notify_delete: bool = True
    deliver_payloads: bool = True
    title: str = ""
    type: str = ""

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NodeConfig:
        """Read a stored configuration (unknown keys of later versions are ignored)."""
        raw = json.loads(text)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        config = cls(**known)
        return replace(
            config,
            access_model=AccessModel(config.access_model),
            send_last_published_item=SendLast(config.send_last_published_item),
        )


def pubsub_error(
    condition: StanzaCondition, app: str | None = None, text: str = "", **attrs: str
) -> StanzaError:
    """A stanza error with an optional ``pubsub#errors`` application condition."""
    extra = Element(f"{{{PUBSUB_ERRORS}}}{app}", attrs) if app is not None else None
    return StanzaError(condition, text, app_condition=extra)


# -- data forms -------------------------------------------------------------------------


def form_values(form: Element) -> dict[str, list[str]]:
    """The submitted values of a data form, by field var (FORM_TYPE included)."""
    out: dict[str, list[str]] = {}
    for f in form.findall(FIELD):
        var = f.get("var")
        if var:
            out[var] = [v.text or "" for v in f.findall(VALUE)]
    return out


def _field(form: Element, var: str, type_: str, values: Sequence[str], **options: str) -> None:
    el = SubElement(form, FIELD, {"var": var, "type": type_})
    for label, value in options.items():
        SubElement(SubElement(el, OPTION, {"label": label}), VALUE).text = value
    for value in values:
        SubElement(el, VALUE).text = value


def _b(value: bool) -> str:
    return "1" if value else "0"


def config_form(config: NodeConfig) -> Element:
    """The ``pubsub#node_config`` form of a node (XEP-0060 §8.2.1)."""
    form = Element(X, {"type": "form"})
    _field(form, "FORM_TYPE", "hidden", [NODE_CONFIG])
    _field(form, "pubsub#title", "text-single", [config.title])
    _field(form, "pubsub#type", "text-single", [config.type])
    _field(
        form,
        "pubsub#access_model",
        "list-single",
        [config.access_model.value],
        **{m.value: m.value for m in AccessModel},
    )
    _field(form, "pubsub#max_items", "text-single", [str(config.max_items)])
    _field(form, "pubsub#persist_items", "boolean", [_b(config.persist_items)])
    _field(
        form,
        "pubsub#send_last_published_item",
        "list-single",
        [config.send_last_published_item.value],
        **{s.value: s.value for s in SendLast},
    )
    _field(form, "pubsub#notify_retract", "boolean", [_b(config.notify_retract)])
    _field(form, "pubsub#notify_delete", "boolean", [_b(config.notify_delete)])
    _field(form, "pubsub#deliver_payloads", "boolean", [_b(config.deliver_payloads)])
    _field(form, "pubsub#deliver_notifications", "boolean", ["1"])
    _field(form, "pubsub#publish_model", "list-single", ["publishers"])
    return form


# Fields with one value only here: a request for another is refused.
_FIXED = {
    "pubsub#deliver_notifications": ("1", "true"),
    "pubsub#publish_model": ("publishers",),
}


def _one(var: str, values: list[str]) -> str:
    if len(values) != 1:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} takes one value")
    return values[0].strip()


def _boolean(var: str, values: list[str]) -> bool:
    value = _one(var, values).lower()
    if value not in _BOOL:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} must be a boolean")
    return _BOOL[value]


def _max_items(values: list[str], limits: Limits) -> int:
    value = _one("pubsub#max_items", values)
    if value == "max":  # XEP-0060 §7.1.5: "max" asks for the service's largest number
        return limits.max_items
    if not value.isdigit() or not 1 <= int(value) <= limits.max_items:
        raise StanzaError(
            StanzaCondition.NOT_ACCEPTABLE,
            f"pubsub#max_items must be 1 to {limits.max_items} or 'max'",
        )
    return int(value)


def _access_model(values: list[str]) -> AccessModel:
    value = _one("pubsub#access_model", values)
    try:
        return AccessModel(value)
    except ValueError:
        # XEP-0060 §8.1.3: an access model the service does not support.
        raise pubsub_error(
            StanzaCondition.NOT_ACCEPTABLE,
            "unsupported-access-model",
            f"access model {value!r} is not supported (open, presence, whitelist)",
        ) from None


def _send_last(values: list[str]) -> SendLast:
    value = _one("pubsub#send_last_published_item", values)
    try:
        return SendLast(value)
    except ValueError:
        raise StanzaError(
            StanzaCondition.NOT_ACCEPTABLE, "pubsub#send_last_published_item: unknown value"
        ) from None


def apply_form(values: dict[str, list[str]], config: NodeConfig, limits: Limits) -> NodeConfig:
    """``config`` changed by submitted form ``values`` (configure, create, publish-options).

    Raises:
        StanzaError: ``not-acceptable`` for an unknown field or a bad value.
    """
    changes: dict[str, object] = {}
    for var, vals in values.items():
        if var == "FORM_TYPE":
            continue
        if var in _FIXED:
            if _one(var, vals).lower() not in _FIXED[var]:
                raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} cannot be changed")
        elif var == "pubsub#access_model":
            changes["access_model"] = _access_model(vals)
        elif var == "pubsub#max_items":
            changes["max_items"] = _max_items(vals, limits)
        elif var == "pubsub#send_last_published_item":
            changes["send_last_published_item"] = _send_last(vals)
        elif var in ("pubsub#title", "pubsub#type"):
            if len(vals) > 1:
                raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} takes one value")
            changes[var.removeprefix("pubsub#")] = vals[0] if vals else ""
        elif var in (
            "pubsub#persist_items",
            "pubsub#notify_retract",
            "pubsub#notify_delete",
            "pubsub#deliver_payloads",
        ):
            changes[var.removeprefix("pubsub#")] = _boolean(var, vals)
        else:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"unsupported field {var}")
    return replace(config, **changes)  # type: ignore[arg-type]


def check_preconditions(values: dict[str, list[str]], config: NodeConfig, limits: Limits) -> None:
    """XEP-0060 §7.1.5: publish-options are preconditions an existing node must meet.

    "If the node exists and the precondition is not met, the service MUST
    return a <conflict/> error with a pubsub-specific condition of
    <precondition-not-met/>."

    Raises:
        StanzaError: ``conflict`` + ``precondition-not-met`` naming the field.
    """
    for var in values:
        if var == "FORM_TYPE":
            continue
        try:
            wanted = apply_form({var: values[var]}, config, limits)
        except StanzaError:
            wanted = None
        if wanted != config:
            raise pubsub_error(
                StanzaCondition.CONFLICT,
                "precondition-not-met",
                f"the node's {var} differs from the publish-options",
            )
