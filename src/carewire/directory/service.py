"""The organisation directory's service: one object, a facet per subject.

``DirectoryService`` is built once by the composition root
(:mod:`carewire.assembly`, ``Assembly.directory``) on the process's one
database, and handed to the XMPP features through the feature context.
Its facets hold the operations (each takes a :class:`~carewire.directory.model.Caller`
that scopes it; another organisation's things are "not found" for an
organisation administrator, and auditors cannot write):

- :attr:`organisations` (:class:`~carewire.directory.organisations.Organisations`),
- :attr:`affiliations` (:class:`~carewire.directory.affiliations.Affiliations`),
- :attr:`users` (:class:`~carewire.directory.users.Users`),
- :attr:`pins` (:class:`~carewire.directory.pins.Pins`),
- :attr:`invitations` (:class:`~carewire.directory.invitations.Invitations`),
- :attr:`registration` (:class:`~carewire.directory.registration.Registration`),
- :attr:`groups` (:class:`~carewire.directory.groups.Groups`),
- :attr:`devices` (:class:`~carewire.directory.devices.Devices`),
- :attr:`synced` (:class:`~carewire.directory.synced.Synced`): batches from an identity
  integration (LDAP sync).

The hot path (who may message whom, a login's organisation and groups, a
group's members, wipe-pending devices) reads :attr:`index`, an in-memory
snapshot updated by every change made here and re-read by :meth:`reload`
(changes made by another process). Every change is announced, after its
transaction committed, to the listeners registered with :meth:`subscribe`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from argon2 import PasswordHasher

from carewire.clock import Clock
from carewire.core.accounts import AccountService
from carewire.datasets.service import DatasetService
from carewire.directory.affiliations import Affiliations
from carewire.directory.context import Context, Listener, ManagedFields
from carewire.directory.devices import Devices
from carewire.directory.groups import Groups
from carewire.directory.index import DirectoryIndex, Snapshot
from carewire.directory.invitations import Invitations
from carewire.directory.model import (
    DirectoryConfig,
    DirectoryEvent,
    MembershipChanged,
    PolicyChanged,
    UserChanged,
    UserDeleted,
)
from carewire.directory.organisations import Organisations
from carewire.directory.pins import Pins
from carewire.directory.registration import Registration
from carewire.directory.store import DirectoryStore
from carewire.directory.synced import Synced
from carewire.directory.users import Users
from carewire.mail import Mailer
from carewire.security.audit import AuditTrail
from carewire.security.console_auth import ConsoleAccounts

log = logging.getLogger(__name__)

#: Seconds between reloads asked for by logins unknown to the index (see ``reload_for``).
ON_DEMAND_RELOAD = 5.0


class DirectoryService:
    """Organisations, affiliations, users, PINs, invitations, groups and devices.

    Attributes:
        organisations: Hospitals and practices.
        affiliations: Affiliations, permissions and communities.
        users: Directory users.
        pins: PIN verification, changes and resets.
        invitations: User invitations.
        registration: Registration through invitation links.
        groups: Groups and their members.
        devices: User's Devices.
        synced: Batches of changes from an identity integration.
        index: The in-memory snapshot for the hot path.
        config: The settings.
    """

    def __init__(
        self,
        *,
        store: DirectoryStore,
        accounts: AccountService,
        datasets: DatasetService,
        console: ConsoleAccounts,
        audit: AuditTrail,
        mailer: Mailer,
        clock: Clock,
        config: DirectoryConfig,
        pin_hasher: PasswordHasher | None = None,
    ) -> None:
        """Build the facets on one shared context.

        Args:
            store: Where the directory lives (:mod:`carewire.storage.directory`).
            accounts: XMPP accounts (SCRAM keys; removing one ends its sessions).
            datasets: The dataset service (USERS and DEVICES records).
            console: Console accounts (organisation administrators get one).
            audit: The audit trail (every change is recorded).
            mailer: Sends invitations and PIN-reset links.
            clock: The clock.
            config: The settings and the base of mailed links.
            pin_hasher: argon2id hasher for PINs (its recommended costs by default).
        """
        self.index = DirectoryIndex()
        self.config = config
        self._last_on_demand = -ON_DEMAND_RELOAD
        self._ctx = Context(
            store=store,
            accounts=accounts,
            datasets=datasets,
            console=console,
            audit=audit,
            mailer=mailer,
            clock=clock,
            config=config,
            index=self.index,
            pin_hasher=pin_hasher or PasswordHasher(),
        )
        self.organisations = Organisations(self._ctx)
        self.affiliations = Affiliations(self._ctx)
        self.users = Users(self._ctx)
        self.pins = Pins(self._ctx)
        self.invitations = Invitations(self._ctx)
        self.registration = Registration(self._ctx)
        self.groups = Groups(self._ctx)
        self.devices = Devices(self._ctx)
        self.synced = Synced(self._ctx)

    def manage_fields(self, source: ManagedFields) -> None:
        """Let an identity integration own some users' profile fields (read-only here).

        ``source(login)`` names the fields it fills for that user; an update
        that changes one of them is refused with ``SyncedFieldError``.
        """
        self._ctx.managed.append(source)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every :data:`~carewire.directory.model.DirectoryEvent`.

        Listeners are awaited in registration order after the change's
        transaction committed; one that raises is logged and the others still
        run. The XMPP features use them to push roster changes and end
        sessions (disabled or deleted users, wiped devices) at once.
        """
        self._ctx.listeners.append(listener)

    async def _snapshot(self) -> Snapshot:
        snapshot = await self._ctx.store.snapshot.snapshot()
        return replace(snapshot, wipe_pending=await self.devices.pending_wipes())

    async def load(self) -> None:
        """Read the whole directory into :attr:`index` (at start)."""
        snapshot = await self._snapshot()
        self.index.replace(snapshot)
        log.info(
            "directory loaded: %d users, %d organisations",
            len(snapshot.users),
            len(snapshot.org_names),
        )

    async def reload(self) -> None:
        """Re-read the directory into :attr:`index` (every ``index_reload_interval``).

        Picks up changes made by another process (the CLI writes the database
        directly) and announces what it finds: users that appeared
        (:class:`UserChanged`) or vanished (:class:`UserDeleted`), membership
        differences (:class:`MembershipChanged`), and :class:`PolicyChanged`
        when organisations or affiliations changed.
        """
        index = self.index
        old_users = {login: index.organisation_of(login) for login in index.all_users()}
        old_members = {g.id: index.members_of(g.id) for g in index.all_groups()}
        old_graph = index.graph
        snapshot = await self._snapshot()
        index.replace(snapshot)
        events: list[DirectoryEvent] = []
        for login, org in old_users.items():
            if login not in snapshot.users and org is not None:
                events.append(UserDeleted(login=login, organisation_id=org))
        for login, org in snapshot.users.items():
            if old_users.get(login) != org:
                events.append(UserChanged(login=login, organisation_id=org))
        for group in snapshot.groups:
            new = index.members_of(group.id)
            old = old_members.get(group.id, frozenset())
            if new != old:
                events.append(
                    MembershipChanged(
                        group_id=group.id,
                        organisation_id=group.organisation_id,
                        added=tuple(sorted(new - old)),
                        removed=tuple(sorted(old - new)),
                    )
                )
        if snapshot.graph != old_graph:
            events.append(PolicyChanged())
        for event in events:
            await self._ctx.notify(event)

    async def reload_for(self, login: str) -> bool:
        """Reload now if ``login`` is unknown to the index and no reload ran lately.

        A user created by another process (``carewire demo``, ``carewire user
        add``) who logs in before the periodic reload would otherwise be
        unknown for up to ``index_reload_interval``: no directory contacts,
        no policy. Accounts that are not directory users ask too, so reloads
        caused this way run at most once per :data:`ON_DEMAND_RELOAD` seconds.

        Returns:
            Whether a reload ran.
        """
        if self.index.has_profile(login):
            return False
        now = self._ctx.clock.monotonic()
        if now - self._last_on_demand < ON_DEMAND_RELOAD:
            return False
        self._last_on_demand = now
        await self.reload()
        return True

    @property
    def mail_backlog(self) -> int:
        """Mail jobs (one per invitation request it mails) queued or running."""
        return self._ctx.jobs.pending

    async def drain(self) -> None:
        """Wait until the invitation mail queued so far has been sent."""
        await self._ctx.jobs.drain()

    async def close(self) -> None:
        """Send the queued mail, then stop the mail worker."""
        await self._ctx.jobs.close()

    def may_message(self, sender: str, recipient: str) -> bool:
        """Whether the user ``sender`` may message ``recipient`` (logins; from :attr:`index`).

        Users of the same organisation may; users of two organisations may
        when the organisations are affiliated, directly or in one hospital's
        community, and each passes their side's permission. Accounts without
        a directory profile are not restricted.
        """
        return self.index.may_message(sender, recipient)
