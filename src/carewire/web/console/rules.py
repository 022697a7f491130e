"""Console pages for rules: the list, the rule form (conditions, action settings), dry runs.

The form follows the console's rule form: Purpose, Adapter, Rule Action,
Defer Delivery By, Don't send back to originating adapter, Active?,
Trigger Events, Trigger Conditions and the action's settings, generated
from its schema. It works without JavaScript: "Choose" re-renders the form
for the chosen adapter and action, "Add Condition" and "Remove" change the
condition rows. Saving goes through :class:`~carewire.rules.service.RuleService`,
whose refusals are shown as the console words them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.rules.actions import ActionSpec
from carewire.rules.conditions import (
    VALUELESS_OPS,
    Condition,
    Group,
    Mode,
    Node,
    Op,
    from_data,
    to_data,
)
from carewire.rules.model import Rule, Trigger, rule_to_data
from carewire.rules.service import RuleError, RuleService
from carewire.rules.settings import HEADLINE, FieldKind, SettingField, SettingsError
from carewire.web.console.auth import ANY_ROLE, WRITERS, SignedIn, require_role
from carewire.web.console.data import audit, guarded_post, need, services, text
from carewire.web.console.render import render

OPS = tuple(op.value for op in Op)
_TEXTAREAS = (FieldKind.LONG_TEXT, FieldKind.LINES, FieldKind.UPDATES, FieldKind.PARAMETERS)


@dataclass(slots=True, kw_only=True)
class CondRow:
    """One trigger condition as the form shows it."""

    path: str = ""
    op: str = Op.EQUALS.value
    value: str = ""


@dataclass(slots=True, kw_only=True)
class RuleForm:
    """The rule form's values (text as typed, so a refused form comes back unchanged)."""

    name: str = ""
    purpose: str = ""
    dataset: str = ""
    adapter: str = ""
    action: str = ""
    defer: str = "0"
    skip_origin: bool = False
    active: bool = True
    on_create: bool = True
    on_update: bool = False
    attributes: str = ""
    mode: str = Mode.ALL.value
    rows: list[CondRow] = field(default_factory=list)
    nested: str = ""  # conditions with nested groups, which the rows cannot show (JSON)
    settings: dict[str, object] = field(default_factory=dict)


def _rules(request: Request) -> RuleService:
    return need(services(request).rules)


def _spec(request: Request, adapter: str, action: str) -> ActionSpec | None:
    component = need(services(request).adapters).component_of(adapter)
    rules = _rules(request)
    specs = rules.actions.for_component(component) if component else ()
    return next((s for s in specs if s.name == action), None)


def _setting_text(f: SettingField, value: object) -> object:
    if f.kind is FieldKind.BOOLEAN:
        return bool(value)
    if value is None:
        return ""
    if f.kind in (FieldKind.UPDATES, FieldKind.PARAMETERS) and isinstance(value, list):
        keys = ("path", "value") if f.kind is FieldKind.UPDATES else ("parameter", "value")
        return "\n".join(f"{row.get(keys[0], '')}={row.get(keys[1], '')}" for row in value)
    if f.kind is FieldKind.LINES and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if f.kind is FieldKind.TABLE:
        return json.dumps(value)
    return str(value)


def _setting_value(f: SettingField, raw: object) -> object:
    """A posted setting as the validator reads it."""
    if f.kind is FieldKind.BOOLEAN:
        return raw is True or raw == "on"
    value = raw if isinstance(raw, str) else ""
    if f.kind is FieldKind.PARAMETERS:
        rows = [ln.partition("=") for ln in value.splitlines() if ln.strip()]
        return [{"parameter": p.strip(), "value": v.strip()} for p, _, v in rows]
    if f.kind is FieldKind.TABLE and value.strip():
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def form_of_rule(rule: Rule, spec: ActionSpec | None) -> RuleForm:
    """The form showing a saved rule."""
    cond = rule.conditions
    is_flat = isinstance(cond, Group) and all(isinstance(c, Condition) for c in cond.items)
    rows: list[CondRow] = []
    if isinstance(cond, Group) and is_flat:
        for c in cond.items:
            assert isinstance(c, Condition)
            value = c.value
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
            rows.append(
                CondRow(path=c.path, op=c.op.value, value="" if shown is None else str(shown))
            )
    fields = spec.fields if spec else ()
    return RuleForm(
        name=rule.name,
        purpose=rule.purpose,
        dataset=rule.dataset,
        adapter=rule.adapter,
        action=rule.action,
        defer=str(rule.defer_seconds),
        skip_origin=rule.skip_originating_adapter,
        active=rule.is_active,
        on_create=rule.trigger.on_create,
        on_update=rule.trigger.on_update,
        attributes=", ".join(rule.trigger.attributes),
        mode=cond.mode.value if isinstance(cond, Group) else Mode.ALL.value,
        rows=rows,
        nested="" if is_flat else json.dumps(to_data(cond)),
        settings={f.name: _setting_text(f, rule.settings.get(f.name)) for f in fields},
    )


