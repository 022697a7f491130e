"""The sync engine's core, sans-IO: directory entries and synced users in, decisions out.

Theory of operation: a run reads the entries the filter selects (all of them
for a full run, those changed since the last stamp for an incremental one)
and hands them, with what the directory holds (:class:`Known`), to
:func:`decide`. Each entry becomes one decision:

- an entry whose external id is linked to a user: :class:`Update` when a synced
  field, the DN or the login state differs, :class:`Unchanged` otherwise;
- an unlinked entry: :class:`Update` with ``is_adopt`` when a not-yet-linked user of
  the same organisation has its e-mail address (the user is linked, not duplicated),
  else :class:`Create` with the entry's login;
- an entry that cannot be synced (no or bad external id, a value that is not
  UTF-8, too long, malformed, a duplicate e-mail or login): :class:`Failed` with a
  sentence naming the attribute; the rest of the run goes on.

A full run also returns :class:`Disable` for every linked user it did not
see (left the directory or the filter). Nothing here reads the clock, the
network or the database; the same inputs give the same decisions, which is
what makes a run idempotent: an interrupted run is simply decided again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from carewire.directory import fields
from carewire.directory.model import InvalidFieldError, Profile
from carewire.directory.policy import check_login
from carewire.identity.ldap.model import MAX_VALUE_BYTES, AttributeMap, StampKind

_LABELS = {
    "email": "e-mail",
    "first_name": "first name",
    "last_name": "last name",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One directory entry as read: its DN and raw attribute values (names lower-case)."""

    dn: str
    attributes: Mapping[str, Sequence[bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Linked:
    """A directory user linked to an entry."""

    login: str
    external_id: str
    dn: str
    staff_id: int
    profile: Profile
    is_disabled: bool = False
    is_disabled_by_sync: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """What the directory holds that the decisions depend on.

    Attributes:
        linked: The organisation's linked users, by external id.
        emails: E-mail → (login, organisation id) of existing users whose address an
            entry has.
        taken_logins: Logins of the entries that an account or a kept USERS record has.
        organisation_id: The organisation being synced.
    """

    linked: Mapping[str, Linked]
    emails: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    taken_logins: frozenset[str] = frozenset()
    organisation_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Create:
    """A new directory user for an entry."""

    external_id: str
    dn: str
    login: str
    profile: Profile
    stamp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    """A linked (or adopted) user whose synced fields, DN or login state change."""

    external_id: str
    dn: str
    login: str
    staff_id: int
    profile: Profile
    changed: tuple[str, ...]
    stamp: str
    is_enable: bool = False  # disabled by an earlier run, back in the directory
    is_adopt: bool = False  # an existing user linked by e-mail


@dataclass(frozen=True, slots=True, kw_only=True)
class Unchanged:
    """A linked user the entry agrees with (only the stamp may move)."""

    external_id: str
    login: str
    stamp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Disable:
    """A linked user whose entry is gone from the directory or the filter."""

    external_id: str
    dn: str
    login: str
    staff_id: int
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """An entry that cannot be synced, and why."""

    external_id: str
    dn: str
    login: str = ""
    name: str = ""
    message: str


Decision = Create | Update | Unchanged | Disable | Failed


class _Refused(Exception):
    def __init__(self, message: str, *, login: str = "", name: str = "") -> None:
        super().__init__(message)
        self.message, self.login, self.name = message, login, name


def guid_text(raw: bytes) -> str:
    """AD's ``objectGUID`` (16 bytes, little-endian fields) as its usual text form."""
    return str(uuid.UUID(bytes_le=raw))


def external_id_of(entry: Entry, mapping: AttributeMap) -> str:
    """The entry's external id as text (a GUID for 16-byte binary ids).

    Raises:
        _Refused: It has none, or it is not usable.
    """
    values = entry.attributes.get(mapping.external_id.lower(), ())
    if not values:
        raise _Refused(f"the entry has no {mapping.external_id}")
    raw = values[0]
    if len(raw) == 16 and mapping.external_id.lower() == "objectguid":
        return guid_text(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    if not text or len(text) > 255 or not text.isprintable():
        raise _Refused(f"{mapping.external_id} is not a usable identifier")
    return text


def stamp_of(entry: Entry, mapping: AttributeMap) -> str:
    """The entry's change stamp ("" when the server gives none)."""
    if mapping.stamp is StampKind.NONE:
        return ""
    values = entry.attributes.get(mapping.stamp.value.lower(), ())
    return values[0].decode("ascii", "replace") if values else ""


def newest_stamp(stamps: Iterable[str], kind: StampKind, since: str = "") -> str:
    """The highest stamp (GeneralizedTime sorts as text; a USN as a number)."""
    best = since
    for stamp in stamps:
        if not stamp:
            continue
        if kind is StampKind.USN_CHANGED:
            if not best or (stamp.isdigit() and int(stamp) > int(best or "0")):
                best = stamp
        elif stamp > best:
            best = stamp
    return best


def settled_stamp(stamp: str, kind: StampKind, started_at: datetime) -> str:
    """The stamp to search after next time.

    A GeneralizedTime has one-second steps: an entry changed later in the same
    second as the newest one read would not be strictly newer. So a stamp
    within two seconds of the run's start is moved back one second (those
    entries are read again, and found unchanged). USNs are exact.
    """
    if kind is not StampKind.MODIFY_TIMESTAMP or not stamp:
        return stamp
    try:
        at = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return ""  # unreadable: the next run is full
    if at < started_at - timedelta(seconds=2):
        return stamp
    return (at - timedelta(seconds=1)).strftime("%Y%m%d%H%M%SZ")


def _text(entry: Entry, attribute: str) -> str:
    values = entry.attributes.get(attribute.lower(), ())
    if not values:
        return ""
    raw = values[0]
    if len(raw) > MAX_VALUE_BYTES:
        raise _Refused(f"{attribute} is {len(raw)} bytes long (at most {MAX_VALUE_BYTES})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(f"{attribute} is not UTF-8 text (binary or another encoding)") from None


def _values(entry: Entry, mapping: AttributeMap) -> dict[str, str]:
    values = {name: _text(entry, attr) for name, attr in mapping.profile.items() if attr}
    for name in ("email", "first_name", "last_name"):
        if not values.get(name, "").strip():
            attr = mapping.profile.get(name, "")
            raise _Refused(f"{attr} (the {_LABELS[name]}) is missing")
    return values


def _checked(profile: Profile, mapping: AttributeMap) -> Profile:
    try:
        return fields.profile(profile)
    except InvalidFieldError as exc:
        attr = mapping.profile.get(exc.field, exc.field)
        raise _Refused(f"{attr}: {exc.message}") from None


def _login(entry: Entry, mapping: AttributeMap) -> str:
    raw = _text(entry, mapping.login)
    try:
        return check_login(raw)
    except InvalidFieldError as exc:
        raise _Refused(f"{mapping.login} {raw[:64]!r}: {exc.message}") from None


class _Run:
    """The state of one :func:`decide` call: what was seen and taken so far."""

    def __init__(self, known: Known, mapping: AttributeMap) -> None:
        self.known = known
        self.mapping = mapping
        self.seen: set[str] = set()
        self.emails: dict[str, str] = {}  # e-mail → DN that claimed it in this run
        self.logins: dict[str, str] = {}  # login → DN that claimed it in this run
        self.linked_by_login = {link.login: link for link in known.linked.values()}

    def one(self, entry: Entry) -> Decision:
        try:
            external_id = external_id_of(entry, self.mapping)
        except _Refused as exc:
            return Failed(external_id="", dn=entry.dn, message=exc.message)
        if external_id in self.seen:
            return Failed(external_id=external_id, dn=entry.dn, message="the entry came twice")
        self.seen.add(external_id)
        try:
            return self._decide(entry, external_id)
        except _Refused as exc:
            return Failed(
                external_id=external_id,
                dn=entry.dn,
                login=exc.login,
                name=exc.name,
                message=exc.message,
            )

    def _decide(self, entry: Entry, external_id: str) -> Decision:
        values = _values(entry, self.mapping)
        name = f"{values['first_name']} {values['last_name']}".strip()
        stamp = stamp_of(entry, self.mapping)
        link = self.known.linked.get(external_id)
        if link is not None:
            profile = _checked(replace(link.profile, **values), self.mapping)  # type: ignore[arg-type]
            self._claim_email(profile.email, entry.dn, link.login, name)
            changed = tuple(k for k in values if getattr(profile, k) != getattr(link.profile, k))
            is_enable = link.is_disabled and link.is_disabled_by_sync
            if not changed and entry.dn == link.dn and not is_enable:
                return Unchanged(external_id=external_id, login=link.login, stamp=stamp)
            return Update(
                external_id=external_id,
                dn=entry.dn,
                login=link.login,
                staff_id=link.staff_id,
                profile=profile,
                changed=changed + (("dn",) if entry.dn != link.dn else ()),
                stamp=stamp,
                is_enable=is_enable,
            )
        login = _login(entry, self.mapping)
        profile = _checked(Profile(**values), self.mapping)  # type: ignore[arg-type]
        owner = self.known.emails.get(profile.email)
        if owner is not None and owner[0] not in self.linked_by_login:
            if owner[1] != self.known.organisation_id:
                raise _Refused(
                    f"the e-mail {profile.email} belongs to a user of another organisation",
                    login=login,
                    name=name,
                )
            self._claim_email(profile.email, entry.dn, owner[0], name)
            return Update(
                external_id=external_id,
                dn=entry.dn,
                login=owner[0],
                staff_id=0,
                profile=profile,
                changed=tuple(values),
                stamp=stamp,
                is_adopt=True,
            )
        self._claim_email(profile.email, entry.dn, login, name)
        self._claim_login(login, entry.dn, name)
        return Create(
            external_id=external_id, dn=entry.dn, login=login, profile=profile, stamp=stamp
        )

    def _claim_email(self, email: str, dn: str, login: str, name: str) -> None:
        other = self.emails.get(email)
        if other is not None:
            raise _Refused(f"duplicate e-mail {email}: {other} has it too", login=login, name=name)
        owner = self.known.emails.get(email)
        if owner is not None and owner[0] != login:
            link = self.linked_by_login.get(owner[0])
            where = f"the synced user {owner[0]}" if link is not None else f"the user {owner[0]}"
            raise _Refused(f"duplicate e-mail {email}: {where} has it", login=login, name=name)
        self.emails[email] = dn

    def _claim_login(self, login: str, dn: str, name: str) -> None:
        other = self.logins.get(login)
        if other is not None:
            raise _Refused(f"duplicate login {login}: {other} has it too", login=login, name=name)
        if login in self.known.taken_logins:
            raise _Refused(
                f"the login {login} is taken by a user not synced from this directory",
                login=login,
                name=name,
            )
        self.logins[login] = dn


def decide(
    entries: Iterable[Entry], known: Known, mapping: AttributeMap, *, is_full: bool
) -> list[Decision]:
    """One decision per entry, then (full runs) a :class:`Disable` per linked user not seen."""
    run = _Run(known, mapping)
    decisions: list[Decision] = [run.one(entry) for entry in entries]
    if is_full:
        for external_id, link in known.linked.items():
            if external_id not in run.seen and not link.is_disabled:
                decisions.append(
                    Disable(
                        external_id=external_id,
                        dn=link.dn,
                        login=link.login,
                        staff_id=link.staff_id,
                        name=link.profile.reference_name,
                    )
                )
    return decisions


def is_mass_disable(decisions: Sequence[Decision], known: Known, max_percent: int) -> bool:
    """Whether the run would disable more than ``max_percent`` % of the active linked users."""
    disables = sum(isinstance(d, Disable) for d in decisions)
    if not disables:
        return False
    active = sum(not link.is_disabled for link in known.linked.values())
    return disables * 100 > max_percent * active
