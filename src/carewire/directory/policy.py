"""The directory's rules as pure functions: PINs, e-mail addresses, logins, who may message whom.

No I/O, no clock: every input is an argument. Theory of operation of the
messaging rule (the seed's §3.2, with the plan's decisions):

- users of one organisation may always message each other;
- users u of X and v of Y (X ≠ Y) may when X and Y are actively affiliated
  and u passes X's permission toward Y and v passes Y's toward X; a direct
  affiliation decides alone (its "None" is not bypassed through a community);
- otherwise when X and Y are in one hospital H's community (each is H or
  actively affiliated with H, one level only: practices have no community)
  and u passes X's permission toward H and v passes Y's toward H ("the same
  permissions that they share with the parent hospital");
- a permission passes everyone (the organisation), no one (None), or the
  members of its groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass, field
from itertools import pairwise

from carewire.directory.model import (
    EMAIL_MAX,
    INVITATION_TRANSITIONS,
    LOGIN_MAX,
    PIN_LENGTHS,
    DeviceState,
    GroupId,
    InvalidEmailError,
    InvalidFieldError,
    InvalidTransitionError,
    InvitationEvent,
    InvitationStatus,
    MemberStatus,
    OrganisationId,
    OrgKind,
    Permission,
    PermissionMode,
    PinPolicyError,
)

# -- PINs -----------------------------------------------------------------------------------

#: Every four-digit value in this range is refused: it may be a birth year.
YEARS = range(1900, 2100)


def pin_problem(pin: str, length: int) -> str | None:
    """Why ``pin`` breaks the policy for ``length`` digits, or None when it is acceptable.

    Refused: anything but exactly ``length`` ASCII digits; one digit repeated
    (1111); a straight run up or down (1234, 4321, 0123, 9876); for four
    digits, a year from 1900 to 2099.
    """
    if length not in PIN_LENGTHS:
        raise ValueError(f"a PIN has {' or '.join(map(str, PIN_LENGTHS))} digits")
    if len(pin) != length or not all("0" <= c <= "9" for c in pin):
        return f"The PIN must be exactly {length} digits."
    digits = [int(c) for c in pin]
    if len(set(digits)) == 1:
        return "The PIN must not repeat one digit."
    steps = {b - a for a, b in pairwise(digits)}
    if steps in ({1}, {-1}):
        return "The PIN must not be a run of consecutive digits."
    if length == 4 and int(pin) in YEARS:
        return "The PIN must not be a year."
    return None


def check_pin(pin: str, length: int) -> str:
    """``pin`` if it follows the policy.

    Raises:
        PinPolicyError: It does not (the message says why).
    """
    problem = pin_problem(pin, length)
    if problem is not None:
        raise PinPolicyError(problem)
    return pin


# -- e-mail addresses and logins --------------------------------------------------------------

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}$")
_LOGIN = re.compile(rf"^[a-z0-9][a-z0-9._-]{{0,{LOGIN_MAX - 1}}}$")


def normalize_email(address: str) -> str:
    """The stored form of an e-mail address: trimmed, lower-case, checked.

    Accepts an RFC 5321 mailbox with a dot-atom local part (at most 64
    characters) and a domain of DNS labels ending in a letters-only top
    level; no quoted local parts, no address literals.

    Raises:
        InvalidEmailError: It is not such an address.
    """
    value = address.strip().lower()
    local, _, _ = value.partition("@")
    if len(value) > EMAIL_MAX or len(local) > 64 or not _EMAIL.match(value):
        raise InvalidEmailError(address.strip())
    return value


def is_email(address: str) -> bool:
    """Whether ``address`` is an acceptable e-mail address."""
    try:
        normalize_email(address)
    except InvalidEmailError:
        return False
    return True


def check_login(login: str) -> str:
    """The stored form of a chosen login (lower-case), checked.

    Raises:
        InvalidFieldError: Not 1–64 of a–z, 0–9, '.', '_', '-' starting with a letter or digit.
    """
    value = login.strip().lower()
    if not _LOGIN.match(value):
        raise InvalidFieldError(
            "login",
            f"A login has 1–{LOGIN_MAX} characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            code="invalid-login",
        )
    return value


def login_base(email: str) -> str:
    """The login an e-mail address suggests: its local part, reduced to login characters."""
    local = email.strip().lower().partition("@")[0]
    base = re.sub(r"[^a-z0-9._-]+", "", local)
    base = re.sub(r"^[^a-z0-9]+", "", base)[:LOGIN_MAX]
    return base or "user"


def login_candidates(email: str) -> Iterator[str]:
    """Logins to try, in order: ``jdoe``, ``jdoe2``, ``jdoe3``, … (each at most 64 characters)."""
    base = login_base(email)
    yield base
    n = 2
    while True:
        suffix = str(n)
        yield base[: LOGIN_MAX - len(suffix)] + suffix
        n += 1


def slugify(name: str) -> str:
    """A group address's localpart from its name (``Physical Therapy`` → ``physical-therapy``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:LOGIN_MAX].strip("-") or "group"