def form_of_post(request: Request, form: FormData) -> RuleForm:
    """The form as posted (rows from ``cond_*_N``, settings from ``s_<name>``)."""
    count = min(int(text(form, "cond_count") or 0), 50) if text(form, "cond_count").isdigit() else 0
    rows = [
        CondRow(
            path=text(form, f"cond_path_{i}"),
            op=text(form, f"cond_op_{i}") or Op.EQUALS.value,
            value=text(form, f"cond_value_{i}"),
        )
        for i in range(count)
    ]
    f = RuleForm(
        name=text(form, "name"),
        purpose=text(form, "purpose"),
        dataset=text(form, "dataset"),
        adapter=text(form, "adapter"),
        action=text(form, "action"),
        defer=text(form, "defer") or "0",
        skip_origin=form.get("skip_origin") == "on",
        active=form.get("active") == "on",
        on_create=form.get("on_create") == "on",
        on_update=form.get("on_update") == "on",
        attributes=text(form, "attributes"),
        mode=text(form, "mode") or Mode.ALL.value,
        rows=rows,
        nested=text(form, "nested"),
    )
    spec = _spec(request, f.adapter, f.action)
    for sf in spec.fields if spec else ():
        raw = form.get(f"s_{sf.name}")
        f.settings[sf.name] = raw == "on" if sf.kind is FieldKind.BOOLEAN else (raw or "")
    return f


def _conditions(f: RuleForm) -> Node:
    if f.nested:
        return from_data(json.loads(f.nested))
    items = []
    for row in f.rows:
        if not row.path:
            continue
        op = Op(row.op)
        value: object = None
        if op not in VALUELESS_OPS:
            value = [v.strip() for v in row.value.split(",")] if op is Op.IN else row.value
        items.append(Condition(path=row.path, op=op, value=value))
    return Group(mode=Mode(f.mode), items=tuple(items))


def rule_of_form(request: Request, f: RuleForm) -> tuple[Rule | None, list[str]]:
    """The rule the form describes, or the problems that stop it being one."""
    required = (("Name", f.name), ("Dataset", f.dataset), ("Adapter", f.adapter))
    problems = [f"Required: {label}" for label, v in required if not v]
    if not f.defer.isdigit():
        problems.append("Defer Delivery By: must be a whole number of seconds, 0 or more")
    try:
        conditions = _conditions(f)
    except (ValueError, ValidationError) as exc:
        problems.append(f"Trigger Conditions: {exc}")
    if problems:
        return None, problems
    spec = _spec(request, f.adapter, f.action)
    settings = (
        {sf.name: _setting_value(sf, f.settings.get(sf.name)) for sf in spec.fields} if spec else {}
    )
    rule = Rule(
        name=f.name,
        purpose=f.purpose,
        dataset=f.dataset,
        adapter=f.adapter,
        action=f.action,
        trigger=Trigger(
            on_create=f.on_create,
            on_update=f.on_update,
            attributes=tuple(a.strip() for a in f.attributes.split(",") if a.strip()),
        ),
        conditions=conditions,
        defer_seconds=int(f.defer),
        skip_originating_adapter=f.skip_origin,
        is_active=f.active,
        settings={k: v for k, v in settings.items() if v not in ("", [], None)},
    )
    return rule, []


