"""scim2-server's storage interface on the organisation directory, for one token.

Theory of operation. scim2-server validates a request, evaluates its ETag
preconditions, applies a PATCH or PUT to the resource :meth:`DirectoryBackend.get`
returned, and hands the whole new state to :meth:`~DirectoryBackend.update`.
This class turns that state into directory calls (:class:`DirectoryService`,
made as the token's :class:`~carewire.directory.model.Caller`, so every write
is scoped to the token's organisation and recorded in the audit trail as
``scim:<organisation>/<token>``) and link writes, then reads the result back.
Reads and searches use the SCIM store's joined queries; a filter the store
cannot evaluate is matched in memory by scim2-models over at most
:data:`~carewire.identity.scim.model.MAX_SCANNED_USERS` users.

Directory errors become SCIM errors here (:func:`scim_errors`): a taken
e-mail address or ``userName`` is 409 ``uniqueness``, a bad field 400
``invalidValue``, another organisation's resource 404.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

from scim2_models import (
    ConflictException,
    InvalidValueException,
    MutabilityException,
    NotFoundException,
    NotImplementedException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    SearchRequest,
    UniquenessException,
)
from scim2_server.storage import AsyncScimStorage, SearchPage

from carewire.clock import Clock
from carewire.directory.model import (
    Caller,
    DirectoryUser,
    EmailTakenError,
    GroupId,
    InvalidFieldError,
    LastAdminError,
    LoginTakenError,
    NameTakenError,
    NewUser,
    UnknownGroupError,
    UnknownUserError,
    UserUpdate,
)
from carewire.directory.policy import check_login
from carewire.directory.service import DirectoryService
from carewire.errors import ConflictError, ValidationError
from carewire.identity.scim import mapping
from carewire.identity.scim.model import (
    ENTERPRISE_SCHEMA,
    MAX_SCANNED_USERS,
    GroupLink,
    ScimToken,
    UserLink,
)
from carewire.identity.scim.query import UserSearch, user_condition, user_sort
from carewire.identity.scim.store import ScimStore, StoredUser

log = logging.getLogger(__name__)


@contextlib.contextmanager
def scim_errors() -> Iterator[None]:
    """Raise the SCIM error (RFC 7644 §3.12) of a directory error."""
    try:
        yield
    except mapping.MappingError as exc:
        raise InvalidValueException(detail=str(exc)) from None
    except InvalidFieldError as exc:
        attribute = mapping.PROFILE_ATTRIBUTES.get(exc.field or "", exc.field or "")
        raise InvalidValueException(detail=f"{attribute}: {exc.message}") from None
    except (EmailTakenError, NameTakenError) as exc:
        raise UniquenessException(detail=exc.message) from None
    except LastAdminError as exc:
        raise ConflictException(detail=exc.message) from None
    except ValidationError as exc:
        raise InvalidValueException(detail=exc.message) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendServices:
    """What every request's backend shares: the directory, the store, the clock, the domain."""

    directory: DirectoryService
    store: ScimStore
    clock: Clock
    domain: str
    user_model: type[Resource[Any]]
    group_model: type[Resource[Any]]


