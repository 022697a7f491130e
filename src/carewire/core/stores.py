"""Shapes of the persistent stores the kernel and features ask for.

Features never import :mod:`carewire.storage`; they receive objects that
satisfy these protocols through the feature context (Prosody's "storage asked
for by shape"). :mod:`carewire.storage` implements them on SQLite and
PostgreSQL. All timestamps are timezone-aware UTC ``datetime`` objects.
Logins are normalised localparts (RFC 7622 UsernameCaseMapped); contacts and
blocked items are JID strings (bare unless stated).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Subscription(StrEnum):
    """Roster subscription states (RFC 6121 §2.1.2.5)."""

    NONE = "none"
    TO = "to"
    FROM = "from"
    BOTH = "both"


class LoginOutcome(StrEnum):
    """Outcome of one login attempt, as written to the login audit."""

    SUCCESS = "success"
    FAILURE = "failure"  # wrong password or unknown account
    DELAYED = "delayed"  # refused: inside the wait after repeated failures
    LOCKED = "locked"  # refused: the account is locked
    DISABLED = "disabled"  # refused: an administrator disabled login ("Can Login")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScramCredential:
    """Salted SCRAM keys for one mechanism (RFC 5802 §3); never the password."""

    mechanism: str  # "SCRAM-SHA-1" or "SCRAM-SHA-256"
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A local user account."""

    login: str
    first_name: str = ""
    last_name: str = ""
    created_at: datetime
    failed_logins: int = 0
    last_failed_at: datetime | None = None
    is_locked: bool = False
    is_disabled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAccount:
    """What it takes to create an account."""

    login: str
    credentials: Sequence[ScramCredential]
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterItem:
    """One roster item (RFC 6121 §2.1.2)."""

    contact: str  # bare JID
    name: str | None = None
    subscription: Subscription = Subscription.NONE
    is_pending_out: bool = False  # we asked to subscribe; the ask='subscribe' flag
    is_approved: bool = False  # pre-approved inbound subscription (RFC 6121 §3.4)
    groups: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflineMessage:
    """A stanza stored for a user who had no available resource."""

    id: int
    owner: str
    stanza: str  # serialised XML of the stanza, with its delay stamp already added
    stamp: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldMessage:
    """A stanza held for a busy user (interruption control), delivered when they are free."""

    id: int
    owner: str
    stanza: str  # serialised XML of the stanza as it would have been delivered
    stamp: datetime
    reason: str  # urgent-alert or dnd


class BusyKind(StrEnum):
    """What a ``busy_periods`` row is (its stored ``kind``)."""

    DND = "dnd"  # a timed Do Not Disturb; ``note`` is its reason
    ALERT = "alert"  # an unanswered Urgent or Critical alert; ``ref`` is its id
    RELEASE = "release"  # an administrator asked for the held messages now; ``until`` is when


@dataclass(frozen=True, slots=True, kw_only=True)
class BusyPeriod:
    """What keeps a user busy, kept across restarts (interruption control), or a request.

    ``kind`` says which (:class:`BusyKind`): a timed Do Not Disturb, an
    unanswered urgent alert, or an administrator's request to release now.
    """

    login: str
    kind: BusyKind
    until: datetime
    ref: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginAttempt:
    """One row of the login audit: who, when, from where, outcome."""

    at: datetime
    login: str
    remote_ip: str
    transport: str  # "c2s", "c2s-tls", "websocket", …
    mechanism: str
    outcome: LoginOutcome
    reason: str = ""


