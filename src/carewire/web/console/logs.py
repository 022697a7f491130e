"""Console pages for what happened: rule deliveries (with their history) and the audit trail.

Deliveries are the DELIVERIES records the rules engine keeps (one per
firing, its states in DELIVERY_HISTORY); everyone signed in may read them.
The audit trail is for system administrators and auditors only. Both lists
filter, page newest first and export the same selection as CSV; an audit
export is itself recorded (``audit.export``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import DatasetService
from carewire.errors import NotFoundError, ValidationError
from carewire.rules.model import DeliveryStatus
from carewire.rules.recipients import Recipient, recipients_of, summary
from carewire.security.audit import (
    EXPORT_COLUMNS,
    AuditEntry,
    AuditEvent,
    Channel,
    Outcome,
    entry_row,
)
from carewire.security.console_auth import Role
from carewire.security.csv_export import SafeDictWriter
from carewire.web.console.auth import ANY_ROLE, remote_ip, require_role
from carewire.web.console.data import Paging, display, kept, need, paging_params, services
from carewire.web.console.render import render

#: Who may read the audit trail.
AUDIT_READERS = (Role.SYSTEM_ADMIN, Role.AUDITOR)
DELIVERY_COLUMNS = (
    "id",
    "triggered_at",
    "rule",
    "interface_name",
    "status",
    "status_text",
    "delivery_date",
    "processing_time",
    "source",
)
#: The most rows one CSV export holds.
EXPORT_LIMIT = 100_000
_BATCH = 1000


def parse_day(value: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as midnight UTC (``end``: the midnight after it); blank → None.

    Raises:
        ValidationError: The text is not a date.
    """
    if not value.strip():
        return None
    try:
        day = datetime.fromisoformat(value.strip()[:10]).replace(tzinfo=UTC)
        return day + timedelta(days=1) if end else day
    except ValueError:
        raise ValidationError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    except OverflowError:  # the day after 9999-12-31
        return datetime.max.replace(tzinfo=UTC)


def _csv(rows: Sequence[Mapping[str, object]], columns: Sequence[str], name: str) -> Response:
    out = io.StringIO()
    writer = SafeDictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- deliveries -------------------------------------------------------------------


def _delivery_filters(params: QueryParams) -> tuple[Filter, ...]:
    filters = [
        Filter(field=column, op=FilterOp.EQ, value=params[key])
        for key, column in (("status", "status"), ("rule", "rule"), ("adapter", "interface_name"))
        if params.get(key)
    ]
    since = parse_day(params.get("since", ""))
    until = parse_day(params.get("until", ""), end=True)
    if since is not None:
        filters.append(Filter(field="triggered_at", op=FilterOp.GE, value=since))
    if until is not None:
        filters.append(Filter(field="triggered_at", op=FilterOp.LT, value=until))
    return tuple(filters)


_NEWEST = (Sort(field="triggered_at", is_descending=True), Sort(field="id", is_descending=True))


def _row(values: Mapping[str, object], record_id: int) -> dict[str, object]:
    return {c: display(values.get(c)) for c in DELIVERY_COLUMNS} | {"id": record_id}


def _message_of(values: Mapping[str, object]) -> int | None:
    message = values.get("message")
    return message if isinstance(message, int) else None


def _when(at: datetime | None) -> dict[str, str]:
    """A time for a ``<time data-local-time>``: ISO UTC and the readable fallback."""
    return {"iso": at.isoformat() if at else "", "text": display(at)}


def _recipient_view(r: Recipient) -> dict[str, object]:
    return {
        "name": r.name,
        "state": r.state,
        "at": _when(r.at),
        "failure": r.failure,
        "times": [(label, _when(r.times.get(field))) for label, field in RECIPIENT_TIMES],
    }


#: The times of a recipient's copy the delivery page shows: (heading, MESSAGE_DELIVERIES field).
RECIPIENT_TIMES = (
    ("Sent", "sent_at"),
    ("Received", "received_at"),
    ("Displayed", "displayed_at"),
    ("Acknowledged", "acknowledged"),
)


