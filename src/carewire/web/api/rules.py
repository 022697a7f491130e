"""The ``/rules`` resource: read, write, validate, dry-run, export and import rules.

A rule's body is the form rule files use (see
:func:`carewire.rules.model.rule_to_data`); responses add its ``id``. Every
rule is checked completely when it is saved (or validated, or dry-run) by the
:class:`~carewire.rules.service.RuleService`: an invalid one is a 422 problem
whose ``errors`` lists each problem in the console's wording
(``Required: Recipients``). Every change is recorded in the audit trail with
the rule's form before and after it.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from carewire.datasets.values import to_json
from carewire.errors import ValidationError
from carewire.rules.model import Rule, rule_from_data, rule_to_data
from carewire.rules.service import RuleError
from carewire.web.api.deps import Audit, Services, authorize, changes

router = APIRouter(prefix="/rules", tags=["rules"], dependencies=[Depends(authorize)])

_CONDITIONS_EXAMPLE = {"all": [{"path": "status", "op": "changed_to", "value": "Open"}]}


class TriggerBody(BaseModel):
    """Which writes a rule reacts to."""

    model_config = ConfigDict(extra="forbid")

    create: Annotated[bool, Field(description="Fire when a record is created.")] = True
    update: Annotated[bool, Field(description="Fire when a record is updated.")] = False
    attributes: Annotated[
        list[str],
        Field(description="With `update`: only when one of these changed (empty: any change)."),
    ] = []


class RuleBody(BaseModel):
    """A rule, in the form rule files use."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["Escalate open calls"])
    purpose: str = ""
    dataset: str = Field(examples=["NURSE_CALLS"])
    adapter: str = Field(description="Reference name of the adapter instance.", examples=["XMPP"])
    action: str = Field("", description="One of the adapter kind's actions.")
    active: bool = True
    trigger: TriggerBody = TriggerBody()
    conditions: JsonValue = Field(
        None,
        description="A condition, an `all`/`any` group, or a list (an `all` group).",
        examples=[_CONDITIONS_EXAMPLE],
    )
    defer_seconds: int = Field(0, ge=0, description="Wait, re-check the conditions, then act.")
    skip_originating_adapter: bool = False
    settings: dict[str, JsonValue] = Field({}, description="The action's settings.")


class RuleOut(RuleBody):
    """A saved rule."""

    id: int


class RuleList(BaseModel):
    """Rules, by id."""

    rules: list[RuleOut]


class Validity(BaseModel):
    """The outcome of a validation that passed."""

    valid: bool


class DryRunBody(BaseModel):
    """A rule (saved or not) and the record to try it on."""

    model_config = ConfigDict(extra="forbid")

    rule: RuleBody
    record_id: int = Field(description="A record of the rule's dataset.")


class DryRunOut(BaseModel):
    """What the rule would do for the record as it is now (nothing was run or written)."""

    matched: bool = Field(description="Whether the conditions hold.")
    values: dict[str, JsonValue] = Field(description="The value of every path the conditions read.")
    settings: dict[str, JsonValue] = Field(description="The settings with `#{...}` rendered.")
    adapter_enabled: bool
    would_defer_seconds: int


class RuleFile(BaseModel):
    """Rules as data, as ``carewire rules export`` writes them (without ids)."""

    rules: list[JsonValue]


class ImportResult(BaseModel):
    """How many rules an import created and updated (matched by name)."""

    created: int
    updated: int


def _rule(body: RuleBody) -> Rule:
    data = body.model_dump(mode="json")
    try:
        return rule_from_data(data)
    except ValidationError as exc:
        raise RuleError(body.name, [exc.message or str(exc)]) from None


def _out(rule: Rule) -> RuleOut:
    assert rule.id is not None
    return RuleOut.model_validate({**rule_to_data(rule), "id": rule.id})


def _json(values: object) -> dict[str, JsonValue]:
    items = cast(dict[str, object], values).items()
    return {k: cast(JsonValue, to_json(v)) for k, v in items}


@router.get("", summary="List rules")
async def list_rules(
    services: Services,
    dataset: Annotated[str | None, Query(description="Only this dataset's rules.")] = None,
) -> RuleList:
    """Every rule (of one dataset), by id."""
    if dataset is not None:
        dataset = services.registry.get(dataset).name  # an unknown dataset is a 404
    return RuleList(rules=[_out(r) for r in services.rules.list_rules(dataset)])