def member_status(show: str | None) -> MemberStatus:
    """A member's status from their clinical presence (``USERS.presence_show``).

    ``chat`` is Available, ``dnd`` Busy, ``away``/``xa``/``offline`` Not
    Available; no presence ever recorded is None.
    """
    if not show:
        return MemberStatus.NONE
    if show == "chat":
        return MemberStatus.AVAILABLE
    if show == "dnd":
        return MemberStatus.BUSY
    return MemberStatus.NOT_AVAILABLE


#: DEVICES.status of a device logged out (its registration ended, or its wipe confirmed).
UNREGISTERED = "Unregistered"


def device_state(
    status: str | None,
    push_enabled: bool | None,
    wiped_at: object,
    confirmed_at: object = None,
) -> DeviceState:
    """A device's Status text from its DEVICES values.

    Wipe requested while a wipe is pending (requested, not yet confirmed by the
    device: also for a device that is logged out, which gets the wipe when it
    next connects); logged out when its status is Unregistered (never logged
    in, logged out, or wiped); otherwise active, with push notifications
    unless they were disabled (empty means enabled).
    """
    if wiped_at is not None and confirmed_at is None:
        return DeviceState.WIPE_REQUESTED
    if status in (None, "", UNREGISTERED):
        return DeviceState.LOGGED_OUT
    if push_enabled is False:
        return DeviceState.ACTIVE_NO_PUSH
    return DeviceState.ACTIVE_PUSH


# -- invitation statuses ---------------------------------------------------------------------


def next_status(status: InvitationStatus, event: InvitationEvent) -> InvitationStatus:
    """The status after ``event`` (the transition table :data:`INVITATION_TRANSITIONS`).

    Raises:
        InvalidTransitionError: The table has no such transition.
    """
    after = INVITATION_TRANSITIONS.get((status, event))
    if after is None:
        raise InvalidTransitionError(
            f"an invitation in status {status.value!r} cannot be {event.value}"
        )
    return after


# -- who may message whom ----------------------------------------------------------------------


def permits(permission: Permission, groups: Set[GroupId]) -> bool:
    """Whether a user in ``groups`` passes ``permission``."""
    if permission.mode is PermissionMode.ORGANISATION:
        return True
    if permission.mode is PermissionMode.NONE:
        return False
    return not permission.groups.isdisjoint(groups)


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """An active affiliation between two organisations and each side's permission."""

    permissions: Mapping[OrganisationId, Permission]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgGraph:
    """Organisations and their active affiliations: what the messaging rule needs.

    Attributes:
        kinds: Every organisation's kind.
        links: Active affiliations by the unordered pair of organisations.
    """

    kinds: Mapping[OrganisationId, OrgKind] = field(default_factory=dict)
    links: Mapping[frozenset[OrganisationId], Link] = field(default_factory=dict)

    def link(self, a: OrganisationId, b: OrganisationId) -> Link | None:
        """The active affiliation between ``a`` and ``b``, if any."""
        return self.links.get(frozenset((a, b)))

    def permission(self, of: OrganisationId, toward: OrganisationId) -> Permission:
        """``of``'s permission toward ``toward`` (no one without an active affiliation)."""
        link = self.link(of, toward)
        if link is None:
            return Permission(mode=PermissionMode.NONE)
        return link.permissions.get(of, Permission())

    def hospitals_of(self, org: OrganisationId) -> set[OrganisationId]:
        """The hospitals whose community ``org`` is in (itself, if a hospital)."""
        found = {org} if self.kinds.get(org) is OrgKind.HOSPITAL else set()
        for pair in self.links:
            if org in pair:
                (other,) = pair - {org}
                if self.kinds.get(other) is OrgKind.HOSPITAL:
                    found.add(other)
        return found

    def community(self, hospital: OrganisationId) -> set[OrganisationId]:
        """A hospital's community: itself and the organisations actively affiliated with it."""
        if self.kinds.get(hospital) is not OrgKind.HOSPITAL:
            return set()
        members = {hospital}
        for pair in self.links:
            if hospital in pair:
                members |= pair
        return members


def may_message(
    graph: OrgGraph,
    sender: tuple[OrganisationId, Set[GroupId]],
    recipient: tuple[OrganisationId, Set[GroupId]],
) -> bool:
    """Whether a user of ``sender[0]`` in groups ``sender[1]`` may message the recipient.

    The rule is symmetric (see the module docstring).
    """
    x, u_groups = sender
    y, v_groups = recipient
    if x == y:
        return True
    direct = graph.link(x, y)
    if direct is not None:
        return permits(direct.permissions.get(x, Permission()), u_groups) and permits(
            direct.permissions.get(y, Permission()), v_groups
        )
    for hospital in graph.hospitals_of(x) & graph.hospitals_of(y):
        # x == hospital or y == hospital would be a direct affiliation, handled above.
        if permits(graph.permission(x, hospital), u_groups) and permits(
            graph.permission(y, hospital), v_groups
        ):
            return True
    return False


def may_reach(graph: OrgGraph, x: OrganisationId, y: OrganisationId) -> bool:
    """Whether users of ``x`` and ``y`` could message each other with the right permissions."""
    if x == y or graph.link(x, y) is not None:
        return True
    return bool(graph.hospitals_of(x) & graph.hospitals_of(y))