class AccountStore(Protocol):
    """Accounts, their SCRAM credentials and their failed-login state."""

    async def create(self, account: NewAccount) -> Account:
        """Create an account; raises ``ConflictError`` if the login exists."""

    async def create_many(self, accounts: Iterable[NewAccount]) -> tuple[int, list[str]]:
        """Create many accounts in one transaction; returns (created, skipped existing logins)."""

    async def get(self, login: str) -> Account | None:
        """The account, or None."""

    async def exists(self, login: str) -> bool:
        """Whether the account exists."""

    async def existing(self, logins: Sequence[str]) -> set[str]:
        """Which of ``logins`` exist."""

    async def list(self, *, offset: int = 0, limit: int | None = None) -> list[Account]:
        """Accounts ordered by login."""

    async def count(self) -> int:
        """Number of accounts."""

    async def remove(self, login: str) -> bool:
        """Delete the account and everything it owns; False if it did not exist."""

    async def get_credential(self, login: str, mechanism: str) -> ScramCredential | None:
        """The stored SCRAM keys for ``mechanism``, or None."""

    async def get_for_login(
        self, login: str, mechanism: str
    ) -> tuple[Account | None, ScramCredential | None]:
        """The account and its keys for ``mechanism``, in one round trip (the login path)."""

    async def set_credentials(self, login: str, credentials: Sequence[ScramCredential]) -> None:
        """Replace all SCRAM credentials; raises ``NotFoundError`` for unknown logins."""

    async def record_failure(self, login: str, at: datetime, *, lock_after: int) -> Account:
        """Count one failed login; locks the account when the count reaches ``lock_after``."""

    async def reset_failures(self, login: str) -> None:
        """Clear the failed-login counter after a success (no write if already zero)."""

    async def set_disabled(self, login: str, is_disabled: bool) -> bool:
        """Disable or enable login ("Can Login"); False if the account does not exist."""

    async def disabled(self, logins: Sequence[str]) -> set[str]:
        """Which of ``logins`` are disabled (any number may be asked)."""

    async def unlock(self, login: str) -> bool:
        """Unlock and clear the counter; False if the account does not exist."""


class RosterStore(Protocol):
    """Rosters with versioning (RFC 6121 §2.6) and pending inbound subscriptions."""

    async def get_roster(self, owner: str) -> tuple[int, list[RosterItem]]:
        """(version, items); version is 0 for an empty, never-changed roster."""

    async def get_item(self, owner: str, contact: str) -> RosterItem | None:
        """One item or None."""

    async def set_item(self, owner: str, item: RosterItem) -> int:
        """Insert or replace the item; returns the new roster version."""

    async def remove_item(self, owner: str, contact: str) -> int | None:
        """Remove the item; returns the new version, or None if there was none."""

    async def add_pending_in(self, owner: str, contact: str, stanza: str) -> None:
        """Remember an inbound subscription request (stanza XML) until answered."""

    async def remove_pending_in(self, owner: str, contact: str) -> bool:
        """Forget an inbound request; True if there was one."""

    async def list_pending_in(self, owner: str) -> list[tuple[str, str]]:
        """Pending inbound requests as (contact, stanza XML)."""


