"""The organisation directory's storage (:class:`carewire.directory.store.DirectoryStore`).

Organisations, affiliations with their permissions, and the snapshot the
in-memory index is built from live here; profiles and PINs in
:mod:`.directory_users`, groups and invitations in :mod:`.directory_groups`.
:func:`build_directory_store` puts them together on one database. Every
write opens a named transaction, so the directory service can make several
stores' writes (and the account's, and the USERS record's) one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from carewire.directory.index import IndexedGroup, Snapshot
from carewire.directory.model import (
    Affiliation,
    AffiliationId,
    AffiliationStatus,
    GroupId,
    MessageExpiration,
    NameTakenError,
    Organisation,
    OrganisationId,
    OrganisationRef,
    OrganisationSettings,
    OrgKind,
    Permission,
    PermissionMode,
    RetentionUnit,
)
from carewire.directory.model.users import display_name
from carewire.directory.policy import Link, OrgGraph
from carewire.directory.store import DirectoryStore, NewAffiliation
from carewire.storage.database import Database
from carewire.storage.directory_groups import SqlGroupStore
from carewire.storage.directory_invitations import SqlInvitationStore
from carewire.storage.directory_users import SqlUserStore, like_pattern
from carewire.storage.tables_directory import (
    affiliation_permission_groups,
    affiliation_permissions,
    affiliations,
    directory_group_members,
    directory_groups,
    directory_users,
    organisations,
)

_O = organisations.c
_AF = affiliations.c
_AP = affiliation_permissions.c
_APG = affiliation_permission_groups.c
_ACTIVE = AffiliationStatus.ACTIVE.value
_PENDING = AffiliationStatus.PENDING.value


def _organisation(row: Any) -> Organisation:
    return Organisation(
        id=OrganisationId(int(row.id)),
        kind=OrgKind(row.kind),
        name=row.name,
        office_number=row.office_number,
        voice_number=row.voice_number,
        settings=OrganisationSettings(
            default_time_zone=row.default_time_zone,
            whole_org_messaging=bool(row.whole_org_messaging),
            non_user_messaging=bool(row.non_user_messaging),
            high_priority_sound_seconds=int(row.high_priority_sound_seconds),
            message_expiration=MessageExpiration(row.message_expiration),
            retention_value=row.retention_value,
            retention_unit=None
            if row.retention_unit is None
            else RetentionUnit(row.retention_unit),
            pin_length=int(row.pin_length),
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _organisation_values(org: Organisation) -> dict[str, object]:
    s = org.settings
    return {
        "kind": org.kind.value,
        "name": org.name,
        "name_key": org.name.lower(),
        "office_number": org.office_number,
        "voice_number": org.voice_number,
        "default_time_zone": s.default_time_zone,
        "whole_org_messaging": s.whole_org_messaging,
        "non_user_messaging": s.non_user_messaging,
        "high_priority_sound_seconds": s.high_priority_sound_seconds,
        "message_expiration": s.message_expiration.value,
        "retention_value": s.retention_value,
        "retention_unit": None if s.retention_unit is None else s.retention_unit.value,
        "pin_length": s.pin_length,
        "updated_at": org.updated_at,
    }


def _name_taken(name: str) -> NameTakenError:
    return NameTakenError(f"an organisation named {name!r} exists")


class SqlOrganisationStore:
    """:class:`carewire.directory.store.OrganisationStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def add(self, org: Organisation) -> Organisation:
        """Insert an organisation with a new id.

        Raises:
            NameTakenError: The name is taken (case-insensitive).
        """
        values = _organisation_values(org) | {"created_at": org.created_at}
        taken = select(_O.id).where(_O.name_key == org.name.lower())
        try:
            async with self._db.transaction("add_organisation") as txn:
                if (await txn.conn.execute(taken)).first() is not None:
                    raise _name_taken(org.name)
                result = await txn.conn.execute(insert(organisations).values(values))
        except IntegrityError:
            raise _name_taken(org.name) from None
        key = result.inserted_primary_key
        assert key is not None
        return Organisation(
            id=OrganisationId(int(key[0])),
            kind=org.kind,
            name=org.name,
            office_number=org.office_number,
            voice_number=org.voice_number,
            settings=org.settings,
            created_at=org.created_at,
            updated_at=org.updated_at,
        )

    async def get(self, organisation_id: int) -> Organisation | None:
        """One organisation."""
        async with self._db.reading("get_organisation") as conn:
            row = (
                await conn.execute(select(organisations).where(_O.id == organisation_id))
            ).first()
        return None if row is None else _organisation(row)

    async def list_all(self, ids: Iterable[int] | None = None) -> list[Organisation]:
        """Organisations (all, or those of ``ids``), by name."""
        query = select(organisations).order_by(_O.name_key)
        if ids is not None:
            query = query.where(_O.id.in_(sorted(set(ids))))
        async with self._db.reading("list_organisations") as conn:
            return [_organisation(r) for r in await conn.execute(query)]

    async def search(self, text: str, *, limit: int, exclude: int | None) -> list[OrganisationRef]:
        """Names containing ``text`` (case-insensitive), by name."""
        query = select(_O.id, _O.kind, _O.name).order_by(_O.name_key).limit(limit)
        if text.strip():
            query = query.where(_O.name_key.like(like_pattern(text.strip()), escape="\\"))
        if exclude is not None:
            query = query.where(_O.id != exclude)
        async with self._db.read("search_organisations") as conn:
            return [
                OrganisationRef(id=OrganisationId(int(r.id)), kind=OrgKind(r.kind), name=r.name)
                for r in await conn.execute(query)
            ]

    async def update(self, org: Organisation) -> Organisation:
        """Write every field.

        Raises:
            NameTakenError: The new name is taken.
        """
        taken = select(_O.id).where(_O.name_key == org.name.lower(), _O.id != org.id)
        stmt = update(organisations).where(_O.id == org.id).values(_organisation_values(org))
        try:
            async with self._db.transaction("update_organisation") as txn:
                if (await txn.conn.execute(taken)).first() is not None:
                    raise _name_taken(org.name)
                await txn.conn.execute(stmt)
        except IntegrityError:
            raise _name_taken(org.name) from None
        return org


# -- affiliations ---------------------------------------------------------------------------------

_AFF_COLUMNS = (
    _AF.id,
    _AF.inviter_id,
    _AF.invitee_id,
    _AF.status,
    _AF.expires_at,
    _AF.invited_by,
    _AF.created_at,
    _AF.accepted_at,
)


async def _permissions(conn: Any, ids: list[int]) -> dict[int, dict[OrganisationId, Permission]]:
    """Each affiliation's permissions by organisation."""
    out: dict[int, dict[OrganisationId, Permission]] = {i: {} for i in ids}
    if not ids:
        return out
    groups: dict[tuple[int, int], set[GroupId]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = await conn.execute(
            select(_APG.affiliation_id, _APG.organisation_id, _APG.group_id).where(
                _APG.affiliation_id.in_(chunk)
            )
        )
        for aff, org, gid in rows:
            groups.setdefault((int(aff), int(org)), set()).add(GroupId(int(gid)))
        rows = await conn.execute(
            select(_AP.affiliation_id, _AP.organisation_id, _AP.mode).where(
                _AP.affiliation_id.in_(chunk)
            )
        )
        for aff, org, mode in rows:
            out[int(aff)][OrganisationId(int(org))] = Permission(
                mode=PermissionMode(mode),
                groups=frozenset(groups.get((int(aff), int(org)), set())),
            )
    return out


def _affiliation(row: Any, permissions: dict[OrganisationId, Permission]) -> Affiliation:
    return Affiliation(
        id=AffiliationId(int(row.id)),
        inviter_id=OrganisationId(int(row.inviter_id)),
        invitee_id=OrganisationId(int(row.invitee_id)),
        status=AffiliationStatus(row.status),
        expires_at=row.expires_at,
        invited_by=row.invited_by,
        created_at=row.created_at,
        accepted_at=row.accepted_at,
        permissions=permissions,
    )


class SqlAffiliationStore:
    """:class:`carewire.directory.store.AffiliationStore` on SQLAlchemy Core."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every operation."""
        self._db = db

    async def _select(self, name: str, *where: Any) -> list[Affiliation]:
        async with self._db.reading(name) as conn:
            rows = (await conn.execute(select(*_AFF_COLUMNS).where(*where).order_by(_AF.id))).all()
            perms = await _permissions(conn, [int(r.id) for r in rows])
        return [_affiliation(r, perms[int(r.id)]) for r in rows]

    async def add(self, new: NewAffiliation) -> Affiliation:
        """Insert an affiliation (each side's permission: everyone)."""
        values = {
            "inviter_id": new.inviter_id,
            "invitee_id": new.invitee_id,
            "status": new.status.value,
            "token_hash": new.token_hash,
            "expires_at": new.expires_at,
            "invited_by": new.invited_by,
            "created_at": new.at,
            "accepted_at": new.at if new.status is AffiliationStatus.ACTIVE else None,
        }
        async with self._db.transaction("add_affiliation") as txn:
            key = (await txn.conn.execute(insert(affiliations).values(values))).inserted_primary_key
            assert key is not None
            aff_id = int(key[0])
        (found,) = await self._select("get_new_affiliation", _AF.id == aff_id)
        return found

    async def get(self, affiliation_id: int) -> Affiliation | None:
        """One affiliation with its permissions."""
        found = await self._select("get_affiliation", _AF.id == affiliation_id)
        return found[0] if found else None

    async def by_token(self, token_hash: str) -> Affiliation | None:
        """The pending affiliation whose token has this digest."""
        found = await self._select(
            "affiliation_by_token", _AF.token_hash == token_hash, _AF.status == _PENDING
        )
        return found[0] if found else None

    async def between(self, a: int, b: int) -> list[Affiliation]:
        """The pending and active affiliations between two organisations."""
        pair = or_(
            (_AF.inviter_id == a) & (_AF.invitee_id == b),
            (_AF.inviter_id == b) & (_AF.invitee_id == a),
        )
        return await self._select("affiliations_between", pair, _AF.status.in_((_PENDING, _ACTIVE)))

    async def of_organisation(self, organisation_id: int) -> list[Affiliation]:
        """The pending and active affiliations an organisation is in."""
        side = or_(_AF.inviter_id == organisation_id, _AF.invitee_id == organisation_id)
        return await self._select("affiliations_of", side, _AF.status.in_((_PENDING, _ACTIVE)))

    async def active(self) -> list[Affiliation]:
        """Every active affiliation."""
        return await self._select("active_affiliations", _AF.status == _ACTIVE)

    async def activate(self, affiliation_id: int, at: datetime) -> None:
        """Make it active; its token dies."""
        stmt = (
            update(affiliations)
            .where(_AF.id == affiliation_id)
            .values(status=_ACTIVE, accepted_at=at, token_hash=None)
        )
        async with self._db.transaction("activate_affiliation") as txn:
            await txn.conn.execute(stmt)

    async def decline(self, affiliation_id: int, at: datetime) -> None:
        """Make it declined; its token dies."""
        stmt = (
            update(affiliations)
            .where(_AF.id == affiliation_id)
            .values(status=AffiliationStatus.DECLINED.value, token_hash=None)
        )
        async with self._db.transaction("decline_affiliation") as txn:
            await txn.conn.execute(stmt)

    async def delete(self, affiliation_id: int) -> None:
        """Delete it with its permissions (cascade)."""
        async with self._db.transaction("delete_affiliation") as txn:
            await txn.conn.execute(delete(affiliations).where(_AF.id == affiliation_id))

    async def set_permission(
        self, affiliation_id: int, organisation_id: int, permission: Permission
    ) -> None:
        """Replace one side's permission."""
        side = (_AP.affiliation_id == affiliation_id) & (_AP.organisation_id == organisation_id)
        gside = (_APG.affiliation_id == affiliation_id) & (_APG.organisation_id == organisation_id)
        async with self._db.transaction("set_affiliation_permission") as txn:
            await txn.conn.execute(delete(affiliation_permission_groups).where(gside))
            await txn.conn.execute(delete(affiliation_permissions).where(side))
            await txn.conn.execute(
                insert(affiliation_permissions).values(
                    affiliation_id=affiliation_id,
                    organisation_id=organisation_id,
                    mode=permission.mode.value,
                )
            )
            if permission.groups:
                await txn.conn.execute(
                    insert(affiliation_permission_groups),
                    [
                        {
                            "affiliation_id": affiliation_id,
                            "organisation_id": organisation_id,
                            "group_id": gid,
                        }
                        for gid in sorted(permission.groups)
                    ],
                )


class SqlSnapshotStore:
    """The whole directory for the in-memory index, read in a few queries."""

    def __init__(self, db: Database, affiliations: SqlAffiliationStore) -> None:
        """Use ``db``; active affiliations through ``affiliations``."""
        self._db = db
        self._affiliations = affiliations

    async def snapshot(self) -> Snapshot:
        """Users, groups, memberships, organisations and active affiliations."""
        d, g, m = directory_users.c, directory_groups.c, directory_group_members.c
        async with self._db.read("directory_snapshot") as conn:
            users = (
                await conn.execute(
                    select(d.login, d.organisation_id, d.first_name, d.last_name, d.profile)
                )
            ).all()
            groups = (
                await conn.execute(
                    select(g.id, g.organisation_id, g.name, g.slug, g.whole_group_messaging)
                )
            ).all()
            members = (await conn.execute(select(m.group_id, m.login))).all()
            orgs = (await conn.execute(select(_O.id, _O.kind, _O.name))).all()
        by_group: dict[GroupId, list[str]] = {}
        for gid, login in members:
            by_group.setdefault(GroupId(int(gid)), []).append(login)
        links = {
            frozenset((a.inviter_id, a.invitee_id)): Link(permissions=dict(a.permissions))
            for a in await self._affiliations.active()
        }
        return Snapshot(
            users={r.login: OrganisationId(int(r.organisation_id)) for r in users},
            names={
                r.login: display_name(r.first_name, r.last_name, _credentials(r.profile))
                for r in users
            },
            groups=[
                IndexedGroup(
                    id=GroupId(int(r.id)),
                    organisation_id=OrganisationId(int(r.organisation_id)),
                    name=r.name,
                    slug=r.slug,
                    whole_group_messaging=bool(r.whole_group_messaging),
                )
                for r in groups
            ],
            members=by_group,
            graph=OrgGraph(
                kinds={OrganisationId(int(r.id)): OrgKind(r.kind) for r in orgs}, links=links
            ),
            org_names={OrganisationId(int(r.id)): r.name for r in orgs},
        )


def build_directory_store(db: Database) -> DirectoryStore:
    """Every directory store, backed by ``db``."""
    affiliation_store = SqlAffiliationStore(db)
    return DirectoryStore(
        db=db,
        organisations=SqlOrganisationStore(db),
        users=SqlUserStore(db),
        groups=SqlGroupStore(db),
        invitations=SqlInvitationStore(db),
        affiliations=affiliation_store,
        snapshot=SqlSnapshotStore(db, affiliation_store),
    )


def _credentials(profile_json: str) -> str:
    """The Credentials field of a stored profile ("" when absent or unreadable)."""
    try:
        found = json.loads(profile_json).get("credentials", "")
    except (ValueError, AttributeError):
        return ""
    return found if isinstance(found, str) else ""
