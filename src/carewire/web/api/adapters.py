"""The ``/adapters`` and ``/adapter-kinds`` resources: adapter instances and what kinds exist.

Every change goes through the
:class:`~carewire.adapters.manager.AdapterManager`, which validates settings
against the kind's schema (a 422 listing each problem), allows only one
enabled instance of a singleton kind such as XMPP (a 409), creates missing
required datasets, and refuses to remove or rename an instance rules use
(a 409). Every change is recorded in the audit trail with the instance's
configuration before and after it.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from carewire.adapters.base import AdapterConfig, AdapterKind
from carewire.rules.settings import describe
from carewire.web.api.deps import Audit, Services, authorize, changes

router = APIRouter(tags=["adapters"], dependencies=[Depends(authorize)])

_SCHEMA_DESCRIPTION = (
    "The settings schema: one object per field (name, label, kind, required, expressions, "
    "and choices, minimum, maximum, columns, default, help where they apply)."
)


class ActionOut(BaseModel):
    """A rule action an adapter kind contributes."""

    name: str
    description: str
    settings: list[JsonValue] = Field(description=_SCHEMA_DESCRIPTION)


class KindOut(BaseModel):
    """An adapter kind (a component)."""

    component: str
    description: str
    singleton: bool = Field(description="Only one instance may be enabled at a time.")
    settings: list[JsonValue] = Field(description=_SCHEMA_DESCRIPTION)
    required_datasets: list[str] = Field(description="The dataset roles it works on.")
    actions: list[ActionOut]


class KindList(BaseModel):
    """Every adapter kind, by component name."""

    kinds: list[KindOut]


class Health(BaseModel):
    """How an instance is doing."""

    state: str = Field(description="disabled, running, restarting or stopped.")
    restarts: int
    last_error: str
    note: str
    counters: dict[str, JsonValue] = Field(
        {},
        description="The running instance's counters, for kinds that keep some (an MLLP "
        "listener's connections, messages, AA/AE/AR acknowledgements, framing errors).",
    )


class AdapterOut(BaseModel):
    """An adapter instance."""

    id: int
    reference_name: str
    component: str
    enabled: bool
    settings: dict[str, JsonValue]
    required_datasets: dict[str, str] = Field(description="Dataset role → dataset name.")


class AdapterDetail(AdapterOut):
    """An adapter instance and its health."""

    health: Health


class AdapterList(BaseModel):
    """Instances matching the request, and how many exist in all (for "N of M")."""

    total: int = Field(description="How many instances exist, whatever the filters.")
    adapters: list[AdapterOut]


class AdapterBody(BaseModel):
    """A new adapter instance."""

    model_config = ConfigDict(extra="forbid")

    component: str = Field(examples=["DataUpdate"])
    reference_name: str = Field(examples=["Data Updates"])
    enabled: bool = False
    settings: dict[str, JsonValue] = {}
    required_datasets: dict[str, str] = Field(
        {}, description="Dataset role → dataset name; missing roles use the role's name."
    )


class AdapterChanges(BaseModel):
    """Changes to an instance; fields left out keep their values."""

    model_config = ConfigDict(extra="forbid")

    reference_name: str | None = None
    enabled: bool | None = None
    settings: dict[str, JsonValue] | None = Field(
        None, description="The complete new settings (validated against the kind's schema)."
    )


def _kind(kind: AdapterKind, services: Services) -> KindOut:
    return KindOut(
        component=kind.component,
        description=kind.description,
        singleton=kind.is_singleton,
        settings=cast(list[JsonValue], describe(kind.settings)),
        required_datasets=list(kind.required_datasets),
        actions=[
            ActionOut(
                name=spec.name,
                description=spec.description,
                settings=cast(list[JsonValue], describe(spec.fields)),
            )
            for spec in services.rules.actions.for_component(kind.component)
        ],
    )


def _fields(config: AdapterConfig) -> dict[str, object]:
    assert config.id is not None
    return {
        "id": config.id,
        "reference_name": config.reference_name,
        "component": config.component,
        "enabled": config.is_enabled,
        "settings": dict(config.settings),
        "required_datasets": dict(config.required_datasets),
    }


def _out(config: AdapterConfig) -> AdapterOut:
    return AdapterOut.model_validate(_fields(config))


def _detail(config: AdapterConfig, services: Services) -> AdapterDetail:
    health = services.adapters.health(config.reference_name)
    return AdapterDetail.model_validate(
        {
            **_fields(config),
            "health": {
                "state": health.state.value,
                "restarts": health.restarts,
                "last_error": health.last_error,
                "note": health.note,
                "counters": dict(health.counters),
            },
        }
    )


@router.get("/adapter-kinds", summary="List adapter kinds")
async def list_kinds(services: Services) -> KindList:
    """Every kind with its settings schema, required datasets and actions."""
    return KindList(kinds=[_kind(k, services) for k in services.adapters.kinds()])


@router.get("/adapters", summary="List adapters")
async def list_adapters(
    services: Services,
    include_disabled: Annotated[bool, Query(description="Also list disabled instances.")] = True,
    search: Annotated[str, Query(description="Part of the name or component, any case.")] = "",
) -> AdapterList:
    """Instances by reference name, and the number that exist in all."""
    found = services.adapters.list(include_disabled=include_disabled, search=search)
    return AdapterList(total=len(services.adapters.list()), adapters=[_out(c) for c in found])


@router.get("/adapters/{reference_name}", summary="Read an adapter")
async def get_adapter(reference_name: str, services: Services) -> AdapterDetail:
    """One instance by reference name, with its health."""
    return _detail(services.adapters.get(reference_name), services)


@router.post("/adapters", status_code=201, summary="Create an adapter")
async def create_adapter(body: AdapterBody, services: Services, audit: Audit) -> AdapterDetail:
    """Create an instance; its missing required datasets are created."""
    config = await services.adapters.create(
        body.component,
        body.reference_name,
        is_enabled=body.enabled,
        settings=body.settings,
        required_datasets=body.required_datasets,
    )
    await audit("adapter.create", config.reference_name, details=changes(None, _fields(config)))
    return _detail(config, services)


@router.patch("/adapters/{reference_name}", summary="Change an adapter")
async def update_adapter(
    reference_name: str, body: AdapterChanges, services: Services, audit: Audit
) -> AdapterDetail:
    """Rename, enable or disable an instance, or replace its settings."""
    before = _fields(services.adapters.get(reference_name))
    config = await services.adapters.update(
        reference_name,
        new_reference_name=body.reference_name,
        is_enabled=body.enabled,
        settings=body.settings,
    )
    await audit("adapter.update", config.reference_name, details=changes(before, _fields(config)))
    return _detail(config, services)


@router.post("/adapters/{reference_name}/enable", summary="Enable an adapter")
async def enable_adapter(reference_name: str, services: Services, audit: Audit) -> AdapterDetail:
    """Enable an instance (409 if it is a singleton kind and another is enabled)."""
    before = _fields(services.adapters.get(reference_name))
    config = await services.adapters.enable(reference_name)
    await audit("adapter.enable", config.reference_name, details=changes(before, _fields(config)))
    return _detail(config, services)


@router.post("/adapters/{reference_name}/disable", summary="Disable an adapter")
async def disable_adapter(reference_name: str, services: Services, audit: Audit) -> AdapterDetail:
    """Disable an instance; its rules stop firing."""
    before = _fields(services.adapters.get(reference_name))
    config = await services.adapters.disable(reference_name)
    await audit("adapter.disable", config.reference_name, details=changes(before, _fields(config)))
    return _detail(config, services)


@router.delete("/adapters/{reference_name}", status_code=204, summary="Remove an adapter")
async def remove_adapter(reference_name: str, services: Services, audit: Audit) -> Response:
    """Remove an instance for good (409 while rules use it)."""
    before = _fields(services.adapters.get(reference_name))
    await services.adapters.remove(reference_name)
    await audit("adapter.remove", str(before["reference_name"]), details=changes(before, None))
    return Response(status_code=204)