class OfflineStore(Protocol):
    """Messages kept for users without an available resource (XEP-0160)."""

    async def store(self, owner: str, stanza: str, *, stamp: datetime, expires_at: datetime) -> int:
        """Persist one message durably; returns its id. Raises NotFoundError for unknown owners."""

    async def fetch(self, owner: str, *, now: datetime) -> list[OfflineMessage]:
        """Unexpired messages for ``owner``, oldest first (not removed)."""

    async def delete(self, owner: str, ids: Sequence[int]) -> None:
        """Remove delivered messages."""

    async def count(self, owner: str) -> int:
        """Number of stored messages for ``owner``."""

    async def owners(self) -> set[str]:
        """Logins that have at least one stored message."""

    async def purge_expired(self, now: datetime) -> int:
        """Delete messages whose ``expires_at`` has passed; returns how many."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryEntry:
    """A message still to expire (docs/retention.md): what telling its clients needs.

    Attributes:
        uuid: The server's stanza id (the MESSAGES record's ``uuid``).
        expires_at: When it expires (its time plus the sender's organisation's setting).
        kind: ``chat`` (two people) or ``groupchat`` (a room).
        sender: The sender's bare JID; None for a system message.
        peer: The recipient's bare JID, or the room's.
        client_id: The ``<origin-id/>`` or ``id`` the sender gave it (chat only).
    """

    uuid: str
    expires_at: datetime
    kind: str
    sender: str | None
    peer: str
    client_id: str | None = None


class ExpiryStore(Protocol):
    """The queue of messages still to expire, ordered by their expiry."""

    async def add_many(self, entries: Sequence[ExpiryEntry]) -> None:
        """Queue messages (joins a transaction the task holds; a known uuid is left alone)."""

    async def due(self, now: datetime, *, limit: int) -> list[ExpiryEntry]:
        """At most ``limit`` entries expired at ``now``, soonest first."""

    async def next_at(self) -> datetime | None:
        """The earliest expiry queued, or None."""

    async def remove(self, uuids: Sequence[str]) -> None:
        """Forget entries (once expired)."""


class HeldStore(Protocol):
    """Messages held for busy users (docs/coverage.md), kept until released."""

    async def hold(self, owner: str, stanza: str, *, stamp: datetime, reason: str) -> int:
        """Persist one message durably; returns its id. Raises NotFoundError for unknown owners."""

    async def fetch(self, owner: str) -> list[HeldMessage]:
        """The messages held for ``owner``, oldest first (not removed)."""

    async def delete(self, owner: str, ids: Sequence[int]) -> None:
        """Remove released messages."""

    async def owners(self) -> dict[str, int]:
        """Logins with held messages, and how many each."""


class BusyStore(Protocol):
    """Busy periods and release requests (docs/coverage.md), one row per (login, kind, ref)."""

    async def put(self, periods: Sequence[BusyPeriod]) -> None:
        """Add or replace periods (a known (login, kind, ref) gets the new until and note)."""

    async def remove(self, *, kind: BusyKind, ref: str = "", login: str | None = None) -> None:
        """Remove the periods of ``kind`` and ``ref``: of ``login``, or of everyone (None)."""

    async def remove_ended(self, now: datetime) -> int:
        """Remove the ``dnd`` and ``alert`` periods that ended by ``now``; returns how many."""

    async def of(self, login: str) -> list[BusyPeriod]:
        """The periods and requests of ``login``."""

    async def all(self) -> list[BusyPeriod]:
        """Every period and request (read at start)."""

    async def take(self, kind: BusyKind) -> list[BusyPeriod]:
        """Remove and return every row of ``kind`` (release requests)."""


class VCardStore(Protocol):
    """vCard-temp documents (XEP-0054)."""

    async def get(self, owner: str) -> str | None:
        """The stored ``<vCard/>`` XML or None."""

    async def set(self, owner: str, xml: str) -> None:
        """Replace the vCard."""


class PrivateStore(Protocol):
    """Private XML storage (XEP-0049), keyed by ``{namespace}localname``."""

    async def get(self, owner: str, key: str) -> str | None:
        """The stored element XML or None."""

    async def set(self, owner: str, key: str, xml: str) -> None:
        """Replace the element stored under ``key``."""

    async def get_all(self, key: str) -> dict[str, str]:
        """Every owner's element stored under ``key`` (one read, for start-up caches)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PepNode:
    """One node of an account's PEP service (XEP-0163); ``config`` is its JSON configuration."""

    owner: str
    node: str
    config: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PepItem:
    """One persistent item of a PEP node (XEP-0223); ``payload`` is its serialised XML."""

    item_id: str
    payload: str
    publisher: str
    published_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PepPublished:
    """What a publish did: whether it created the node, and the items it pushed out."""

    config: str  # the node's configuration after the publish
    created: bool
    evicted: tuple[str, ...] = ()


