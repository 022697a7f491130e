"""Console pages of the organisation directory, and the public pages of its mailed links.

Organisation pages live under ``/orgs/{org}`` (:mod:`.orgs`, :mod:`.practices`,
:mod:`.affiliations`), users under ``/orgs/{org}/users`` and
``/orgs/{org}/user/{login}`` (:mod:`.users`, :mod:`.user_actions`), invitations
(:mod:`.invites`), groups (:mod:`.groups`) and the directory sync from LDAP
(:mod:`.integrations`, ``/orgs/{org}/integrations``);
the affiliation Invitation page is at the mailed ``/s/org/0/associations/{id}/invite``
(also ``/associations/{id}/invite``). Registration and PIN reset (:mod:`.public`)
need no console sign-in. docs/console.md lists every page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from carewire.web.console.directory import (
    affiliations,
    groups,
    integrations,
    invites,
    orgs,
    practices,
    public,
    scim_tokens,
    user_actions,
    users,
)

__all__ = ["ROUTES"]

_O = "/orgs/{org:int}"
_U = _O + "/user/{login}"
_G = _O + "/groups/{group:int}"
_A = _O + "/affiliations/{other:int}"
_I = _O + "/integrations"
_INVITE = "/associations/{affiliation:int}/invite"
_MAILED = "/s/org/{any:int}/associations/{affiliation:int}/invite"


Endpoint = Callable[[Request], Awaitable[Response]]


def _get(path: str, endpoint: Endpoint) -> Route:
    return Route(path, endpoint, methods=["GET"])


def _post(path: str, endpoint: Endpoint) -> Route:
    return Route(path, endpoint, methods=["POST"])


#: The directory's routes, in matching order (fixed paths before parameters).
ROUTES: tuple[BaseRoute, ...] = (
    _get("/directory", orgs.home),
    _get("/directory/users", orgs.users_home),
    _get("/directory/sample.csv", invites.sample_csv),
    _get("/directory/integrations", integrations.home),
    _get("/orgs", orgs.organisations),
    _get("/orgs/new", orgs.new_hospital),
    _post("/orgs/new", orgs.create_hospital),
    _get(_O, orgs.update_page),
    _post(_O, orgs.save_org),
    _get(_O + "/practices/new", practices.new_practice),
    _post(_O + "/practices/new", practices.create_practice),
    _get(_O + "/invite-organization", affiliations.invite_page),
    _post(_O + "/invite-organization", affiliations.invite),
    _get(_O + "/organization-search", affiliations.search),
    _get(_A + "/permissions", affiliations.permissions_page),
    _post(_A + "/permissions", affiliations.save_permissions),
    _get(_A + "/delete", affiliations.confirm_delete),
    _post(_A + "/delete", affiliations.delete),
    _get(_INVITE, affiliations.invitation_page),
    _post(_INVITE, affiliations.answer_invitation),
    _get(_MAILED, affiliations.invitation_page),
    _post(_MAILED, affiliations.answer_invitation),
    _get("/communities", orgs.communities),
    _post("/communities/{hospital:int}/members", orgs.add_community_member),
    _get(_O + "/users", users.find),
    _get(_O + "/users/new", users.new_user),
    _post(_O + "/users/new", users.create_user),
    _get(_U, users.profile),
    _post(_U, users.save_profile),
    _get(_U + "/photo", users.photo),
    _post(_U + "/reset-pin", user_actions.reset_pin),
    _post(_U + "/convert", user_actions.convert),
    _post(_U + "/groups/{group:int}/remove", user_actions.remove_from_group),
    _get(_U + "/delete", user_actions.confirm_delete),
    _post(_U + "/delete", user_actions.delete),
    _post(_U + "/devices/push", user_actions.set_push),
    _get(_U + "/devices/wipe", user_actions.confirm_wipe),
    _post(_U + "/devices/wipe", user_actions.wipe),
    _post(_U + "/devices/delete", user_actions.delete_device),
    _post(_U + "/coverage/release", user_actions.release_held),
    _get(_O + "/invite", invites.invite_page),
    _post(_O + "/invite", invites.invite),
    _get(_O + "/invitations", invites.invitations),
    _post(_O + "/invitations", invites.bulk),
    _post(_O + "/invitations/resend", invites.resend),
    _post(_O + "/invitations/delete", invites.delete),
    _get(_O + "/groups/new", groups.new_group),
    _post(_O + "/groups/new", groups.create_group),
    _get(_O + "/groups/import", groups.import_page),
    _post(_O + "/groups/import", groups.import_groups),
    _get(_G, groups.group_page),
    _post(_G, groups.save_group),
    _post(_G + "/remove", groups.remove_selected),
    _get(_G + "/add", groups.add_page),
    _post(_G + "/add", groups.add_members),
    _get(_G + "/delete", groups.confirm_delete),
    _post(_G + "/delete", groups.delete_group),
    _get(_I, integrations.integrations),
    _post(_I, integrations.save),
    _get(_I + "/status", integrations.status),
    _post(_I + "/sync", integrations.sync_now),
    _get(_I + "/confirm", integrations.confirm_page),
    _post(_I + "/confirm", integrations.confirm),
    _get(_I + "/runs/{run:int}", integrations.report),
    _get(_O + "/scim-tokens", scim_tokens.tokens_page),
    _post(_O + "/scim-tokens", scim_tokens.create_token),
    _get(_O + "/scim-tokens/{token:int}/revoke", scim_tokens.confirm_revoke),
    _post(_O + "/scim-tokens/{token:int}/revoke", scim_tokens.revoke_token),
    _get("/register/{token}", public.show_register),
    _post("/register/{token}", public.do_register),
    _get("/pin-reset/{token}", public.show_pin_reset),
    _post("/pin-reset/{token}", public.do_pin_reset),
)