async def deliveries(request: Request) -> Response:
    """GET /deliveries: rule firings, newest first, filtered by status, rule, adapter, period."""
    signed_in = await require_role(request, *ANY_ROLE)
    params = request.query_params
    offset, limit = paging_params(params)
    svc = need(services(request).datasets)
    error, rows, total = "", [], 0
    try:
        query = Query(filters=_delivery_filters(params), sort=_NEWEST, offset=offset, limit=limit)
        page = await svc.query("DELIVERIES", query)
        rows, total = [_row(r.values, r.id) for r in page.records], page.total
        messages = [_message_of(r.values) for r in page.records]
        notified = await recipients_of(svc, [m for m in messages if m is not None])
        for row, rec, m in zip(rows, page.records, messages, strict=True):
            row["notified"] = summary(notified.get(m, [])) if m is not None else ""
            row["triggered_iso"] = _iso(rec.values.get("triggered_at"))
    except ValidationError as exc:
        error = exc.message
    keep = kept(params, "status", "rule", "adapter", "since", "until")
    return render(
        request,
        "deliveries.html",
        title="Deliveries",
        signed_in=signed_in,
        status_code=400 if error else 200,
        rows=rows,
        error=error,
        params=params,
        statuses=[s.value for s in DeliveryStatus],
        adapters=[a.reference_name for a in need(services(request).adapters).list()],
        rules=sorted({r.name for r in need(services(request).rules).list_rules()}),
        export="/deliveries.csv?" + urlencode(keep),
        paging=Paging(offset=offset, limit=limit, total=total, params=keep),
    )


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else ""


async def _all_deliveries(svc: DatasetService, params: QueryParams) -> list[dict[str, object]]:
    filters = _delivery_filters(params)
    rows: list[dict[str, object]] = []
    while len(rows) < EXPORT_LIMIT:
        query = Query(filters=filters, sort=_NEWEST, offset=len(rows), limit=_BATCH)
        page = await svc.query("DELIVERIES", query)
        messages = [m for r in page.records if (m := _message_of(r.values)) is not None]
        notified = await recipients_of(svc, messages)
        for r in page.records:
            m = _message_of(r.values)
            rows.append(_row(r.values, r.id) | {"notified": summary(notified.get(m or 0, []))})
        if len(page.records) < _BATCH:
            break
    return rows


async def deliveries_csv(request: Request) -> Response:
    """GET /deliveries.csv: the filtered deliveries as a CSV attachment (the export is recorded)."""
    signed_in = await require_role(request, *ANY_ROLE)
    try:
        rows = await _all_deliveries(need(services(request).datasets), request.query_params)
    except ValidationError:
        raise HTTPException(400) from None
    await services(request).audit.record(
        AuditEvent(
            actor=f"console:{signed_in.user.username}",
            channel=Channel.CONSOLE,
            action="deliveries.export",
            target="console",
            remote_ip=remote_ip(request),
            details={"format": "csv", "entries": len(rows), "filters": dict(request.query_params)},
        )
    )
    return _csv(rows, (*DELIVERY_COLUMNS, "notified"), "deliveries.csv")


async def delivery(request: Request) -> Response:
    """GET /deliveries/{delivery_id}: one delivery and its history of states."""
    signed_in = await require_role(request, *ANY_ROLE)
    svc = need(services(request).datasets)
    try:
        delivery_id = int(request.path_params["delivery_id"])
        rec = await svc.get("DELIVERIES", delivery_id)
    except (ValueError, NotFoundError):
        raise HTTPException(404) from None
    query = Query(
        filters=(Filter(field="delivery", op=FilterOp.EQ, value=delivery_id),),
        sort=(Sort(field="id"),),
        limit=1000,
    )
    history = (await svc.query("DELIVERY_HISTORY", query)).records
    message = _message_of(rec.values)
    notified = (await recipients_of(svc, [message])).get(message, []) if message else []
    return render(
        request,
        "deliveries_detail.html",
        title=f"Delivery {delivery_id}",
        signed_in=signed_in,
        row=_row(rec.values, rec.id),
        columns=DELIVERY_COLUMNS,
        history=[dict(r.values, id=r.id) for r in history],
        display=display,
        message=message,
        recipients=[_recipient_view(r) for r in notified],
    )