class DirectoryBackend(AsyncScimStorage):
    """The token's organisation's users and groups, as scim2-server's storage."""

    def __init__(self, services: BackendServices, token: ScimToken, caller: Caller) -> None:
        """Serve ``token``'s organisation, acting as ``caller``."""
        self._s = services
        self._token = token
        self._org = token.organisation_id
        self._caller = caller

    # -- reading ---------------------------------------------------------------------------

    def _user_model(self, stored: StoredUser) -> Resource[Any]:
        body = mapping.user_resource(stored, domain=self._s.domain)
        return self._s.user_model.model_validate(body)

    async def _stored_user(self, resource_id: str) -> StoredUser:
        stored = await self._s.store.user(self._org, resource_id.strip().lower())
        if stored is None or stored.user.login != resource_id:
            raise NotFoundException(detail=f"no user {resource_id!r}")
        return stored

    async def _group_body(self, resource_id: str) -> dict[str, Any]:
        group_id = int(resource_id) if resource_id.isdigit() else -1
        found = await self._s.store.groups(self._org, [group_id])
        if not found:
            raise NotFoundException(detail=f"no group {resource_id!r}")
        return mapping.group_resource(found[0])

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        """One resource of the organisation (404 for anything else)."""
        if resource_type.name == "Group":
            return self._s.group_model.model_validate(await self._group_body(resource_id))
        return self._user_model(await self._stored_user(resource_id))

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """One page of the organisation's users or groups matching the search."""
        if len(resource_types) != 1:
            raise NotImplementedException(detail="search one resource type: /Users or /Groups")
        if resource_types[0].name == "Group":
            groups = await self._s.store.groups(self._org)
            found = [self._s.group_model.model_validate(mapping.group_resource(g)) for g in groups]
            return _page_in_memory(found, search_request)
        return await self._search_users(search_request)

    async def _search_users(self, search_request: SearchRequest[Any]) -> SearchPage:
        scim_filter = search_request.filter
        condition = None if scim_filter is None else user_condition(scim_filter.ast)
        sort_by = None if search_request.sort_by is None else str(search_request.sort_by)
        sort = user_sort(sort_by)
        offset = search_request.start_index_0 or 0
        count = search_request.count if search_request.count is not None else MAX_SCANNED_USERS
        if sort is not None and (scim_filter is None or condition is not None):
            descending = search_request.sort_order == SearchRequest.SortOrder.descending
            rows, total = await self._s.store.search_users(
                UserSearch(
                    organisation_id=self._org,
                    condition=condition,
                    sort=sort,
                    is_descending=descending and sort_by is not None,
                    offset=offset,
                    limit=count,
                )
            )
            return SearchPage(total, [self._user_model(r) for r in rows])
        rows, _ = await self._s.store.search_users(
            UserSearch(organisation_id=self._org, condition=None, limit=MAX_SCANNED_USERS)
        )
        return _page_in_memory([self._user_model(r) for r in rows], search_request)

    # -- users -------------------------------------------------------------------------------

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        """Create a user (or a group) of the organisation."""
        if resource_type.name == "Group":
            return await self._create_group(resource)
        body = resource.model_dump()
        with scim_errors():
            wanted = mapping.user_input(body, None)
        await self._check_user_name(wanted.user_name, login=None)
        with scim_errors():
            user = await self._create_user(wanted)
        link = UserLink(
            login=user.login,
            organisation_id=self._org,
            user_name=wanted.user_name,
            external_id=wanted.external_id,
            extra=wanted.extra,
            updated_at=self._s.clock.now(),
        )
        try:
            await self._s.store.put_user_link(link)
        except ConflictError:  # another request took the userName meanwhile: undo
            await self._s.directory.users.delete(self._caller, user.login)
            raise UniquenessException(detail="userName is taken") from None
        if wanted.can_login is False:
            with scim_errors():
                user = await self._s.directory.users.set_can_login(self._caller, user.login, False)
        # A new user is in no group yet: what the directory returned is the whole resource.
        return self._user_model(StoredUser(user=user, link=link))

    async def _create_user(self, wanted: mapping.UserInput) -> DirectoryUser:
        new = NewUser(
            profile=wanted.profile,
            login=_login_of(wanted.user_name),
            pin=None,
            password=wanted.password,
            send_invitation=self._token.invite_users and wanted.password is None,
        )
        users = self._s.directory.users
        try:
            return await users.create(self._caller, self._org, new)
        except LoginTakenError:
            # The userName's login is taken: the directory suggests one from the e-mail.
            return await users.create(self._caller, self._org, _without_login(new))

    async def _check_user_name(self, user_name: str, *, login: str | None) -> None:
        owner = await self._s.store.login_of_user_name(self._org, user_name.casefold())
        if owner is not None and owner != login:
            raise UniquenessException(detail=f"the userName {user_name!r} is taken")

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        """Make the user (or group) what ``resource`` says (after a PUT or a PATCH)."""
        if resource_type.name == "Group":
            return await self._update_group(resource, expected_version)
        current = await self._stored_user(str(resource.id))
        shown = mapping.user_resource(current, domain=self._s.domain)
        self._check_version(shown, expected_version)
        body = resource.model_dump()
        _check_employee_number(body, current)
        with scim_errors():
            wanted = mapping.user_input(body, current.user.profile, shown)
        await self._check_user_name(wanted.user_name, login=current.user.login)
        change = _user_update(current, wanted)
        if change is not None:
            with scim_errors():
                await self._s.directory.users.update(self._caller, current.user.login, change)
        link = current.link
        if link is None or (link.user_name, link.external_id, dict(link.extra)) != (
            wanted.user_name,
            wanted.external_id,
            wanted.extra,
        ):
            try:
                await self._s.store.put_user_link(
                    UserLink(
                        login=current.user.login,
                        organisation_id=self._org,
                        user_name=wanted.user_name,
                        external_id=wanted.external_id,
                        extra=wanted.extra,
                        updated_at=self._s.clock.now(),
                    )
                )
            except ConflictError:
                raise UniquenessException(detail="userName is taken") from None
        return self._user_model(await self._stored_user(current.user.login))

    @staticmethod
    def _check_version(body: dict[str, Any], expected_version: str | None) -> None:
        if expected_version is not None and body["meta"]["version"] != expected_version:
            raise PreconditionFailedException

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        """Delete a user (the directory's Delete user: the USERS record stays) or a group."""
        if resource_type.name == "Group":
            self._check_version(await self._group_body(resource_id), expected_version)
            await self._s.directory.groups.delete(self._caller, int(resource_id))
            return
        current = await self._stored_user(resource_id)
        self._check_version(mapping.user_resource(current, domain=self._s.domain), expected_version)
        with scim_errors():
            await self._s.directory.users.delete(self._caller, current.user.login)

    # -- groups -------------------------------------------------------------------------------

    async def _create_group(self, resource: Resource[Any]) -> Resource[Any]:
        body = resource.model_dump()
        with scim_errors():
            logins = mapping.member_logins(body)
            external_id = mapping.group_external_id(body)
            group = await self._s.directory.groups.create(
                self._caller, self._org, str(body.get("displayName") or "")
            )
        try:
            await self._set_members(group.id, logins, ())
        except InvalidValueException:
            await self._s.directory.groups.delete(self._caller, group.id)
            raise
        if external_id is not None:
            await self._s.store.put_group_link(
                GroupLink(
                    group_id=group.id, external_id=external_id, updated_at=self._s.clock.now()
                )
            )
        return self._s.group_model.model_validate(await self._group_body(str(group.id)))

    async def _update_group(
        self, resource: Resource[Any], expected_version: str | None
    ) -> Resource[Any]:
        current = await self._group_body(str(resource.id))
        self._check_version(current, expected_version)
        group_id = GroupId(int(current["id"]))
        body = resource.model_dump()
        with scim_errors():
            logins = mapping.member_logins(body)
            external_id = mapping.group_external_id(body)
            name = str(body.get("displayName") or "")
            if name != current["displayName"]:
                await self._s.directory.groups.update(self._caller, group_id, name=name)
        before = tuple(str(m["value"]) for m in current.get("members", []))
        await self._set_members(group_id, logins, before)
        if external_id != current.get("externalId"):
            await self._s.store.put_group_link(
                GroupLink(
                    group_id=group_id, external_id=external_id, updated_at=self._s.clock.now()
                )
            )
        return self._s.group_model.model_validate(await self._group_body(str(group_id)))

    async def _set_members(self, group_id: int, wanted: list[str], before: tuple[str, ...]) -> None:
        groups = self._s.directory.groups
        added = sorted(set(wanted) - set(before))
        removed = sorted(set(before) - set(wanted))
        try:
            if added:
                await groups.add_members(self._caller, group_id, added)
            if removed:
                await groups.remove_members(self._caller, group_id, removed)
        except UnknownUserError as exc:
            raise InvalidValueException(detail=f"members: {exc.message}") from None
        except UnknownGroupError:
            raise NotFoundException(detail=f"no group {group_id}") from None