def _setting_inputs(request: Request, f: RuleForm) -> list[dict[str, object]]:
    spec = _spec(request, f.adapter, f.action)
    registry = need(services(request).registry)
    out = []
    for sf in spec.fields if spec else ():
        kind = sf.kind
        widget = "textarea" if kind in _TEXTAREAS or kind is FieldKind.TABLE else "text"
        if kind is FieldKind.BOOLEAN:
            widget = "checkbox"
        elif kind is FieldKind.CHOICE and sf.allows_expressions:
            widget = "combo"  # a choice or an expression: a select would drop the expression
        elif kind in (FieldKind.CHOICE, FieldKind.DATASET):
            widget = "select"
        choices = sf.choices if kind is FieldKind.CHOICE else [d.name for d in registry.all()]
        out.append(
            {"f": sf, "widget": widget, "choices": choices, "value": f.settings.get(sf.name, "")}
        )
    return out


def _show_form(
    request: Request,
    signed_in: SignedIn,
    f: RuleForm,
    *,
    rule_id: int | None,
    errors: Sequence[str] = (),
    dry: Mapping[str, object] | None = None,
) -> Response:
    svc = services(request)
    adapters = need(svc.adapters).list()
    if not f.adapter and adapters:
        f.adapter = adapters[0].reference_name
    component = need(svc.adapters).component_of(f.adapter)
    actions = (
        [s.name for s in _rules(request).actions.for_component(component)] if component else []
    )
    return render(
        request,
        "rule_form.html",
        title=f"Edit rule {f.name}" if rule_id else "New rule",
        signed_in=signed_in,
        status_code=400 if errors else 200,
        form=f,
        rule_id=rule_id,
        headline=HEADLINE,
        errors=errors,
        dry=dry,
        datasets=[d.name for d in need(svc.registry).all()],
        adapters=adapters,
        actions=actions,
        ops=OPS,
        valueless=[op.value for op in VALUELESS_OPS],
        settings=_setting_inputs(request, f),
        can_write=signed_in.user.role in WRITERS,
    )


# --- handlers ---------------------------------------------------------------------


async def rules_list(request: Request) -> Response:
    """GET /rules: the rules, grouped by dataset (``?dataset=`` for one)."""
    signed_in = await require_role(request, *ANY_ROLE)
    chosen = request.query_params.get("dataset", "")
    rules = sorted(_rules(request).list_rules(chosen or None), key=lambda r: (r.dataset, r.name))
    groups: dict[str, list[Rule]] = {}
    for rule in rules:
        groups.setdefault(rule.dataset, []).append(rule)
    return render(
        request,
        "rules.html",
        title="Rules",
        signed_in=signed_in,
        groups=groups,
        chosen=chosen,
        datasets=[d.name for d in need(services(request).registry).all()],
        can_write=signed_in.user.role in WRITERS,
        notice={"saved": "The rule was saved.", "deleted": "The rule was deleted."}.get(
            request.query_params.get("m", ""), ""
        ),
    )


def _rule(request: Request) -> Rule:
    try:
        return _rules(request).get(int(request.path_params["rule_id"]))
    except (ValueError, NotFoundError):
        raise HTTPException(404) from None


async def new_rule(request: Request) -> Response:
    """GET /rules/new: an empty rule form (``?dataset=`` preselects the dataset)."""
    signed_in = await require_role(request, *WRITERS)
    f = RuleForm(dataset=request.query_params.get("dataset", ""), rows=[CondRow()])
    return _show_form(request, signed_in, f, rule_id=None)


async def edit_rule(request: Request) -> Response:
    """GET /rules/{rule_id}/edit: a saved rule's form (read-only for auditors)."""
    signed_in = await require_role(request, *ANY_ROLE)
    rule = _rule(request)
    f = form_of_rule(rule, _spec(request, rule.adapter, rule.action))
    return _show_form(request, signed_in, f, rule_id=rule.id)


def _edit_rows(f: RuleForm, do: str) -> bool:
    """Apply "Add Condition" / "Remove N"; True if it was one of them."""
    if do == "add_condition":
        f.rows.append(CondRow())
        return True
    if do.startswith("remove_") and do[7:].isdigit():
        index = int(do[7:])
        if index < len(f.rows):
            del f.rows[index]
        return True
    return False