# --- audit ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """Which audit entries a page or an export shows (None: any).

    Attributes:
        since: From this time on.
        until: Before this time.
        actor: This actor or one under it (``console`` matches ``console:alice``).
        action: This action or one under it (``rule`` matches ``rule.create``).
        outcome: Success or failure.
    """

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    outcome: Outcome | None = None

    async def page(self, request: Request, offset: int, limit: int) -> tuple[list[AuditEntry], int]:
        """One page of matching entries, newest first, and how many match."""
        return await services(request).audit.store.entries(
            self.since,
            self.until,
            actor=self.actor,
            action=self.action,
            outcome=self.outcome,
            offset=offset,
            limit=limit,
        )


def _audit_filter(params: QueryParams) -> AuditFilter:
    outcome = params.get("outcome", "")
    return AuditFilter(
        since=parse_day(params.get("since", "")),
        until=parse_day(params.get("until", ""), end=True),
        actor=params.get("actor", "").strip() or None,
        action=params.get("action", "").strip() or None,
        outcome=Outcome(outcome) if outcome in {o.value for o in Outcome} else None,
    )


#: Details longer than this are shown cut, with the whole text one click away.
DETAILS_SHOWN = 60


def _audit_row(entry: AuditEntry) -> dict[str, object]:
    row = entry_row(entry)
    return row | {"details": json.dumps(row["details"], sort_keys=True)}


def _audit_view(entry: AuditEntry) -> dict[str, object]:
    """An entry as the page shows it: the time readable, long details cut with a way to expand."""
    row = _audit_row(entry)
    details = str(row["details"])
    short = "" if len(details) <= DETAILS_SHOWN else details[: DETAILS_SHOWN - 1] + "…"
    return row | {"at_text": display(entry.at), "details_short": short}


async def audit(request: Request) -> Response:
    """GET /audit: the audit trail, newest first (system administrators and auditors)."""
    signed_in = await require_role(request, *AUDIT_READERS)
    params = request.query_params
    offset, limit = paging_params(params)
    error, entries, total = "", [], 0
    try:
        found, total = await _audit_filter(params).page(request, offset, limit)
        entries = [_audit_view(e) for e in found]
    except ValidationError as exc:
        error = exc.message
    keep = kept(params, "since", "until", "actor", "action", "outcome")
    return render(
        request,
        "audit.html",
        title="Audit trail",
        signed_in=signed_in,
        status_code=400 if error else 200,
        entries=entries,
        error=error,
        params=params,
        outcomes=[o.value for o in Outcome],
        export="/audit.csv?" + urlencode(keep),
        paging=Paging(offset=offset, limit=limit, total=total, params=keep),
    )


async def audit_csv(request: Request) -> Response:
    """GET /audit.csv: the filtered trail, oldest first, as CSV; the export is recorded."""
    signed_in = await require_role(request, *AUDIT_READERS)
    trail = services(request).audit
    try:
        chosen = _audit_filter(request.query_params)
    except ValidationError:
        raise HTTPException(400) from None
    rows: list[dict[str, object]] = []
    while len(rows) < EXPORT_LIMIT:
        found, _total = await chosen.page(request, len(rows), _BATCH)
        rows += [_audit_row(e) for e in found]
        if len(found) < _BATCH:
            break
    rows.reverse()
    shown = {k: v if v is None or isinstance(v, str) else str(v) for k, v in asdict(chosen).items()}
    await trail.record(
        AuditEvent(
            actor=f"console:{signed_in.user.username}",
            channel=Channel.CONSOLE,
            action="audit.export",
            target="console",
            remote_ip=remote_ip(request),
            details={"format": "csv", "entries": len(rows), "filters": shown},
        )
    )
    return _csv(rows, EXPORT_COLUMNS, "audit.csv")