class PepStore(Protocol):
    """PEP nodes and items (XEP-0163 with XEP-0223 persistence)."""

    async def get_node(self, owner: str, node: str) -> PepNode | None:
        """The node or None."""

    async def list_nodes(self, owner: str) -> list[PepNode]:
        """Every node of ``owner``."""

    async def nodes_named(self, node: str) -> list[PepNode]:
        """Every account's node called ``node`` (policy sweeps)."""

    async def create_node(self, owner: str, node: str, config: str) -> None:
        """Create a node; ``ConflictError`` if it exists, ``NotFoundError`` without account."""

    async def set_config(self, owner: str, node: str, config: str, *, max_items: int) -> list[str]:
        """Replace the configuration and trim to ``max_items``; the ids removed."""

    async def delete_node(self, owner: str, node: str) -> bool:
        """Delete the node and its items; False if there was none."""

    async def publish(
        self, owner: str, node: str, item: PepItem, *, config: str, max_items: int
    ) -> PepPublished:
        """Store ``item`` (replacing one of the same id) as the newest, creating the node
        with ``config`` if needed and keeping at most ``max_items``; ``NotFoundError``
        without account."""

    async def items(
        self, owner: str, node: str, *, ids: Sequence[str] | None = None, limit: int | None = None
    ) -> list[PepItem]:
        """Items newest first, only ``ids`` if given, at most ``limit``."""

    async def retract(self, owner: str, node: str, item_id: str) -> bool:
        """Remove one item; False if there was none."""

    async def purge(self, owner: str, node: str) -> None:
        """Remove every item of the node."""

    async def last_items(
        self, owners: Sequence[str], nodes: Sequence[str]
    ) -> list[tuple[PepNode, PepItem]]:
        """The last published item of each of ``nodes`` of each of ``owners`` that has one."""


class BlockingStore(Protocol):
    """Block lists (XEP-0191)."""

    async def list(self, owner: str) -> list[str]:
        """Blocked JIDs, sorted."""

    async def owners(self) -> set[str]:
        """Logins that block at least one JID."""

    async def add(self, owner: str, jids: Sequence[str]) -> None:
        """Block JIDs (idempotent)."""

    async def remove(self, owner: str, jids: Sequence[str]) -> None:
        """Unblock JIDs (idempotent)."""

    async def clear(self, owner: str) -> None:
        """Unblock everything."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRoom:
    """A persistent multi-user chat room (XEP-0045) as kept across restarts."""

    name: str  # the room JID's localpart (the service is chat.DOMAIN)
    config: str  # JSON object of the room configuration (the feature owns its keys)
    subject: str = ""
    subject_by: str = ""  # the nickname (or empty: the room) that set the subject
    affiliations: dict[str, str] = field(default_factory=dict)  # bare JID -> affiliation


class MucStore(Protocol):
    """Persistent rooms of the multi-user chat service (XEP-0045)."""

    async def rooms(self) -> list[StoredRoom]:
        """Every stored room, ordered by name."""

    async def save(self, room: StoredRoom) -> None:
        """Insert or replace the room, its subject and all of its affiliations."""

    async def delete(self, name: str) -> bool:
        """Forget the room and its affiliations; False if it was not stored."""


class LoginAuditStore(Protocol):
    """The durable record of every login success and failure."""

    async def append_many(self, attempts: Sequence[LoginAttempt]) -> None:
        """Append attempts in one transaction."""

    async def query(
        self, *, login: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[LoginAttempt]:
        """Most recent first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FastRecord:
    """XEP-0484 FAST token seeds of one account's client (see :mod:`carewire.core.fast`)."""

    owner: str
    agent_id: str
    mechanism: str
    current_seed: bytes | None = None
    current_expires_at: datetime | None = None
    current_count: int = 0
    new_seed: bytes | None = None
    new_expires_at: datetime | None = None
    retired_seed: bytes | None = None
    updated_at: datetime


class FastTokenStore(Protocol):
    """The FAST token seeds, one record per account and client."""

    async def get(self, owner: str, agent_id: str) -> FastRecord | None:
        """The record of one client, or None."""

    async def put(self, record: FastRecord) -> None:
        """Insert or replace the record of ``(owner, agent_id)``."""

    async def delete(self, owner: str, agent_id: str) -> bool:
        """Forget one client's tokens; False if there were none."""

    async def delete_owner(self, owner: str) -> int:
        """Forget every client's tokens of an account; how many clients had some."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stores:
    """Everything persistent the kernel and features may use."""

    accounts: AccountStore
    roster: RosterStore
    offline: OfflineStore
    held: HeldStore
    busy: BusyStore
    vcards: VCardStore
    private: PrivateStore
    blocking: BlockingStore
    login_audit: LoginAuditStore
    muc: MucStore
    expiry: ExpiryStore
    pep: PepStore
    fast: FastTokenStore
