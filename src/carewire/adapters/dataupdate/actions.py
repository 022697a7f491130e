"""The DataUpdate adapter's rule actions: Update Record and Create Record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from carewire.adapters.updates import plan_updates, write_updates
from carewire.datasets.model import Record, RecordId
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
    lines = cast(Sequence[Mapping[str, str]], ctx.settings["updates"])
    plan = await plan_updates(ctx.datasets.registry, ctx.record, lines, ctx.render)
    if not plan:
        return ActionOutcome(text="no linked record to update")
    async with ctx.datasets.batch(ctx.origin, "dataupdate_update") as batch:
        await write_updates(batch, plan)
    shown = ", ".join(f"{d}/{i}" for d, i in plan)
    return ActionOutcome(text=f"updated {shown}")


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
