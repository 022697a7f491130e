"""Data forms (XEP-0004) of the room service: muc#roomconfig (XEP-0045 §10.2) and muc#roominfo.

Pure functions: the owner's form is built from a :class:`RoomConfig`, a
submitted form is read back into one (or refused with ``not-acceptable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from xml.etree.ElementTree import Element, SubElement

from carewire.features.muc.model import ROOMCONFIG, ROOMINFO, RoomConfig, Whois
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError

X = f"{{{ns.DATA_FORMS}}}x"
FIELD = f"{{{ns.DATA_FORMS}}}field"
VALUE = f"{{{ns.DATA_FORMS}}}value"
OPTION = f"{{{ns.DATA_FORMS}}}option"

_BOOL = {"1": True, "true": True, "0": False, "false": False}
MAX_USERS_OPTIONS = (10, 20, 30, 50, 100, 200)


def _field(
    form: Element,
    var: str,
    type_: str,
    values: Sequence[str],
    *,
    label: str = "",
    options: Sequence[tuple[str, str]] = (),
) -> None:
    attrs = {"var": var, "type": type_}
    if label:
        attrs["label"] = label
    el = SubElement(form, FIELD, attrs)
    for label_, value in options:
        SubElement(SubElement(el, OPTION, {"label": label_}), VALUE).text = value
    for value in values:
        SubElement(el, VALUE).text = value


def _b(value: bool) -> str:
    return "1" if value else "0"


def config_form(config: RoomConfig, *, max_users: int) -> Element:
    """The muc#roomconfig form an owner fills in (XEP-0045 §10.2, Example 163)."""
    form = Element(X, {"type": "form"})
    SubElement(form, f"{{{ns.DATA_FORMS}}}title").text = "Room configuration"
    _field(form, "FORM_TYPE", "hidden", [ROOMCONFIG])
    _field(form, "muc#roomconfig_roomname", "text-single", [config.name], label="Name")
    _field(form, "muc#roomconfig_roomdesc", "text-single", [config.description], label="Topic")
    booleans = (
        ("muc#roomconfig_persistentroom", config.is_persistent, "Keep the room when empty"),
        ("muc#roomconfig_publicroom", config.is_public, "List the room publicly"),
        ("muc#roomconfig_membersonly", config.is_members_only, "Members only"),
        ("muc#roomconfig_moderatedroom", config.is_moderated, "Moderated"),
        ("muc#roomconfig_changesubject", config.can_change_subject, "Occupants may set the topic"),
        ("muc#roomconfig_allowinvites", config.can_invite, "Occupants may invite"),
        ("muc#roomconfig_passwordprotectedroom", bool(config.password), "Password protected"),
    )
    for var, value, label in booleans:
        _field(form, var, "boolean", [_b(value)], label=label)
    _field(form, "muc#roomconfig_roomsecret", "text-private", [config.password], label="Password")
    options = [(str(n), str(n)) for n in MAX_USERS_OPTIONS if n <= max_users]
    if str(max_users) not in {v for _, v in options}:
        options.append((str(max_users), str(max_users)))
    _field(
        form,
        "muc#roomconfig_maxusers",
        "list-single",
        [str(config.max_users)],
        label="Maximum number of users",
        options=options,
    )
    _field(
        form,
        "muc#roomconfig_whois",
        "list-single",
        [config.whois.value],
        label="Who may see real addresses",
        options=[("Moderators", Whois.MODERATORS.value), ("Anyone", Whois.ANYONE.value)],
    )
    return form


def form_values(form: Element) -> dict[str, list[str]]:
    """The submitted fields as var → values."""
    values: dict[str, list[str]] = {}
    for el in form.iter(FIELD):
        var = el.get("var")
        if var:
            values[var] = [v.text or "" for v in el.findall(VALUE)]
    return values


def _single(values: dict[str, list[str]], var: str) -> str | None:
    got = values.get(var)
    if got is None:
        return None
    if len(got) > 1:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} takes one value")
    return got[0] if got else ""


