"""The ``/organisations/{id}/ldap`` resource: an organisation's LDAP integration (docs/ldap.md).

``GET`` shows the settings (the bind password never: ``has_secret`` only),
``PUT`` creates or changes them (``bind_secret`` is write-only; leave it out
to keep the saved one), ``DELETE`` removes the integration (synced users
stay). ``/status`` is Connected / Not Connected with the last error and the
last run; ``POST /sync`` is Sync Users Now (``confirm`` lets a run held by
the mass-disable guard go on); ``/runs`` lists the Import Results and
``/runs/{run}`` one run with a page of its per-user report. Another
organisation's integration is a 404 for an organisation's token; a run
already going on is a 409 ``sync-in-progress``; an unreachable directory
is reported in the run (state ``failed``), not as an HTTP error.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from carewire.identity.ldap.model import (
    AttributeMap,
    LdapSettings,
    NoIntegrationError,
    StampKind,
    SyncRun,
    Trigger,
)
from carewire.web.api.deps import DirectoryCaller, Ldap, authorize
from carewire.web.api.directory_schemas import MAX_ID

router = APIRouter(
    prefix="/organisations/{organisation_id}/ldap",
    tags=["ldap"],
    dependencies=[Depends(authorize)],
)
Org = Annotated[int, Path(ge=1, le=MAX_ID)]


class MappingIn(BaseModel):
    """Attributes → directory fields."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(default="entryUUID", max_length=64)
    login: str = Field(default="uid", max_length=64)
    stamp: StampKind = StampKind.MODIFY_TIMESTAMP
    profile: dict[str, str] = Field(
        default_factory=lambda: dict(AttributeMap().profile), max_length=32
    )


class SettingsBase(BaseModel):
    """The integration's settings but the secret."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=1024, examples=["ldaps://ldap.hospital.example"])
    bind_dn: str = Field(max_length=1024)
    base_dn: str = Field(max_length=1024)
    user_filter: str = Field(default="(objectClass=inetOrgPerson)", max_length=4096)
    group_base_dn: str = Field(default="", max_length=1024)
    group_filter: str = Field(default="(objectClass=groupOfNames)", max_length=4096)
    group_member_attribute: str = Field(default="member", max_length=64)
    group_name_attribute: str = Field(default="cn", max_length=64)
    ca_file: str = Field(default="", max_length=1024)
    mapping: MappingIn = Field(default_factory=MappingIn)
    is_sync_enabled: bool = True
    is_sign_in_enabled: bool = False
    max_disable_percent: int = Field(default=10, ge=0, le=100)


class SettingsIn(SettingsBase):
    """The settings to save (``bind_secret`` write-only; omitted or null: the saved one)."""

    bind_secret: str | None = Field(default=None, max_length=1024)


class SettingsOut(SettingsBase):
    """The settings as saved (never the secret)."""

    model_config = ConfigDict(extra="forbid")

    organisation: int
    has_secret: bool
    updated_at: datetime | None


class CountsOut(BaseModel):
    """How many users each kind of change touched."""

    created: int
    updated: int
    disabled: int
    unchanged: int
    failed: int


class RunOut(BaseModel):
    """One run's import result."""

    id: int
    kind: str
    trigger: str
    state: str
    started_at: datetime
    ended_at: datetime | None
    counts: CountsOut
    message: str


class StatusOut(BaseModel):
    """Connected / Not Connected, the last run and a held one."""

    is_configured: bool
    is_connected: bool
    checked_at: datetime | None
    error: str
    linked_users: int
    last_run: RunOut | None
    held_run: RunOut | None


class SyncIn(BaseModel):
    """Sync Users Now."""

    model_config = ConfigDict(extra="forbid")

    confirm: bool = Field(default=False, description="Go on past the mass-disable guard.")
    full: bool | None = Field(default=None, description="Force a full (true) run.")


class RunList(BaseModel):
    """Import Results, newest first."""

    runs: list[RunOut]
    total: int


class LineOut(BaseModel):
    """One user's line of a report."""

    change: str
    staff_id: int | None
    external_id: str
    login: str
    name: str
    message: str


