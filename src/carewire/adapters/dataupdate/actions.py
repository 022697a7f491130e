"""The DataUpdate adapter's rule actions: Update Record and Create Record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from carewire.datasets.model import Record, RecordId
from carewire.datasets.paths import AttributePath, parse_path
from carewire.errors import ValidationError
from carewire.rules.actions import ActionContext, ActionFailed, ActionOutcome, ActionSpec
from carewire.rules.settings import FieldKind, SettingField

COMPONENT = "DataUpdate"

UPDATES = SettingField(
    name="updates",
    label="Updates",
    kind=FieldKind.UPDATES,
    is_required=True,
    help="expression=value, one per line; the expression is an attribute of the record "
    "(status) or of a linked record (room.status); values may contain #{...}.",
)


async def update_record(ctx: ActionContext) -> ActionOutcome:
    """Apply ``expression=value`` updates to the triggering record or records linked to it."""
    registry = ctx.datasets.registry
    targets: dict[tuple[str, int], dict[str, object]] = {}
    for item in cast(Sequence[Mapping[str, str]], ctx.settings["updates"]):
        path = parse_path(registry, ctx.rule.dataset, item["path"])
        rendered = await ctx.render(item["value"])
        value = rendered if rendered != "" else None  # an empty value clears the attribute
        for dataset, record_id in await _owners(ctx, path):
            assert path.attribute is not None
            targets.setdefault((dataset, record_id), {})[path.attribute.name] = value
    if not targets:
        return ActionOutcome(text="no linked record to update")
    async with ctx.datasets.batch(ctx.origin, "dataupdate_update") as batch:
        for (dataset, record_id), changes in targets.items():
            await batch.update(dataset, record_id, changes)
    shown = ", ".join(f"{d}/{i}" for d, i in targets)
    return ActionOutcome(text=f"updated {shown}")


async def _owners(ctx: ActionContext, path: AttributePath) -> list[tuple[str, int]]:
    """The records that hold the path's final attribute."""
    if path.attribute is None:
        raise ActionFailed(f"{path.text!r} ends at a link; name an attribute to update")
    if path.is_direct:
        return [(ctx.record.dataset, int(ctx.record.id))]
    last = path.steps[-1]
    prefix = ".".join(s.link.name for s in path.steps)
    ids = await ctx.render.value(f"{prefix}.id")
    items = ids if isinstance(ids, list) else [ids]
    return [(last.link.target, int(cast(int, i))) for i in items if i is not None]


async def create_record(ctx: ActionContext) -> ActionOutcome:
    """Create (or, with Upsert, update by key) a record in another dataset."""
    dataset = str(ctx.settings["dataset"])
    values: dict[str, object] = {}
    for line in cast(Sequence[str], ctx.settings["values"]):
        name, sep, raw = line.partition("=")
        if not sep or not name.strip():
            raise ActionFailed(f"{line!r} is not in the form attribute=value")
        values[name.strip()] = await ctx.render(raw.strip())
    try:
        async with ctx.datasets.batch(ctx.origin, "dataupdate_create") as batch:
            if ctx.settings.get("upsert"):
                record: Record = await batch.upsert(dataset, values)
            else:
                record = await batch.create(dataset, values)
    except ValidationError as exc:
        raise ActionFailed(str(exc)) from None
    return ActionOutcome(text=f"wrote {dataset}/{RecordId(record.id)}")


ACTIONS = (
    ActionSpec(
        name="Update Record",
        component=COMPONENT,
        fields=(UPDATES,),
        handler=update_record,
        description="Set attributes of the triggering record or of records linked to it.",
    ),
    ActionSpec(
        name="Create Record",
        component=COMPONENT,
        fields=(
            SettingField(name="dataset", label="Dataset", kind=FieldKind.DATASET, is_required=True),
            SettingField(
                name="values",
                label="Values",
                kind=FieldKind.LINES,
                is_required=True,
                allows_expressions=True,
                help="attribute=value, one per line; values may contain #{...}.",
            ),
            SettingField(name="upsert", label="Upsert", kind=FieldKind.BOOLEAN, default=False),
        ),
        handler=create_record,
        description="Create a record (or update the one with the same key) in a dataset.",
    ),
)
