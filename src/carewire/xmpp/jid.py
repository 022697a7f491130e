"""XMPP addresses: parsing, PRECIS normalisation and comparison (RFC 7622).

A JID is ``[localpart@]domainpart[/resourcepart]``. Each part is enforced
with its RFC 7622 profile: the localpart with PRECIS UsernameCaseMapped
(RFC 8265 §3.3) plus the extra characters forbidden by RFC 7622 §3.3.1, the
resourcepart with PRECIS OpaqueString (RFC 8265 §4.2), the domainpart as an
IDNA U-label name (RFC 7622 §3.2) or an IP literal. Normalised JIDs compare
equal exactly when they address the same entity.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import NewType

from precis_i18n import get_profile

__all__ = [
    "JID",
    "BareJid",
    "FullJid",
    "InvalidJID",
    "normalize_domain",
    "normalize_localpart",
    "normalize_resource",
]

BareJid = NewType("BareJid", str)
FullJid = NewType("FullJid", str)

_MAX_PART_BYTES = 1023  # RFC 7622 §3.1
_MAX_INPUT_BYTES = 4 * _MAX_PART_BYTES  # refuse absurd input before running PRECIS on it
_LOCAL_FORBIDDEN = frozenset("\"&'/:<>@")  # RFC 7622 §3.3.1
_USERNAME = get_profile("UsernameCaseMapped")
_OPAQUE = get_profile("OpaqueString")
# ASCII fast paths, equivalent to the PRECIS profiles on ASCII input: the
# IdentifierClass allows printable ASCII except space, the FreeformClass
# allows space too; mapping is then just lower-casing for usernames.
_ASCII_LOCAL = re.compile(r"[!#-%(-.0-9;=?A-~]+")
_ASCII_RESOURCE = re.compile(r"[ -~]+")
_LDH_DOMAIN = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


class InvalidJID(ValueError):
    """The string is not a valid XMPP address (RFC 7622); the message says why."""


def _check_length(part: str, what: str) -> str:
    if len(part) > _MAX_PART_BYTES // 4 and len(part.encode()) > _MAX_PART_BYTES:
        raise InvalidJID(f"{what} longer than {_MAX_PART_BYTES} bytes")
    return part


def _precheck(s: str, what: str) -> None:
    if not s:
        raise InvalidJID(f"empty {what}")
    if len(s) > _MAX_INPUT_BYTES // 4 and len(s.encode("utf-8", "replace")) > _MAX_INPUT_BYTES:
        raise InvalidJID(f"{what} longer than {_MAX_PART_BYTES} bytes")


def normalize_localpart(s: str) -> str:
    """Enforce the localpart profile: UsernameCaseMapped without ``"&'/:<>@``.

    Raises:
        InvalidJID: empty, too long or containing disallowed characters.
    """
    _precheck(s, "localpart")
    if s.isascii() and _ASCII_LOCAL.fullmatch(s):
        return _check_length(s.lower(), "localpart")
    try:
        out: str = _USERNAME.enforce(s)
    except UnicodeEncodeError as exc:
        raise InvalidJID(f"invalid localpart {s!r}: {exc.reason}") from None
    bad = _LOCAL_FORBIDDEN.intersection(out)
    if bad:
        raise InvalidJID(f"localpart {s!r} contains forbidden {''.join(sorted(bad))!r}")
    return _check_length(out, "localpart")


def normalize_resource(s: str) -> str:
    """Enforce the resourcepart profile: OpaqueString (case and spaces preserved).

    Raises:
        InvalidJID: empty, too long or containing disallowed characters.
    """
    _precheck(s, "resourcepart")
    if s.isascii() and _ASCII_RESOURCE.fullmatch(s):
        return _check_length(s, "resourcepart")
    try:
        out: str = _OPAQUE.enforce(s)
    except UnicodeEncodeError as exc:
        raise InvalidJID(f"invalid resourcepart {s!r}: {exc.reason}") from None
    return _check_length(out, "resourcepart")


def normalize_domain(s: str) -> str:
    """Normalise a domainpart: IP literal, or lower-case IDNA name in U-labels.

    One trailing dot is removed (RFC 7622 §3.2); ``xn--`` labels are decoded.

    Raises:
        InvalidJID: empty, too long, not a valid host name or IP literal.
    """
    _precheck(s, "domainpart")
    if s[0] == "[":
        if s[-1] != "]" or "%" in s:
            raise InvalidJID(f"invalid IPv6 literal {s!r}")
        try:
            return f"[{ipaddress.IPv6Address(s[1:-1]).compressed}]"
        except ValueError:
            raise InvalidJID(f"invalid IPv6 literal {s!r}") from None
    if s[-1] == ".":
        s = s[:-1]
        if not s:
            raise InvalidJID("empty domainpart")
    if _IPV4.fullmatch(s):
        try:
            return str(ipaddress.IPv4Address(s))
        except ValueError:
            raise InvalidJID(f"invalid IPv4 literal {s!r}") from None
    if s.isascii():
        ascii_form = s.lower()
    else:
        try:  # nameprep (width and case mapping, NFKC) then punycode, per label
            ascii_form = s.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidJID(f"invalid internationalised domain {s!r}") from None
    if not _LDH_DOMAIN.fullmatch(ascii_form):
        raise InvalidJID(f"invalid domainpart {s!r}")
    if "xn--" in ascii_form:
        try:  # the codec also checks that each label round-trips through nameprep
            ulabels = ascii_form.encode("ascii").decode("idna")
        except UnicodeError:
            raise InvalidJID(f"invalid A-label in domainpart {s!r}") from None
        return _check_length(ulabels, "domainpart")
    return _check_length(ascii_form, "domainpart")


@dataclass(frozen=True, slots=True)
class JID:
    """A normalised XMPP address; build with :meth:`parse` or :meth:`make`.

    The constructor itself does not validate: it is for parts that are already
    normalised (e.g. taken from another JID).
    """

    localpart: str | None
    domain: str
    resource: str | None

    @classmethod
    def parse(cls, s: str) -> JID:
        """Split and normalise ``s`` (cached; PRECIS is slow).

        Raises:
            InvalidJID: the string is not a valid JID.
        """
        return _parse(s)

    @classmethod
    def make(cls, localpart: str | None, domain: str, resource: str | None = None) -> JID:
        """Validate and normalise each part (None for an absent part).

        Raises:
            InvalidJID: a part is invalid.
        """
        return cls(
            None if localpart is None else normalize_localpart(localpart),
            normalize_domain(domain),
            None if resource is None else normalize_resource(resource),
        )

    @property
    def bare(self) -> JID:
        """The same address without the resourcepart."""
        if self.resource is None:
            return self
        return JID(self.localpart, self.domain, None)

    @property
    def is_bare(self) -> bool:
        """Whether there is no resourcepart."""
        return self.resource is None

    @property
    def full(self) -> str:
        """The string form, ``[localpart@]domainpart[/resourcepart]``."""
        out = self.domain if self.localpart is None else f"{self.localpart}@{self.domain}"
        return out if self.resource is None else f"{out}/{self.resource}"

    def __str__(self) -> str:
        return self.full

    def with_resource(self, resource: str) -> JID:
        """The same bare address with ``resource`` (normalised) as its resourcepart.

        Raises:
            InvalidJID: the resource is invalid.
        """
        return JID(self.localpart, self.domain, normalize_resource(resource))


@functools.lru_cache(maxsize=65536)
def _parse(s: str) -> JID:
    # RFC 7622 §3.2: split on the first '/', then on the first '@' before it.
    # ('@' is forbidden in both localpart and domainpart, so the first or last
    # '@' give the same verdict.)
    head, slash, resource = s.partition("/")
    if slash and not resource:
        raise InvalidJID(f"empty resourcepart in {s!r}")
    local, at, domain = head.partition("@")
    if not at:
        local, domain = "", head
    elif not local:
        raise InvalidJID(f"empty localpart in {s!r}")
    if not domain:
        raise InvalidJID(f"empty domainpart in {s!r}")
    return JID(
        normalize_localpart(local) if at else None,
        normalize_domain(domain),
        normalize_resource(resource) if slash else None,
    )
