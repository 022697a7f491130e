"""Console pages for adapters: the list, new, details, edit, activate/deactivate and remove.

Every page goes through :class:`~carewire.adapters.manager.AdapterManager`;
settings forms are generated from the kind's schema by :mod:`.forms`. Auditors
see every page but change nothing (the change pages answer 403). Each change
is recorded in the audit trail with the configuration before and after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.adapters.base import AdapterConfig, AdapterKind
from carewire.adapters.manager import AdapterManager, UnknownAdapterError
from carewire.adapters.xmpp import COMPONENT as XMPP
from carewire.errors import CarewireError
from carewire.rules.settings import SettingsError, validate_settings
from carewire.security.audit import AuditEvent, Channel
from carewire.web.console.auth import (
    ANY_ROLE,
    WRITERS,
    SignedIn,
    check_csrf,
    remote_ip,
    require_role,
)
from carewire.web.console.forms import (
    apply_row_action,
    display_values,
    invalid_fields,
    parse_form,
    problems_of,
    read_large_form,
    row_action,
)
from carewire.web.console.render import render

CREATE = "__create__"
_NOTICES = {
    "created": "The adapter has been created.",
    "saved": "The adapter has been saved.",
    "enabled": "The adapter has been activated.",
    "disabled": "The adapter has been deactivated: the platform ignores it.",
    "removed": "The adapter has been removed.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetChoice:
    """A required dataset role on the new-adapter form: the chosen dataset, or Create and a name."""

    role: str
    selected: str
    new_name: str


def _manager(request: Request) -> AdapterManager:
    manager: AdapterManager | None = request.app.state.services.adapters
    if manager is None:
        raise HTTPException(404)
    return manager


def _get(manager: AdapterManager, name: str) -> AdapterConfig:
    try:
        return manager.get(name)
    except UnknownAdapterError:
        raise HTTPException(404) from None


def href(name: str) -> str:
    """The console path of an adapter's page."""
    return f"/adapters/{quote(name, safe='')}"


def _text(form: Mapping[str, object], key: str) -> str:
    value = form.get(key, "")
    return value.strip() if isinstance(value, str) else ""


async def _record(
    request: Request, signed_in: SignedIn, action: str, target: str, details: Mapping[str, object]
) -> None:
    await request.app.state.services.audit.record(
        AuditEvent(
            actor=f"console:{signed_in.user.username}",
            channel=Channel.CONSOLE,
            action=action,
            target=target,
            remote_ip=remote_ip(request),
            details=details,
        )
    )


def _facts(config: AdapterConfig | None) -> dict[str, object] | None:
    if config is None:
        return None
    return {
        "reference_name": config.reference_name,
        "component": config.component,
        "enabled": config.is_enabled,
        "settings": dict(config.settings),
        "required_datasets": dict(config.required_datasets),
    }


# --- the list ---------------------------------------------------------------------------


async def xmpp_settings(request: Request) -> Response:
    """GET /xmpp: the enabled XMPP adapter's settings (or the XMPP adapters, if none is enabled)."""
    await require_role(request, *ANY_ROLE)
    manager = _manager(request)
    enabled = [c for c in manager.list(include_disabled=False) if c.component == "XMPP"]
    if enabled:
        return RedirectResponse(f"{href(enabled[0].reference_name)}/edit", status_code=303)
    return RedirectResponse("/adapters?filter=1&search=XMPP", status_code=303)


async def list_adapters(request: Request) -> Response:
    """GET /adapters: the grid, with Filter Disabled (checked by default) and Search."""
    signed_in = await require_role(request, *ANY_ROLE)
    manager = _manager(request)
    query = request.query_params
    search = query.get("search", "").strip()[:200]
    hide_disabled = "hide_disabled" in query if "filter" in query else True
    shown = manager.list(include_disabled=not hide_disabled, search=search)
    if search:
        heading = "Adapters Search Results"
    else:
        heading = "Adapters" if hide_disabled else "All Adapters"
    return render(
        request,
        "adapters.html",
        title="Adapters",
        signed_in=signed_in,
        adapters=[(a, href(a.reference_name)) for a in shown],
        total=len(manager.list()),
        search=search,
        hide_disabled=hide_disabled,
        heading=heading,
        notice=_NOTICES.get(query.get("m", ""), ""),
    )


