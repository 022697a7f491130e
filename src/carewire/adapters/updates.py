"""``expression=value`` updates (UPDATES settings), shared by the adapters that apply them.

An update names an attribute of the triggering record (``status``) or of
records linked to it (``call.status``, ``room.beds.state``: every record the
links reach), and a value that may contain ``#{...}`` expressions rendered
against the triggering record. An empty rendered value clears the attribute.

:func:`plan_updates` resolves the lines to ``{(dataset, id): changes}``
without writing; :func:`write_updates` writes a plan inside a batch. The
DataUpdate adapter's Update Record action and the XMPP adapter's alert
responses (Accept / Decline / Accept and Call) use both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, tzinfo
from typing import cast

from carewire.datasets.model import Record
from carewire.datasets.paths import AttributePath, PathResolver, Step, parse_path
from carewire.datasets.registry import Registry
from carewire.datasets.service import Batch
from carewire.datasets.templates import parse_template, render_for
from carewire.errors import ValidationError
from carewire.rules.actions import Renderer

#: Records to change and their changes.
Plan = dict[tuple[str, int], dict[str, object]]


class UpdateError(ValidationError):
    """An update line cannot be applied (its path ends at a link, …)."""

    code = "invalid-update"


class RecordRenderer:
    """A :class:`~carewire.rules.actions.Renderer` bound to one record, outside the engine."""

    def __init__(
        self, registry: Registry, resolver: PathResolver, record: Record, *, tz: tzinfo = UTC
    ) -> None:
        self._registry, self._resolver, self._record, self._tz = registry, resolver, record, tz

    async def __call__(self, text: str) -> str:
        """``text`` with every ``#{...}`` replaced (TemplateError when malformed)."""
        template = parse_template(self._registry, self._record.dataset, text)
        return await render_for(template, self._record, self._resolver, tz=self._tz)

    async def value(self, path: str) -> object:
        """The value of one attribute path (PathError when it does not exist)."""
        parsed = parse_path(self._registry, self._record.dataset, path)
        return await self._resolver.resolve(self._record, parsed)


async def plan_updates(
    registry: Registry,
    record: Record,
    lines: Sequence[Mapping[str, str]],
    render: Renderer,
    *,
    literals: Sequence[tuple[str, object]] = (),
) -> Plan:
    """Resolve update lines against the triggering ``record``.

    Args:
        registry: The dataset definitions.
        record: The triggering record (paths start from its dataset).
        lines: ``{"path", "value"}`` items, as UPDATES settings are normalised;
            values are templates.
        render: Renders templates against ``record``.
        literals: ``(path, value)`` pairs written as given, not rendered
            (e.g. the responding user's login).

    Returns:
        Changes by record; empty when every path crosses an unset link.

    Raises:
        PathError: A path does not exist.
        TemplateError: A value is not a valid template.
        UpdateError: A path ends at a link or ``id`` rather than an attribute.
    """
    targets: Plan = {}
    items: list[tuple[str, object, bool]] = [(i["path"], i["value"], True) for i in lines]
    items += [(path, value, False) for path, value in literals]
    for text, raw, is_template in items:
        path = parse_path(registry, record.dataset, text)
        value: object = raw
        if is_template:
            rendered = await render(str(raw))
            value = rendered if rendered != "" else None  # an empty value clears the attribute
        for dataset, record_id in await _owners(record, path, render):
            assert path.attribute is not None
            targets.setdefault((dataset, record_id), {})[path.attribute.name] = value
    return targets


async def _owners(record: Record, path: AttributePath, render: Renderer) -> list[tuple[str, int]]:
    """The records that hold the path's final attribute."""
    if path.attribute is None:
        raise UpdateError(f"{path.text!r} ends at a link; name an attribute to update")
    if path.is_direct:
        return [(record.dataset, int(record.id))]
    last = path.steps[-1]
    prefix = ".".join(_segment(s) for s in path.steps)  # filters kept: a[level=1].status
    ids = await render.value(f"{prefix}.id")
    items = ids if isinstance(ids, list) else [ids]
    return [(last.link.target, int(cast(int, i))) for i in items if i is not None]


def _segment(step: Step) -> str:
    if not step.where:
        return step.link.name
    return f"{step.link.name}[{','.join(f'{k}={v}' for k, v in step.where)}]"


async def write_updates(batch: Batch, plan: Plan) -> None:
    """Write a plan in ``batch`` (validation errors of the service propagate)."""
    for (dataset, record_id), changes in plan.items():
        await batch.update(dataset, record_id, changes)
