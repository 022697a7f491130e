"""What the kernel knows of federation (RFC 6120 server-to-server): the seams between its parts.

Theory of operation: three parts meet here, each behind a small protocol so
that none imports the others.

- :class:`RemoteRouter` is how the :class:`~carewire.core.router.Router`
  hands a stanza for another domain to the server-to-server manager (which
  owns the streams, the queue while a connection is made and the bounces).
  With federation off there is no remote router and such stanzas fail with
  ``remote-server-not-found``.
- :class:`FederationSettings` is the hospital's policy and its pinned peer
  certificates, kept by the directory of trusted domains (database, console,
  API, CLI) and read synchronously from its cache by the streams.
- :class:`FederationStatusSink` receives what the streams see per remote
  domain, so the console, the API and ``carewire s2s status`` can show it
  (written behind; never blocks a stream).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol
from xml.etree.ElementTree import Element

from carewire.xmpp.jid import JID

AuthMethod = Literal["certificate", "dialback"]
Direction = Literal["in", "out"]


class RemoteRouter(Protocol):
    """Sends stanzas to other XMPP domains."""

    async def send(self, stanza: Element, *, from_jid: JID, to_jid: JID) -> None:
        """Queue ``stanza`` for ``to_jid.domain`` (not ours); a failure bounces to the sender later.

        Raises :class:`~carewire.xmpp.errors.StanzaError` at once when the
        stanza cannot be sent at all (domain refused by policy, queue full).
        """
        ...


@dataclass(frozen=True, slots=True)
class FederationPolicy:
    """Who may federate with us, and how they must prove who they are."""

    # Partner domains; empty means open to any domain (the default, like Prosody's and ejabberd's).
    allow: frozenset[str] = frozenset()
    # Only certificate authentication (SASL EXTERNAL, XEP-0178); never Server Dialback.
    certificates_only: bool = False

    def permits(self, domain: str) -> bool:
        """Whether streams with ``domain`` are allowed at all.

        An allowed partner covers its sub-domains (``chat.partner`` rooms, its
        components): they are the partner's services, each still authenticated
        on its own stream (docs/federation.md "Our sub-domains").
        """
        if not self.allow:
            return True
        name = domain.lower()
        while name:
            if name in self.allow:
                return True
            name = name.partition(".")[2]
        return False


class FederationSettings(Protocol):
    """The policy and pinned certificates, from a cache (never awaits the database)."""

    def policy(self) -> FederationPolicy:
        """The current policy."""
        ...

    def pinned(self, domain: str) -> frozenset[str]:
        """SHA-256 fingerprints (lowercase hex, no colons) of certificates uploaded for ``domain``.

        A peer presenting one of these is authenticated for ``domain`` even when
        its certificate does not validate against the trust store or hospital CA.
        """
        ...

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after the policy or a pin changes (streams no longer allowed close)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainStatus:
    """One stream with a remote domain, as last seen by this node."""

    domain: str
    direction: Direction
    connected: bool
    auth: AuthMethod | None = None
    tls_version: str | None = None
    fingerprint: str | None = None  # SHA-256 of the peer's certificate, lowercase hex
    certificate_not_after: datetime | None = None
    since: datetime | None = None  # when the stream was established (or closed)
    last_error: str | None = None
    last_error_at: datetime | None = None
    queued: int = 0  # stanzas waiting for the stream (outgoing)
    stanzas_in: int = 0
    stanzas_out: int = 0
    node: str = field(default="")  # which Carewire node holds the stream (clusters)


class FederationStatusSink(Protocol):
    """Where the streams report their state."""

    def update(self, status: DomainStatus) -> None:
        """Record ``status`` (non-blocking; the implementation writes behind)."""
        ...