def _page_in_memory(
    resources: list[Resource[Any]], search_request: SearchRequest[Any]
) -> SearchPage:
    """Filter, sort and page resources as scim2-models evaluates them (RFC 7644 §3.4.2)."""
    scim_filter = search_request.filter
    if scim_filter is not None and resources:
        if not scim_filter.models:
            model = type(resources[0])
            scim_filter = cast(Any, ScimFilter)[model](str(scim_filter))
        resources = [r for r in resources if scim_filter.match(r)]
    ordered = search_request.sort(resources)
    start = search_request.start_index_0 or 0
    stop = None if search_request.count is None else start + search_request.count
    return SearchPage(len(ordered), ordered[start:stop])


def _login_of(user_name: str) -> str | None:
    """The login a ``userName`` asks for: itself, or its local part, when a valid login."""
    candidate = user_name.strip().lower().split("@", 1)[0]
    try:
        return check_login(candidate)
    except InvalidFieldError:
        return None


def _without_login(new: NewUser) -> NewUser:
    return replace(new, login=None)


def _check_employee_number(body: dict[str, Any], current: StoredUser) -> None:
    """``employeeNumber`` is the StaffID: read-only (RFC 7643 §7 ``mutability``)."""
    sent = (body.get(ENTERPRISE_SCHEMA) or {}).get("employeeNumber")
    if sent is not None and str(sent) != str(current.user.staff_id):
        raise MutabilityException(
            detail="employeeNumber is the StaffID the directory gave; it cannot change"
        )


def _user_update(current: StoredUser, wanted: mapping.UserInput) -> UserUpdate | None:
    """The directory change ``wanted`` asks for, or None if it asks for none."""
    user = current.user
    profile = None if wanted.profile == user.profile else wanted.profile
    can_login = (
        None if wanted.can_login is None or wanted.can_login == user.can_login else wanted.can_login
    )
    if profile is None and can_login is None and wanted.password is None:
        return None
    return UserUpdate(profile=profile, can_login=can_login, password=wanted.password)