async def save_rule(request: Request) -> Response:
    """POST /rules or /rules/{rule_id}/edit: save, or Choose / Add Condition / Remove / Dry run."""
    signed_in, form = await guarded_post(request)
    rule_id = _rule(request).id if "rule_id" in request.path_params else None
    f = form_of_post(request, form)
    do = text(form, "do") or "save"
    if do == "choose" or _edit_rows(f, do):
        return _show_form(request, signed_in, f, rule_id=rule_id)
    rule, problems = rule_of_form(request, f)
    if rule is not None and do == "dry_run":
        return await _dry_run(request, signed_in, f, rule, text(form, "dry_record"), rule_id)
    try:
        if rule is None:
            raise RuleError(f.name, problems)
        saved = await _save(request, signed_in, rule, rule_id)
    except (SettingsError, RuleError) as exc:
        return _show_form(request, signed_in, f, rule_id=rule_id, errors=exc.problems)
    except (ValidationError, ConflictError) as exc:
        return _show_form(request, signed_in, f, rule_id=rule_id, errors=[exc.message])
    return RedirectResponse(f"/rules?dataset={saved.dataset}&m=saved", 303)


async def _save(request: Request, signed_in: SignedIn, rule: Rule, rule_id: int | None) -> Rule:
    rules = _rules(request)
    compiled = rules.compile(rule)
    rule = replace(
        rule, settings=rules.check_settings(compiled.spec.fields, rule.settings, rule.dataset)
    )
    if rule_id is None:
        saved = await rules.create(rule)
        await audit(
            request,
            signed_in,
            "rule.create",
            saved.name,
            {"before": None, "after": rule_to_data(saved)},
        )
    else:
        before = rule_to_data(rules.get(rule_id))
        saved = await rules.update(rule_id, rule)
        await audit(
            request,
            signed_in,
            "rule.update",
            saved.name,
            {"before": before, "after": rule_to_data(saved)},
        )
    return saved


async def _dry_run(
    request: Request, signed_in: SignedIn, f: RuleForm, rule: Rule, record: str, rule_id: int | None
) -> Response:
    if not record.isdigit():
        return _show_form(
            request, signed_in, f, rule_id=rule_id, errors=["Dry run: enter a record id"]
        )
    try:
        result = await need(services(request).engine).dry_run(rule, int(record))
    except (SettingsError, RuleError) as exc:
        return _show_form(request, signed_in, f, rule_id=rule_id, errors=exc.problems)
    except (ValidationError, NotFoundError) as exc:
        return _show_form(
            request, signed_in, f, rule_id=rule_id, errors=[f"Dry run: {exc.message}"]
        )
    dry = {
        "record": record,
        "matched": result.matched,
        "values": {k: json.dumps(v, default=str) for k, v in result.values.items()},
        "settings": {k: json.dumps(v, default=str) for k, v in result.settings.items()},
        "adapter_enabled": result.adapter_enabled,
        "defer": result.would_defer_seconds,
    }
    return _show_form(request, signed_in, f, rule_id=rule_id, dry=dry)


async def confirm_delete_rule(request: Request) -> Response:
    """GET /rules/{rule_id}/delete: ask before deleting."""
    signed_in = await require_role(request, *WRITERS)
    return render(
        request, "rule_delete.html", title="Delete rule", signed_in=signed_in, rule=_rule(request)
    )


async def delete_rule(request: Request) -> Response:
    """POST /rules/{rule_id}/delete: delete the rule."""
    signed_in, _form = await guarded_post(request)
    rule = _rule(request)
    assert rule.id is not None
    await _rules(request).delete(rule.id)
    await audit(
        request, signed_in, "rule.delete", rule.name, {"before": rule_to_data(rule), "after": None}
    )
    return RedirectResponse(f"/rules?dataset={rule.dataset}&m=deleted", 303)


async def set_active(request: Request) -> Response:
    """POST /rules/{rule_id}/active: activate (``active=on``) or deactivate the rule."""
    signed_in, form = await guarded_post(request)
    rule = _rule(request)
    assert rule.id is not None
    is_active = form.get("active") == "on"
    try:
        await _rules(request).set_active(rule.id, is_active)
    except ValidationError as exc:
        return _show_form(
            request,
            signed_in,
            form_of_rule(rule, _spec(request, rule.adapter, rule.action)),
            rule_id=rule.id,
            errors=[exc.message],
        )
    action = "rule.activate" if is_active else "rule.deactivate"
    await audit(request, signed_in, action, rule.name)
    return RedirectResponse(f"/rules?dataset={rule.dataset}&m=saved", 303)