@router.get("/export", summary="Export rules")
async def export_rules(
    services: Services,
    dataset: Annotated[str | None, Query(description="Only this dataset's rules.")] = None,
) -> RuleFile:
    """Every rule as data, ordered by dataset and name (for a file under version control)."""
    return RuleFile(rules=cast(list[JsonValue], services.rules.export(dataset)))


def _forms(services: Services, names: set[str]) -> dict[str, dict[str, object]]:
    return {r.name: rule_to_data(r) for r in services.rules.list_rules() if r.name in names}


@router.post("/import", summary="Import rules")
async def import_rules(body: RuleFile, services: Services, audit: Audit) -> ImportResult:
    """Create or update (by name) every rule; all are checked before any is saved."""
    names = {str(item.get("name")) for item in body.rules if isinstance(item, dict)}
    before = _forms(services, names)
    created, updated = await services.rules.import_rules(body.rules)
    after = _forms(services, names)
    for name in sorted(after):
        await audit("rule.import", name, details=changes(before.get(name), after[name]))
    return ImportResult(created=created, updated=updated)


@router.post("/validate", summary="Validate a rule")
async def validate_rule(body: RuleBody, services: Services) -> Validity:
    """Check a rule as saving it would, without saving it (422 listing the problems)."""
    services.rules.compile(_rule(body))
    return Validity(valid=True)


@router.post("/dry-run", summary="Try a rule on a record")
async def dry_run(body: DryRunBody, services: Services) -> DryRunOut:
    """Whether the rule's conditions hold for a record, and its settings rendered for it."""
    result = await services.engine.dry_run(_rule(body.rule), body.record_id)
    return DryRunOut(
        matched=result.matched,
        values=_json(result.values),
        settings=_json(result.settings),
        adapter_enabled=result.adapter_enabled,
        would_defer_seconds=result.would_defer_seconds,
    )


@router.get("/{rule_id}", summary="Read a rule")
async def get_rule(rule_id: int, services: Services) -> RuleOut:
    """One rule by id."""
    return _out(services.rules.get(rule_id))


@router.post("", status_code=201, summary="Create a rule")
async def create_rule(body: RuleBody, services: Services, audit: Audit) -> RuleOut:
    """Validate and save a new rule (names are unique)."""
    rule = await services.rules.create(_rule(body))
    await audit("rule.create", rule.name, details=changes(None, rule_to_data(rule)))
    return _out(rule)


@router.put("/{rule_id}", summary="Replace a rule")
async def update_rule(rule_id: int, body: RuleBody, services: Services, audit: Audit) -> RuleOut:
    """Validate and save the rule's new form."""
    before = rule_to_data(services.rules.get(rule_id))
    rule = await services.rules.update(rule_id, _rule(body))
    await audit("rule.update", rule.name, details=changes(before, rule_to_data(rule)))
    return _out(rule)


@router.delete("/{rule_id}", status_code=204, summary="Delete a rule")
async def delete_rule(rule_id: int, services: Services, audit: Audit) -> Response:
    """Delete a rule (its deferred firings are dropped with it)."""
    rule = services.rules.get(rule_id)
    await services.rules.delete(rule_id)
    await audit("rule.delete", rule.name, details=changes(rule_to_data(rule), None))
    return Response(status_code=204)


async def _set_active(rule_id: int, active: bool, services: Services, audit: Audit) -> RuleOut:
    before = rule_to_data(services.rules.get(rule_id))
    rule = await services.rules.set_active(rule_id, active)
    action = "rule.activate" if active else "rule.deactivate"
    await audit(action, rule.name, details=changes(before, rule_to_data(rule)))
    return _out(rule)


@router.post("/{rule_id}/activate", summary="Activate a rule")
async def activate_rule(rule_id: int, services: Services, audit: Audit) -> RuleOut:
    """Let the rule fire again."""
    return await _set_active(rule_id, True, services, audit)


@router.post("/{rule_id}/deactivate", summary="Deactivate a rule")
async def deactivate_rule(rule_id: int, services: Services, audit: Audit) -> RuleOut:
    """Stop the rule firing (it is kept)."""
    return await _set_active(rule_id, False, services, audit)
