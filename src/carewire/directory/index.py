"""The directory in memory, for the hot path: who may message whom, groups, wipe-pending devices.

Routing asks it on every stanza between two users, so every answer is a few
dictionary lookups. The directory service keeps it current: it applies each
change it makes once the change committed, and :meth:`DirectoryIndex.replace`
swaps in a whole new snapshot when the database is re-read (changes made by
another process, such as the CLI). Accounts without a directory profile
(system, bench and older accounts) are unknown here and never restricted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from carewire.directory.model import MESSAGE_REFUSED, GroupId, OrganisationId
from carewire.directory.policy import OrgGraph, may_message


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexedGroup:
    """What routing needs of a group.

    Attributes:
        id: Its id.
        organisation_id: Its organisation.
        name: Its name (the roster group).
        slug: Its address's localpart (``<slug>@groups.DOMAIN``).
        whole_group_messaging: Anyone of the organisation may message the group.
    """

    id: GroupId
    organisation_id: OrganisationId
    name: str
    slug: str
    whole_group_messaging: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The whole directory as routing sees it (read by the store in one go).

    Attributes:
        users: Each directory user's organisation, by login.
        names: Each directory user's display name ("First Last, Credentials"), by login.
        groups: Every group.
        members: Each group's members.
        graph: Organisations and active affiliations.
        org_names: Each organisation's name.
        wipe_pending: Devices (DEVICES names) whose wipe is pending.
    """

    users: Mapping[str, OrganisationId] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    groups: Iterable[IndexedGroup] = ()
    members: Mapping[GroupId, Iterable[str]] = field(default_factory=dict)
    graph: OrgGraph = field(default_factory=OrgGraph)
    org_names: Mapping[OrganisationId, str] = field(default_factory=dict)
    wipe_pending: Iterable[str] = ()


_NO_GROUPS: frozenset[GroupId] = frozenset()


