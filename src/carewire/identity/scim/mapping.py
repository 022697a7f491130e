"""Directory users and groups as SCIM resources, and SCIM resources as directory changes.

Theory of operation. A User resource is built from three sources: the
directory profile (authoritative for every attribute it has a field for, see
the table in docs/scim.md), the login state (``active``) and memberships
(``groups``, read-only), and the :class:`~carewire.identity.scim.model.UserLink`
the identity provider's writes left: its ``userName``, ``externalId`` and
``extra``, the attributes the directory has no field for, kept as sent and
merged back (lists appended, objects merged) so a provider reads what it wrote.
:func:`user_input` splits a resource the other way. Both work on the SCIM JSON
form (``dict``), never on the wire or the database; nothing here does I/O.

``meta.version`` is a weak ETag of the resource's content (RFC 7644 §3.14): the
SHA-256 of its canonical JSON without ``meta``, so it changes with any change,
made through SCIM, the console, the REST API or the CLI alike.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from carewire.directory.model import Profile, StaffType
from carewire.identity.scim.model import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    MAX_EXTRA_CHARS,
    MAX_SCIM_STRING,
    USER_SCHEMA,
)
from carewire.identity.scim.store import StoredGroup, StoredUser

Json = dict[str, Any]

#: Profile fields and the SCIM attributes they are read from (for error messages).
PROFILE_ATTRIBUTES = {
    "first_name": "name.givenName",
    "last_name": "name.familyName",
    "middle_name": "name.middleName",
    "title": "name.honorificPrefix",
    "credentials": "name.honorificSuffix",
    "job_title": "title",
    "email": "emails",
    "cell_number": 'phoneNumbers[type eq "mobile"]',
    "office_phone": 'phoneNumbers[type eq "work"]',
    "office_fax": 'phoneNumbers[type eq "fax"]',
    "address1": 'addresses[type eq "work"].streetAddress',
    "address2": 'addresses[type eq "work"].streetAddress',
    "city": 'addresses[type eq "work"].locality',
    "state": 'addresses[type eq "work"].region',
    "zip": 'addresses[type eq "work"].postalCode',
    "time_zone": "timezone",
}
_PHONES = {"mobile": "cell_number", "work": "office_phone", "fax": "office_fax"}
#: Attributes every resource has, the provider's own or computed: never in ``extra``.
_OWN = frozenset({"schemas", "id", "externalId", "userName", "meta", "password", "groups", "ims"})
#: Core attributes the directory holds (read from the profile, never kept in ``extra``).
_MAPPED = frozenset({"title", "timezone", "active", "emails"})
_NAME_MAPPED = frozenset(
    {"givenName", "familyName", "middleName", "honorificPrefix", "honorificSuffix"}
)
_WORK_ADDRESS = frozenset({"streetAddress", "locality", "region", "postalCode", "type", "primary"})


class MappingError(ValueError):
    """A resource the directory cannot hold; ``attribute`` names what is wrong."""

    def __init__(self, attribute: str, message: str) -> None:
        """Say what is wrong with ``attribute``."""
        super().__init__(message)
        self.attribute = attribute


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInput:
    """What a User resource asks of the directory and of the link.

    Attributes:
        profile: The profile (fields SCIM has no attribute for kept from the current one).
        can_login: ``active`` (None: not given).
        password: A new password (None: not given).
        user_name: ``userName``.
        external_id: ``externalId``.
        extra: Attributes with no directory field, to keep for the provider.
    """

    profile: Profile
    can_login: bool | None
    password: str | None
    user_name: str
    external_id: str | None
    extra: Json


# -- rendering ----------------------------------------------------------------------------


def version_of(resource: Mapping[str, Any]) -> str:
    """The weak ETag of a resource's content (``meta`` left out)."""
    content = {k: v for k, v in resource.items() if k != "meta"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return f'W/"{hashlib.sha256(canonical.encode()).hexdigest()[:20]}"'


def _meta(kind: str, created: datetime, modified: datetime) -> Json:
    return {
        "resourceType": kind,
        "created": created.isoformat(),
        "lastModified": modified.isoformat(),
    }


def _drop_empty(values: Json) -> Json:
    return {k: v for k, v in values.items() if v not in ("", None, [], {})}


def user_resource(stored: StoredUser, *, domain: str) -> Json:
    """The User resource of a directory user (SCIM JSON, ``meta.version`` included)."""
    user, link = stored.user, stored.link
    p = user.profile
    extra: Json = dict(link.extra) if link is not None else {}
    mapped: Json = {
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": user.login,
        "externalId": link.external_id if link is not None else None,
        "userName": link.user_name if link is not None else user.login,
        "name": _drop_empty(
            {
                "givenName": p.first_name,
                "familyName": p.last_name,
                "middleName": p.middle_name,
                "honorificPrefix": p.title,
                "honorificSuffix": p.credentials,
            }
        ),
        "displayName": p.display_name,
        "title": p.job_title,
        "userType": p.staff_type.value,
        "timezone": p.time_zone,
        "active": user.can_login,
        "emails": [{"value": p.email, "type": "work", "primary": True}],
        "phoneNumbers": [
            {"value": getattr(p, name), "type": kind}
            for kind, name in _PHONES.items()
            if getattr(p, name)
        ],
        "addresses": _addresses(p),
        "ims": [{"value": f"{user.login}@{domain}", "type": "xmpp"}],
        "groups": [
            {"value": str(g.id), "display": g.name, "type": "direct"} for g in stored.groups
        ],
        ENTERPRISE_SCHEMA: {"employeeNumber": str(user.staff_id)},
    }
    resource = _merge(_drop_empty(mapped), extra)
    resource["meta"] = _meta("User", user.created_at, _latest(user.updated_at, link))
    resource["meta"]["version"] = version_of(resource)
    return resource


def _latest(updated_at: datetime, link: Any) -> datetime:
    return max(updated_at, link.updated_at) if link is not None else updated_at


def _addresses(p: Profile) -> list[Json]:
    street = "\n".join(line for line in (p.address1, p.address2) if line)
    work = _drop_empty(
        {"streetAddress": street, "locality": p.city, "region": p.state, "postalCode": p.zip}
    )
    return [{**work, "type": "work"}] if work else []


def _merge(mapped: Json, extra: Mapping[str, Any]) -> Json:
    """``mapped`` with ``extra`` added: objects merged, lists appended, the directory first."""
    merged = dict(mapped)
    for key, value in extra.items():
        mine = merged.get(key)
        if isinstance(mine, dict) and isinstance(value, dict):
            merged[key] = _merge(mine, value)
        elif isinstance(mine, list) and isinstance(value, list):
            merged[key] = mine + value
        else:
            merged[key] = value
    return merged


def group_resource(group: StoredGroup) -> Json:
    """The Group resource of a directory group (members are users, by login)."""
    mapped = _drop_empty(
        {
            "schemas": [GROUP_SCHEMA],
            "id": str(group.id),
            "externalId": group.external_id,
            "displayName": group.name,
            "members": [
                {"value": m.login, "display": m.display, "type": "User"} for m in group.members
            ],
        }
    )
    mapped["meta"] = _meta("Group", group.created_at, group.updated_at)
    mapped["meta"]["version"] = version_of(mapped)
    return mapped


# -- reading ------------------------------------------------------------------------------


def user_input(
    resource: Mapping[str, Any],
    current: Profile | None,
    shown: Mapping[str, Any] | None = None,
) -> UserInput:
    """What a User resource (SCIM JSON, as validated) asks of the directory.

    Attributes the directory holds come from the resource (absent ones are
    cleared: the resource is the whole new state); profile fields SCIM has no
    attribute for stay as they are in ``current``. ``shown`` is the resource as
    it was served before this change: the ``displayName`` the directory computed
    for it, sent back unchanged, is the directory's, not an override to keep (a
    PATCH of the names sends it back along with the new ones).

    Raises:
        MappingError: A name, the e-mail address or a string the directory needs
            is missing or too long.
    """
    user_name = _string(resource.get("userName"), "userName", required=True)
    external_id = _string(resource.get("externalId"), "externalId") or None
    name: Mapping[str, Any] = resource.get("name") or {}
    phones = _typed(resource.get("phoneNumbers"))
    work = _typed(resource.get("addresses")).get("work", {})
    street = str(work.get("streetAddress") or "").split("\n", 1)
    base = current or Profile(first_name="", last_name="", email="")
    profile = replace(
        base,
        first_name=str(name.get("givenName") or ""),
        last_name=str(name.get("familyName") or ""),
        middle_name=str(name.get("middleName") or ""),
        title=str(name.get("honorificPrefix") or ""),
        credentials=str(name.get("honorificSuffix") or ""),
        job_title=str(resource.get("title") or ""),
        email=_email(resource, user_name),
        cell_number=str(phones.get("mobile", {}).get("value") or ""),
        office_phone=str(phones.get("work", {}).get("value") or ""),
        office_fax=str(phones.get("fax", {}).get("value") or ""),
        address1=street[0].strip(),
        address2=street[1].strip() if len(street) > 1 else "",
        city=str(work.get("locality") or ""),
        state=str(work.get("region") or ""),
        zip=str(work.get("postalCode") or ""),
        time_zone=str(resource.get("timezone") or base.time_zone),
    )
    profile, user_type = _staff_type(profile, resource.get("userType"))
    if not profile.first_name or not profile.last_name:
        raise MappingError("name", "name.givenName and name.familyName are required")
    active = resource.get("active")
    password = resource.get("password")
    return UserInput(
        profile=profile,
        can_login=active if isinstance(active, bool) else None,
        password=password if isinstance(password, str) else None,
        user_name=user_name,
        external_id=external_id,
        extra=_extra(resource, user_type, shown or {}),
    )


def _string(value: object, attribute: str, *, required: bool = False) -> str:
    text = "" if value is None else str(value)
    if required and not text.strip():
        raise MappingError(attribute, f"{attribute} is required")
    if len(text) > MAX_SCIM_STRING:
        raise MappingError(attribute, f"{attribute} has more than {MAX_SCIM_STRING} characters")
    return text


def _typed(items: object) -> dict[str, Json]:
    """Multi-valued items by ``type`` (the first of each type; a primary one wins)."""
    found: dict[str, Json] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            kind = str(item.get("type") or "")
            if kind not in found or item.get("primary") is True:
                found[kind] = item
    return found


def _email(resource: Mapping[str, Any], user_name: str) -> str:
    """The primary address, else the work one, else the first; else a userName that is one."""
    emails = [e for e in resource.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    chosen = (
        next((e for e in emails if e.get("primary") is True), None)
        or next((e for e in emails if e.get("type") == "work"), None)
        or (emails[0] if emails else None)
    )
    if chosen is not None:
        return str(chosen["value"])
    if "@" in user_name:
        return user_name
    raise MappingError(
        "emails", "an e-mail address is required (emails, or a userName that is one)"
    )


def _staff_type(profile: Profile, user_type: object) -> tuple[Profile, str | None]:
    """``userType`` Physician or Non-Physician sets the staff type; another value is kept apart."""
    if not isinstance(user_type, str) or not user_type:
        return profile, None
    for staff_type in StaffType:
        if staff_type.value.casefold() == user_type.casefold():
            return replace(profile, staff_type=staff_type), None
    return profile, user_type


def _extra(resource: Mapping[str, Any], user_type: str | None, shown: Mapping[str, Any]) -> Json:
    """The attributes the directory has no field for, as sent."""
    extra: Json = {
        k: v for k, v in resource.items() if k not in _OWN and k not in _MAPPED and v is not None
    }
    extra.pop("name", None)
    extra.pop("userType", None)
    name = {k: v for k, v in (resource.get("name") or {}).items() if k not in _NAME_MAPPED}
    if name:
        extra["name"] = name
    if user_type is not None:
        extra["userType"] = user_type
    for key, kinds in (("phoneNumbers", frozenset(_PHONES)), ("addresses", frozenset({"work"}))):
        kept = _unmapped_items(resource.get(key), kinds)
        extra.pop(key, None)
        if kept:
            extra[key] = kept
    work = _typed(resource.get("addresses")).get("work", {})
    spare = {k: v for k, v in work.items() if k not in _WORK_ADDRESS}
    if spare:
        extra.setdefault("addresses", []).append({**spare, "type": "work"})
    enterprise = dict(resource.get(ENTERPRISE_SCHEMA) or {})
    enterprise.pop("employeeNumber", None)
    extra.pop(ENTERPRISE_SCHEMA, None)
    if enterprise:
        extra[ENTERPRISE_SCHEMA] = enterprise
    display = extra.get("displayName")
    # What the directory computed (from the names sent, or from those it served) is not an
    # override; a displayName the provider set itself stays, even when sent back unchanged.
    if display is not None and display in (_computed_display(resource), _computed_display(shown)):
        del extra["displayName"]
    if len(json.dumps(extra, default=str)) > MAX_EXTRA_CHARS:
        raise MappingError(
            "", f"attributes beyond the directory's take more than {MAX_EXTRA_CHARS}"
        )
    return extra


def _computed_display(resource: Mapping[str, Any]) -> str:
    name: Mapping[str, Any] = resource.get("name") or {}
    first, last = str(name.get("givenName") or ""), str(name.get("familyName") or "")
    full = f"{first} {last}".strip()
    credentials = str(name.get("honorificSuffix") or "")
    return f"{full}, {credentials}" if credentials and full else full


def _unmapped_items(items: object, kinds: frozenset[str]) -> list[Json]:
    """Items of a multi-valued attribute the directory keeps none of (other types, duplicates)."""
    chosen = _typed(items)
    kept: list[Json] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type") or "")
        if kind not in kinds or chosen.get(kind) is not item:
            kept.append(item)
    return kept


def member_logins(resource: Mapping[str, Any]) -> list[str]:
    """The logins a Group resource's ``members`` name (users only).

    Raises:
        MappingError: A member is a group (groups of groups are not kept).
    """
    logins: list[str] = []
    for member in resource.get("members") or []:
        if not isinstance(member, dict) or not member.get("value"):
            continue
        if str(member.get("type") or "User").casefold() == "group":
            raise MappingError("members", "members are users; groups of groups are not kept")
        logins.append(str(member["value"]))
    return sorted(set(logins))


def group_external_id(resource: Mapping[str, Any]) -> str | None:
    """The Group resource's ``externalId`` (checked)."""
    return _string(resource.get("externalId"), "externalId") or None