def _boolean(values: dict[str, list[str]], var: str, current: bool) -> bool:
    raw = _single(values, var)
    if raw is None:
        return current
    try:
        return _BOOL[raw.strip().lower()]
    except KeyError:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, f"{var} must be a boolean") from None


def _max_users(values: dict[str, list[str]], current: int, limit: int) -> int:
    raw = _single(values, "muc#roomconfig_maxusers")
    if raw is None:
        return current
    raw = raw.strip()
    if raw in ("", "none"):  # XEP-0045: 'none' means no limit; ours is the product's
        return limit
    if not raw.isdigit() or int(raw) < 1:
        raise StanzaError(
            StanzaCondition.NOT_ACCEPTABLE, "muc#roomconfig_maxusers must be a positive number"
        )
    if int(raw) > limit:
        raise StanzaError(
            StanzaCondition.NOT_ACCEPTABLE, f"A conversation is limited to {limit} users"
        )
    return int(raw)


def apply_config(form: Element, config: RoomConfig, *, max_users: int) -> RoomConfig:
    """The configuration after an owner's submitted form.

    Fields that are absent keep their value; unknown fields are ignored.

    Raises:
        StanzaError: ``bad-request`` for a form of another type,
            ``not-acceptable`` for an invalid value.
    """
    values = form_values(form)
    form_type = _single(values, "FORM_TYPE")
    if form_type is not None and form_type != ROOMCONFIG:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "not a muc#roomconfig form")
    whois_raw = _single(values, "muc#roomconfig_whois")
    try:
        whois = config.whois if whois_raw is None else Whois(whois_raw)
    except ValueError:
        raise StanzaError(
            StanzaCondition.NOT_ACCEPTABLE, "muc#roomconfig_whois must be moderators or anyone"
        ) from None
    password = _single(values, "muc#roomconfig_roomsecret")
    password = config.password if password is None else password
    if not _boolean(values, "muc#roomconfig_passwordprotectedroom", bool(config.password)):
        password = ""
    name = _single(values, "muc#roomconfig_roomname")
    description = _single(values, "muc#roomconfig_roomdesc")
    return replace(
        config,
        name=config.name if name is None else name.strip(),
        description=config.description if description is None else description.strip(),
        is_persistent=_boolean(values, "muc#roomconfig_persistentroom", config.is_persistent),
        is_public=_boolean(values, "muc#roomconfig_publicroom", config.is_public),
        is_members_only=_boolean(values, "muc#roomconfig_membersonly", config.is_members_only),
        is_moderated=_boolean(values, "muc#roomconfig_moderatedroom", config.is_moderated),
        can_change_subject=_boolean(
            values, "muc#roomconfig_changesubject", config.can_change_subject
        ),
        can_invite=_boolean(values, "muc#roomconfig_allowinvites", config.can_invite),
        whois=whois,
        max_users=_max_users(values, config.max_users, max_users),
        password=password,
    )


def roominfo_form(config: RoomConfig, *, subject: str, occupants: int) -> Element:
    """The muc#roominfo extension of a room's disco#info (XEP-0045 §6.4, XEP-0128)."""
    form = Element(X, {"type": "result"})
    _field(form, "FORM_TYPE", "hidden", [ROOMINFO])
    _field(form, "muc#roominfo_description", "text-single", [config.description])
    _field(form, "muc#roominfo_subject", "text-single", [subject])
    _field(form, "muc#roominfo_occupants", "text-single", [str(occupants)])
    _field(form, "muc#roomconfig_roomname", "text-single", [config.name])
    _field(form, "muc#roomconfig_maxusers", "text-single", [str(config.max_users)])
    _field(form, "muc#roomconfig_changesubject", "boolean", [_b(config.can_change_subject)])
    _field(form, "muc#roomconfig_allowinvites", "boolean", [_b(config.can_invite)])
    return form