# --- new adapter ------------------------------------------------------------------------


def _default_datasets(request: Request, kind: AdapterKind) -> list[DatasetChoice]:
    registry = request.app.state.services.registry
    return [
        DatasetChoice(role=role, selected=role, new_name="")
        if registry is not None and role in registry
        else DatasetChoice(role=role, selected=CREATE, new_name=role)
        for role in kind.required_datasets
    ]


def _posted_datasets(kind: AdapterKind, form: Mapping[str, object]) -> list[DatasetChoice]:
    return [
        DatasetChoice(
            role=role,
            selected=_text(form, f"ds.{role}") or role,  # absent: the built-in name
            new_name=_text(form, f"dsnew.{role}"),
        )
        for role in kind.required_datasets
    ]


def _new_page(
    request: Request, signed_in: SignedIn, *, kind: AdapterKind, problems: list[str], **ctx: Any
) -> Response:
    registry = request.app.state.services.registry
    return render(
        request,
        "adapter_form.html",
        title="Create a New Adapter",
        signed_in=signed_in,
        status_code=400 if problems else 200,
        is_new=True,
        kind=kind,
        kinds=_manager(request).kinds(),
        dataset_names=[d.name for d in registry.all()] if registry is not None else [],
        create_value=CREATE,
        problems=problems,
        invalid=invalid_fields(kind.settings, problems),
        action="/adapters/new",
        notice="",
        **ctx,
    )


async def new_adapter(request: Request) -> Response:
    """GET /adapters/new: Component Name, Reference Name, Enabled, datasets, settings."""
    signed_in = await require_role(request, *WRITERS)
    manager = _manager(request)
    kinds = manager.kinds()
    wanted = request.query_params.get("component", "")
    kind = next((k for k in kinds if k.component == wanted), kinds[0])
    return _new_page(
        request,
        signed_in,
        kind=kind,
        problems=[],
        reference_name="",
        is_enabled=False,
        datasets=_default_datasets(request, kind),
        values=display_values(kind.settings, {}),
    )


def _check_new(
    kind: AdapterKind, name: str, settings: Mapping[str, object], datasets: list[DatasetChoice]
) -> list[str]:
    """Every problem of a new adapter's form, in the console's words."""
    problems = [] if name else ["Required: Reference Name"]
    problems += [
        f"Required: {d.role} (the name of the dataset to create)"
        for d in datasets
        if d.selected == CREATE and not d.new_name
    ]
    try:
        validate_settings(kind.settings, settings)
    except SettingsError as exc:
        problems += exc.problems
    return problems


async def _try_create(
    request: Request,
    signed_in: SignedIn,
    kind: AdapterKind,
    form: Mapping[str, object],
    settings: Mapping[str, object],
) -> tuple[str, list[str]]:
    """Create the adapter: its page's path, or the problems that stopped it."""
    name = _text(form, "reference_name")
    datasets = _posted_datasets(kind, form)
    problems = _check_new(kind, name, settings, datasets)
    if problems:
        return "", problems
    chosen = {d.role: d.new_name if d.selected == CREATE else d.selected for d in datasets}
    try:
        config = await _manager(request).create(
            kind.component,
            name,
            is_enabled="enabled" in form,
            settings=settings,
            required_datasets=chosen,
        )
    except CarewireError as exc:
        return "", problems_of(exc)
    await _record(request, signed_in, "adapter.create", name, {"after": _facts(config)})
    return href(config.reference_name), []