class DirectoryIndex:
    """An in-memory snapshot of the directory with cheap lookups."""

    def __init__(self) -> None:
        self._org_of: dict[str, OrganisationId] = {}
        self._names: dict[str, str] = {}
        self._groups: dict[GroupId, IndexedGroup] = {}
        self._by_slug: dict[str, GroupId] = {}
        self._members: dict[GroupId, set[str]] = {}
        self._groups_of: dict[str, set[GroupId]] = {}
        self._graph = OrgGraph()
        self._org_names: dict[OrganisationId, str] = {}
        self._wipe_pending: set[str] = set()

    # -- reading --------------------------------------------------------------------------

    def has_profile(self, login: str) -> bool:
        """Whether ``login`` is a directory user."""
        return login in self._org_of

    def organisation_of(self, login: str) -> OrganisationId | None:
        """The user's organisation (None: not a directory user)."""
        return self._org_of.get(login)

    def name_of(self, login: str) -> str:
        """The user's "First Last" ("" when unknown)."""
        return self._names.get(login, "")

    def organisation_name(self, organisation_id: OrganisationId) -> str:
        """An organisation's name ("" when unknown)."""
        return self._org_names.get(organisation_id, "")

    def users_of(self, organisation_id: OrganisationId) -> set[str]:
        """The logins of an organisation's users."""
        return {login for login, org in self._org_of.items() if org == organisation_id}

    def groups_of(self, login: str) -> frozenset[GroupId]:
        """The groups the user is in."""
        return frozenset(self._groups_of.get(login, _NO_GROUPS))

    def group(self, group_id: GroupId) -> IndexedGroup | None:
        """A group by id."""
        return self._groups.get(group_id)

    def group_by_slug(self, slug: str) -> IndexedGroup | None:
        """A group by its address's localpart."""
        gid = self._by_slug.get(slug)
        return None if gid is None else self._groups.get(gid)

    def members_of(self, group_id: GroupId) -> frozenset[str]:
        """The group's members."""
        return frozenset(self._members.get(group_id, ()))

    def all_users(self) -> list[str]:
        """Every directory user's login."""
        return list(self._org_of)

    def all_groups(self) -> list[IndexedGroup]:
        """Every group."""
        return list(self._groups.values())

    @property
    def graph(self) -> OrgGraph:
        """Organisations and their active affiliations."""
        return self._graph

    def may_message(self, sender: str, recipient: str) -> bool:
        """Whether user ``sender`` may message user ``recipient`` (logins).

        True when either has no directory profile.
        """
        x = self._org_of.get(sender)
        y = self._org_of.get(recipient)
        if x is None or y is None or x == y:
            return True
        return may_message(
            self._graph,
            (x, self._groups_of.get(sender, _NO_GROUPS)),
            (y, self._groups_of.get(recipient, _NO_GROUPS)),
        )

    def refusal(self, sender: str, recipient: str) -> str | None:
        """The refusal's text ("You may not message users of <Org>"), or None when allowed."""
        if self.may_message(sender, recipient):
            return None
        org = self._org_of[recipient]
        return MESSAGE_REFUSED.format(org=self._org_names.get(org, "that organisation"))

    def is_wipe_pending(self, device: str) -> bool:
        """Whether the device (DEVICES name, ``login/resource``) must be wiped."""
        return device in self._wipe_pending

    # -- changing ---------------------------------------------------------------------------

    def replace(self, snapshot: Snapshot) -> None:
        """Swap in a whole new snapshot."""
        self._org_of = dict(snapshot.users)
        self._names = dict(snapshot.names)
        self._groups = {g.id: g for g in snapshot.groups}
        self._by_slug = {g.slug: g.id for g in self._groups.values()}
        self._members = {gid: set(m) for gid, m in snapshot.members.items()}
        self._groups_of = {}
        for gid, logins in self._members.items():
            for login in logins:
                self._groups_of.setdefault(login, set()).add(gid)
        self._graph = snapshot.graph
        self._org_names = dict(snapshot.org_names)
        self._wipe_pending = set(snapshot.wipe_pending)

    def set_user(self, login: str, organisation_id: OrganisationId, name: str) -> None:
        """Add or change a directory user."""
        self._org_of[login] = organisation_id
        self._names[login] = name

    def remove_user(self, login: str) -> None:
        """Forget a user and their memberships."""
        self._org_of.pop(login, None)
        self._names.pop(login, None)
        for gid in self._groups_of.pop(login, set()):
            self._members.get(gid, set()).discard(login)

    def set_group(self, group: IndexedGroup) -> None:
        """Add or change a group."""
        old = self._groups.get(group.id)
        if old is not None:
            self._by_slug.pop(old.slug, None)
        self._groups[group.id] = group
        self._by_slug[group.slug] = group.id
        self._members.setdefault(group.id, set())

    def remove_group(self, group_id: GroupId) -> None:
        """Forget a group and its memberships."""
        old = self._groups.pop(group_id, None)
        if old is not None:
            self._by_slug.pop(old.slug, None)
        for login in self._members.pop(group_id, set()):
            self._groups_of.get(login, set()).discard(group_id)

    def add_members(self, group_id: GroupId, logins: Iterable[str]) -> None:
        """Put users in a group."""
        members = self._members.setdefault(group_id, set())
        for login in logins:
            members.add(login)
            self._groups_of.setdefault(login, set()).add(group_id)

    def remove_members(self, group_id: GroupId, logins: Iterable[str]) -> None:
        """Take users out of a group."""
        members = self._members.get(group_id, set())
        for login in logins:
            members.discard(login)
            self._groups_of.get(login, set()).discard(group_id)

    def set_graph(self, graph: OrgGraph, org_names: Mapping[OrganisationId, str]) -> None:
        """Replace the organisations and their affiliations."""
        self._graph = graph
        self._org_names = dict(org_names)

    def set_wipe_pending(self, device: str, is_pending: bool) -> None:
        """Mark or clear a device's pending wipe."""
        if is_pending:
            self._wipe_pending.add(device)
        else:
            self._wipe_pending.discard(device)