class ReportOut(BaseModel):
    """A run and a page of its per-user report."""

    run: RunOut
    lines: list[LineOut]
    total: int


def _run(run: SyncRun) -> RunOut:
    return RunOut(
        id=run.id,
        kind=run.kind.value,
        trigger=run.trigger.value,
        state=run.state.value,
        started_at=run.started_at,
        ended_at=run.ended_at,
        counts=CountsOut(**asdict(run.counts)),
        message=run.message,
    )


def _settings_out(s: LdapSettings) -> SettingsOut:
    values = asdict(s)
    values.pop("organisation_id")
    return SettingsOut(organisation=s.organisation_id, **values)


@router.get("", summary="Show the LDAP integration")
async def get_settings(organisation_id: Org, ldap: Ldap, caller: DirectoryCaller) -> SettingsOut:
    """The settings (404 when the organisation has none)."""
    found = await ldap.settings(caller, organisation_id)
    if found is None:
        raise NoIntegrationError(f"organisation {organisation_id} has no LDAP integration")
    return _settings_out(found)


@router.put("", summary="Create or change the LDAP integration")
async def put_settings(
    organisation_id: Org, body: SettingsIn, ldap: Ldap, caller: DirectoryCaller
) -> SettingsOut:
    """Save the settings; the bind secret only when given (it is never shown again)."""
    values = body.model_dump(exclude={"bind_secret", "mapping"})
    mapping = AttributeMap(**body.mapping.model_dump())
    settings = LdapSettings(organisation_id=organisation_id, mapping=mapping, **values)
    return _settings_out(await ldap.save(caller, settings, body.bind_secret))


@router.delete("", status_code=204, summary="Remove the LDAP integration")
async def delete_settings(organisation_id: Org, ldap: Ldap, caller: DirectoryCaller) -> Response:
    """Remove it; synced users stay, no longer read-only."""
    await ldap.remove(caller, organisation_id)
    return Response(status_code=204)


@router.get("/status", summary="Connected / Not Connected")
async def get_status(organisation_id: Org, ldap: Ldap, caller: DirectoryCaller) -> StatusOut:
    """The status the last check recorded (every ``status_interval``), the last and held run."""
    s = await ldap.status(caller, organisation_id)
    return StatusOut(
        is_configured=s.is_configured,
        is_connected=s.is_connected,
        checked_at=s.checked_at,
        error=s.error,
        linked_users=s.linked_users,
        last_run=_run(s.last_run) if s.last_run else None,
        held_run=_run(s.held_run) if s.held_run else None,
    )


@router.post("/sync", summary="Sync Users Now")
async def post_sync(
    organisation_id: Org, body: SyncIn, ldap: Ldap, caller: DirectoryCaller
) -> RunOut:
    """Run a sync now and answer with its result (``held``: confirm to go on)."""
    run = await ldap.sync(
        caller, organisation_id, trigger=Trigger.API, is_confirmed=body.confirm, is_full=body.full
    )
    return _run(run)


@router.get("/runs", summary="Import Results")
async def list_runs(
    organisation_id: Org,
    ldap: Ldap,
    caller: DirectoryCaller,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> RunList:
    """Runs, newest first."""
    runs, total = await ldap.runs(caller, organisation_id, offset=offset, limit=limit)
    return RunList(runs=[_run(r) for r in runs], total=total)


@router.get("/runs/{run}", summary="A run's per-user report")
async def get_report(
    organisation_id: Org,
    run: Annotated[int, Path(ge=1, le=MAX_ID)],
    ldap: Ldap,
    caller: DirectoryCaller,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReportOut:
    """Change Type, Staff ID, External ID, Name and Message of each changed or failed user."""
    found, lines, total = await ldap.report(caller, run, offset=offset, limit=limit)
    if found.organisation_id != organisation_id:
        raise NoIntegrationError(f"no sync run {run} in organisation {organisation_id}")
    return ReportOut(
        run=_run(found),
        lines=[LineOut(**{**asdict(line), "change": line.change.value}) for line in lines],
        total=total,
    )
