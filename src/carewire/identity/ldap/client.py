"""The LDAP client (RFC 4511) on bonsai: bind over TLS, paged searches, password checks.

Every connection is encrypted before anything is sent that matters: an
``ldaps://`` URL speaks TLS from the first byte, an ``ldap://`` URL must
succeed StartTLS (RFC 4513 §3) or the connection is refused. The server's
certificate is verified (``demand``) against the integration's CA file or
the system's CAs, and TLS below 1.2 is refused (``LDAPTLS_PROTOCOL_MIN``,
read by libldap when it starts). Every network wait has a timeout. Values
are read raw (bytes) so the engine can tell text from binary. Passwords go
to libldap and nowhere else: never to a log, never into an error message.
"""

from __future__ import annotations

import gc
import logging
import os
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import bonsai

from carewire.identity.ldap.engine import Entry
from carewire.identity.ldap.model import (
    LdapBindRefusedError,
    LdapError,
    LdapSettings,
    StampKind,
)

log = logging.getLogger(__name__)

# TLS 1.2 at least (libldap's "3.3"); read once by libldap, so set before the first connection.
os.environ.setdefault("LDAPTLS_PROTOCOL_MIN", "3.3")

#: Entries per page of a paged search (RFC 2696).
PAGE_SIZE = 500
#: Seconds a connection, a bind or one page of a search may take.
DEFAULT_TIMEOUT = 10.0
_SUBTREE = bonsai.LDAPSearchScope.SUBTREE


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupEntry:
    """A directory group: its name and its members' DNs (lower-case)."""

    dn: str
    name: str
    members: frozenset[str]


def _client(settings: LdapSettings, attributes: Sequence[str]) -> bonsai.LDAPClient:
    client = bonsai.LDAPClient(settings.url, tls=not settings.is_ldaps)
    client.set_cert_policy("demand")
    if settings.ca_file:
        client.set_ca_cert(settings.ca_file)
    client.set_raw_attributes(list(attributes))
    client.set_auto_page_acquire(True)
    return client


def _error(exc: Exception, settings: LdapSettings) -> LdapError:
    """A sentence an administrator can act on (no secret in it)."""
    if isinstance(exc, bonsai.AuthenticationError):
        return LdapBindRefusedError("the directory refused the bind DN or its password")
    if isinstance(exc, bonsai.TimeoutError | TimeoutError):
        return LdapError(f"{settings.url} did not answer in time")
    if isinstance(exc, bonsai.ConnectionError):
        detail = str(exc).split("(")[0].strip() or "connection refused"
        return LdapError(f"cannot reach {settings.url}: {detail}")
    if isinstance(exc, bonsai.NoSuchObjectError):
        return LdapError("the base DN does not exist on the server")
    if isinstance(exc, bonsai.InsufficientAccess):
        return LdapError("the bind DN may not read the entries")
    return LdapError(f"the directory answered: {exc}")