async def create_adapter(request: Request) -> Response:
    """POST /adapters/new: create it (or redraw: another kind, a row added or removed)."""
    signed_in = await require_role(request, *WRITERS)
    form = await read_large_form(request)
    check_csrf(request, form, signed_in)
    manager = _manager(request)
    try:
        kind = manager.kind(_text(form, "component"))
    except UnknownAdapterError:
        return _redraw_new(request, signed_in, manager.kinds()[0], {}, ["Required: Component Name"])
    action = row_action(form)
    settings = parse_form(kind.settings, form, keep_empty_rows=action is not None)
    if "_kind" in form or action is not None:
        values = display_values(kind.settings, {} if "_kind" in form else settings)
        if action is not None:
            values = apply_row_action(kind.settings, values, action)
        return _redraw_new(request, signed_in, kind, form, [], values=values)
    path, problems = await _try_create(request, signed_in, kind, form, settings)
    if path:
        return RedirectResponse(f"{path}?m=created", 303)
    values = display_values(kind.settings, settings)
    return _redraw_new(request, signed_in, kind, form, problems, values=values)


def _redraw_new(
    request: Request,
    signed_in: SignedIn,
    kind: AdapterKind,
    form: Mapping[str, object],
    problems: list[str],
    *,
    values: dict[str, object] | None = None,
) -> Response:
    is_same_kind = _text(form, "component") == kind.component and "_kind" not in form
    return _new_page(
        request,
        signed_in,
        kind=kind,
        problems=problems,
        reference_name=_text(form, "reference_name"),
        is_enabled="enabled" in form,
        datasets=_posted_datasets(kind, form) if is_same_kind else _default_datasets(request, kind),
        values=values if values is not None else display_values(kind.settings, {}),
    )


# --- details, edit, activate, remove -----------------------------------------------------


async def show_adapter(request: Request) -> Response:
    """GET /adapters/{name}: the adapter's details, health, and its actions."""
    signed_in = await require_role(request, *ANY_ROLE)
    manager = _manager(request)
    config = _get(manager, request.path_params["name"])
    kind = manager.kind(config.component)
    return render(
        request,
        "adapter_detail.html",
        title=f"{config.reference_name} Adapter",
        signed_in=signed_in,
        config=config,
        kind=kind,
        values=display_values(kind.settings, config.settings),
        health=manager.health(config.reference_name),
        base=href(config.reference_name),
        is_xmpp=config.component == XMPP,
        can_write=signed_in.user.role.can_write,
        notice=_NOTICES.get(request.query_params.get("m", ""), ""),
    )


def _edit_page(
    request: Request,
    signed_in: SignedIn,
    config: AdapterConfig,
    *,
    problems: list[str],
    **ctx: Any,
) -> Response:
    kind = _manager(request).kind(config.component)
    ctx.setdefault("values", display_values(kind.settings, config.settings))
    ctx.setdefault("reference_name", config.reference_name)
    ctx.setdefault("is_enabled", config.is_enabled)
    return render(
        request,
        "adapter_form.html",
        title="Update Adapter",
        signed_in=signed_in,
        status_code=400 if problems else 200,
        is_new=False,
        kind=kind,
        config=config,
        base=href(config.reference_name),
        action=f"{href(config.reference_name)}/edit",
        problems=problems,
        invalid=invalid_fields(kind.settings, problems),
        notice=_NOTICES.get(request.query_params.get("m", ""), ""),
        **ctx,
    )


async def edit_adapter(request: Request) -> Response:
    """GET /adapters/{name}/edit: the Update Adapter form with the stored values."""
    signed_in = await require_role(request, *WRITERS)
    config = _get(_manager(request), request.path_params["name"])
    return _edit_page(request, signed_in, config, problems=[])


