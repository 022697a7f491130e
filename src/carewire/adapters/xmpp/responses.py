"""A clinician's response to an alert, written back into the data (docs/alerts.md).

When a recipient answers an alert with Accept, Decline or Accept and Call,
the rule that sent it says what to write: its ``accept``, ``decline`` or
``accept_and_call`` settings are ``expression=value`` lines applied to the
triggering record (or records linked to it) exactly as the DataUpdate
adapter applies them (:mod:`carewire.adapters.updates`), and its
``responder_path`` ("Store Responding User as") receives the responder's
login. The rule and the record are found from the alert's DELIVERIES record
(``rule`` = rule name, ``source`` = ``DATASET/id``); the rule's settings are
read as they are now, so an edited rule applies its current updates.

The writes form one transaction (with whatever the caller adds: the XMPP
side records the response message there) made with the origin ``adapter = the rule's XMPP adapter``,
``actor = xmpp:<login>``, so they trigger further rules like any other write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import cast

from carewire.adapters.updates import (
    RecordRenderer,
    UpdateError,
    plan_updates,
    write_updates,
)
from carewire.adapters.xmpp.actions import SEND_ALERT
from carewire.adapters.xmpp.gateway import ResponseApplied, ResponseError
from carewire.datasets.model import Origin, Record
from carewire.datasets.paths import PathError, PathResolver
from carewire.datasets.registry import Registry
from carewire.datasets.service import Batch, DatasetService
from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.rules.model import Rule
from carewire.rules.service import RuleService

#: Responses and the Send Alert settings that hold their updates.
SETTINGS_OF = {
    "accept": "accept",
    "decline": "decline",
    "accept-and-call": "accept_and_call",
}
ALERT_ACTION = "Send Alert"


class RuleResponder:
    """The :class:`~.gateway.AlertResponder` the composition root binds: :func:`apply_response`."""

    def __init__(
        self,
        *,
        datasets: DatasetService,
        resolver: PathResolver,
        rules: RuleService,
        registry: Registry,
        tz: tzinfo = UTC,
    ) -> None:
        self._datasets = datasets
        self._resolver = resolver
        self._rules = rules
        self._registry = registry
        self._tz = tz

    async def apply(
        self,
        *,
        delivery: Record,
        action: str,
        responder_login: str,
        now: datetime,
        also: Callable[[Batch], Awaitable[object]] | None = None,
    ) -> ResponseApplied:
        """Apply the rule's updates for ``action`` (see :func:`apply_response`)."""
        return await apply_response(
            datasets=self._datasets,
            resolver=self._resolver,
            rules=self._rules,
            registry=self._registry,
            delivery=delivery,
            action=action,
            responder_login=responder_login,
            now=now,
            also=also,
            tz=self._tz,
        )


async def apply_response(
    *,
    datasets: DatasetService,
    resolver: PathResolver,
    rules: RuleService,
    registry: Registry,
    delivery: Record,
    action: str,
    responder_login: str,
    now: datetime,
    also: Callable[[Batch], Awaitable[object]] | None = None,
    tz: tzinfo = UTC,
) -> ResponseApplied:
    """Apply the rule's updates for ``action`` to the record that triggered the alert.

    Args:
        datasets: The dataset service (every write goes through it).
        resolver: Reads attribute paths (for ``#{...}`` and linked records).
        rules: Finds the rule by name.
        registry: The dataset definitions.
        delivery: The DELIVERIES record of the firing that sent the alert.
        action: ``accept``, ``decline`` or ``accept-and-call``.
        responder_login: Who responded (stored at the rule's responder path).
        now: The time of the response.
        also: Further writes made in the same transaction (the XMPP side
            records the response there), or None.
        tz: The time zone templates render times in.

    Raises:
        ResponseError: The rule was deleted or no longer sends alerts, the
            record was deleted, the settings or an expression are invalid, or
            the data refused a value; ``condition`` says how to answer.
    """
    setting = SETTINGS_OF.get(action)
    if setting is None:
        raise ResponseError(f"unknown response {action!r}", condition="bad-request")
    rule = _rule(rules, delivery)
    record = await _source(datasets, rule, delivery)
    try:
        settings = rules.check_settings(SEND_ALERT, rule.settings, rule.dataset)
    except ValidationError as exc:
        raise ResponseError(f"rule {rule.name!r} has invalid settings: {exc.message}") from None
    lines = cast(Sequence[Mapping[str, str]], settings.get(setting) or [])
    responder_path = settings.get("responder_path")
    literals = [(str(responder_path), responder_login)] if responder_path else []
    try:
        plan = await plan_updates(
            registry,
            record,
            lines,
            RecordRenderer(registry, resolver, record, tz=tz),
            literals=literals,
        )
    except (PathError, UpdateError, ValidationError) as exc:
        raise ResponseError(
            f"rule {rule.name!r}: the {setting} updates cannot be applied: {exc.message}"
        ) from None
    origin = Origin(adapter=rule.adapter, actor=f"xmpp:{responder_login}")
    try:
        async with datasets.batch(origin, "alert_response") as batch:
            await write_updates(batch, plan)
            if also is not None:
                await also(batch)
    except (ValidationError, ConflictError, NotFoundError) as exc:
        raise ResponseError(
            f"rule {rule.name!r}: the {setting} updates were refused: {exc.message}"
        ) from None
    return ResponseApplied(
        rule=rule.name,
        source=f"{record.dataset}/{record.id}",
        action=action,
        updated=tuple(plan),
        at=now,
    )


def _rule(rules: RuleService, delivery: Record) -> Rule:
    name = str(delivery.get("rule") or "")
    rule = rules.find(name) if name else None
    if rule is None:
        raise ResponseError(
            f"the rule {name!r} that sent this alert no longer exists", condition="item-not-found"
        )
    if rule.action != ALERT_ACTION:
        raise ResponseError(
            f"the rule {name!r} no longer sends alerts with responses (its action is "
            f"{rule.action!r})",
            condition="not-acceptable",
        )
    return rule


async def _source(datasets: DatasetService, rule: Rule, delivery: Record) -> Record:
    source = str(delivery.get("source") or "")
    dataset, _, raw_id = source.partition("/")
    if not raw_id.isdigit():
        raise ResponseError(f"delivery {delivery.id} has no triggering record ({source!r})")
    if dataset != rule.dataset:
        raise ResponseError(
            f"the rule {rule.name!r} now watches {rule.dataset}, not {dataset}",
            condition="not-acceptable",
        )
    try:
        return await datasets.get(dataset, int(raw_id))
    except NotFoundError:
        raise ResponseError(
            f"the record {source} that triggered this alert was deleted",
            condition="item-not-found",
        ) from None