@asynccontextmanager
async def connect(
    settings: LdapSettings,
    secret: str,
    *,
    attributes: Sequence[str] = (),
    dn: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[LdapConnection]:
    """An open, bound connection (as ``dn``, the bind DN by default); closed afterwards.

    Raises:
        LdapError: The server is unreachable, TLS failed, or the bind was refused.
    """
    client = _client(settings, attributes)
    client.set_credentials("SIMPLE", user=dn or settings.bind_dn, password=secret)
    error: LdapError | None = None
    try:
        conn = await client.connect(is_async=True, timeout=timeout)
    except (bonsai.LDAPError, OSError) as exc:
        error = _error(exc, settings)
    if error is not None:
        _collect_quietly()
        raise error
    try:
        yield LdapConnection(conn, settings, timeout)
    finally:
        conn.close()


def _collect_quietly() -> None:
    """Free what a failed connect left behind without a ResourceWarning.

    COMPAT(#15): bonsai's asynchronous connect opens a socket pair it does not
    close when the connection fails; the garbage collector closes it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class LdapConnection:
    """Searches on one bound connection."""

    def __init__(self, conn: Any, settings: LdapSettings, timeout: float) -> None:
        self._conn = conn
        self._settings = settings
        self._timeout = timeout

    async def base_entry(self) -> None:
        """Read the base DN's entry (the status check: the bind works and the base exists).

        Raises:
            LdapError: It cannot be read.
        """
        try:
            found = await self._conn.search(
                self._settings.base_dn,
                bonsai.LDAPSearchScope.BASE,
                "(objectClass=*)",
                ["1.1"],
                timeout=self._timeout,
            )
        except (bonsai.LDAPError, OSError) as exc:
            raise _error(exc, self._settings) from None
        if not found:
            raise LdapError("the base DN does not exist on the server")

    async def people(self, *, since: str = "") -> AsyncIterator[list[Entry]]:
        """The entries of the user filter, a page at a time (changed since ``since`` if given).

        Raises:
            LdapError: The search failed.
        """
        s = self._settings
        query = self._since(s.user_filter, since)
        async for page in self._paged(s.base_dn, query, s.mapping.attributes()):
            yield [_entry(raw) for raw in page]

    def _since(self, query: str, since: str) -> str:
        """``query`` narrowed to entries changed after ``since`` ("" leaves it whole)."""
        stamp = self._settings.mapping.stamp
        if since and stamp is StampKind.MODIFY_TIMESTAMP:
            # Strictly newer (RFC 4515 has no ">"): the service stores a settled stamp.
            return f"(&{query}(!(modifyTimestamp<={since})))"
        if since and stamp is StampKind.USN_CHANGED and since.isdigit():
            return f"(&{query}(uSNChanged>={int(since) + 1}))"
        return query

    async def groups(self, *, since: str = "") -> list[GroupEntry]:
        """The groups of the group filter ([] when no group base is set), changed since ``since``.

        Raises:
            LdapError: The search failed.
        """
        s = self._settings
        if not s.group_base_dn:
            return []
        found: list[GroupEntry] = []
        attrs = [s.group_name_attribute, s.group_member_attribute]
        async for page in self._paged(s.group_base_dn, self._since(s.group_filter, since), attrs):
            for raw in page:
                entry = _entry(raw)
                names = entry.attributes.get(s.group_name_attribute.lower(), ())
                if not names:
                    continue
                members = entry.attributes.get(s.group_member_attribute.lower(), ())
                found.append(
                    GroupEntry(
                        dn=entry.dn,
                        name=names[0].decode("utf-8", "replace"),
                        members=frozenset(_dn_key(m.decode("utf-8", "replace")) for m in members),
                    )
                )
        return found

    async def _paged(
        self, base: str, query: str, attributes: list[str]
    ) -> AsyncIterator[list[Any]]:
        try:
            result = await self._conn.paged_search(
                base, _SUBTREE, query, attributes, timeout=self._timeout, page_size=PAGE_SIZE
            )
            page: list[Any] = []
            async for raw in result:
                page.append(raw)
                if len(page) >= PAGE_SIZE:
                    yield page
                    page = []
            if page:
                yield page
        except (bonsai.LDAPError, OSError) as exc:
            raise _error(exc, self._settings) from None


def _dn_key(dn: str) -> str:
    """A DN compared case- and space-insensitively (enough for the DNs a server returns)."""
    return ",".join(part.strip() for part in dn.lower().split(","))


def dn_key(dn: str) -> str:
    """The form in which DNs of users and group members are compared."""
    return _dn_key(dn)


def _entry(raw: Any) -> Entry:
    attributes: dict[str, list[bytes]] = {}
    for name, values in raw.items():
        if name.lower() == "dn":
            continue
        attributes[name.lower()] = [v if isinstance(v, bytes) else str(v).encode() for v in values]
    return Entry(dn=str(raw.dn), attributes=attributes)


async def check_password(
    settings: LdapSettings, dn: str, password: str, *, timeout: float = DEFAULT_TIMEOUT
) -> bool:
    """Whether ``password`` binds as ``dn`` (a simple bind over TLS; RFC 4513 §5.1.3).

    An empty password is refused here: a simple bind with none is an
    *unauthenticated* bind, which servers accept (RFC 4513 §5.1.2).

    Raises:
        LdapError: The server cannot be reached or TLS failed (not a wrong password).
    """
    if not password:
        return False
    try:
        async with connect(settings, password, dn=dn, timeout=timeout):
            return True
    except LdapBindRefusedError:
        return False