async def update_adapter(request: Request) -> Response:
    """POST /adapters/{name}/edit: Save (or redraw with a row added or removed)."""
    signed_in = await require_role(request, *WRITERS)
    form = await read_large_form(request)
    check_csrf(request, form, signed_in)
    manager = _manager(request)
    old = _get(manager, request.path_params["name"])
    kind = manager.kind(old.component)
    action = row_action(form)
    settings = parse_form(kind.settings, form, keep_empty_rows=action is not None)
    values = display_values(kind.settings, settings)
    name, is_enabled = _text(form, "reference_name"), "enabled" in form
    if action is not None:
        values = apply_row_action(kind.settings, values, action)
        return _edit_page(
            request, signed_in, old, problems=[], values=values,
            reference_name=name, is_enabled=is_enabled,
        )  # fmt: skip
    problems = [] if name else ["Required: Reference Name"]
    try:
        validate_settings(kind.settings, settings)
    except SettingsError as exc:
        problems += exc.problems
    if not problems:
        try:
            new = await manager.update(
                old.reference_name,
                new_reference_name=name,
                is_enabled=is_enabled,
                settings=settings,
            )
        except CarewireError as exc:
            problems = problems_of(exc)
        else:
            details = {"before": _facts(old), "after": _facts(new)}
            await _record(request, signed_in, "adapter.update", new.reference_name, details)
            return RedirectResponse(f"{href(new.reference_name)}?m=saved", 303)
    return _edit_page(
        request, signed_in, old, problems=problems, values=values,
        reference_name=name, is_enabled=is_enabled,
    )  # fmt: skip


async def _switch(request: Request, *, enable: bool) -> Response:
    signed_in = await require_role(request, *WRITERS)
    form = await read_large_form(request)
    check_csrf(request, form, signed_in)
    manager = _manager(request)
    old = _get(manager, request.path_params["name"])
    try:
        new = await (manager.enable if enable else manager.disable)(old.reference_name)
    except CarewireError as exc:
        return _edit_page(request, signed_in, old, problems=problems_of(exc))
    action = "adapter.enable" if enable else "adapter.disable"
    details = {"before": _facts(old), "after": _facts(new)}
    await _record(request, signed_in, action, new.reference_name, details)
    done = "enabled" if enable else "disabled"
    return RedirectResponse(f"{href(new.reference_name)}/edit?m={done}", 303)


async def activate_adapter(request: Request) -> Response:
    """POST /adapters/{name}/activate: enable the adapter."""
    return await _switch(request, enable=True)


async def deactivate_adapter(request: Request) -> Response:
    """POST /adapters/{name}/deactivate: disable the adapter (the platform ignores it)."""
    return await _switch(request, enable=False)


def _remove_page(
    request: Request, signed_in: SignedIn, config: AdapterConfig, error: str = ""
) -> Response:
    return render(
        request,
        "adapter_remove.html",
        title=f"Remove {config.reference_name}",
        signed_in=signed_in,
        status_code=409 if error else 200,
        config=config,
        base=href(config.reference_name),
        error=error,
    )


async def confirm_remove(request: Request) -> Response:
    """GET /adapters/{name}/remove: "Remove … ? This cannot be undone." with Ok and Cancel."""
    signed_in = await require_role(request, *WRITERS)
    config = _get(_manager(request), request.path_params["name"])
    return _remove_page(request, signed_in, config)


async def remove_adapter(request: Request) -> Response:
    """POST /adapters/{name}/remove: remove it for good (refused while rules use it)."""
    signed_in = await require_role(request, *WRITERS)
    form = await read_large_form(request)
    check_csrf(request, form, signed_in)
    manager = _manager(request)
    config = _get(manager, request.path_params["name"])
    try:
        await manager.remove(config.reference_name)
    except CarewireError as exc:
        return _remove_page(request, signed_in, config, exc.message)
    await _record(
        request, signed_in, "adapter.remove", config.reference_name, {"before": _facts(config)}
    )
    return RedirectResponse("/adapters?m=removed", 303)
