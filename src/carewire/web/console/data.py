"""Console pages for datasets and their records: definitions, new attributes, search and edit.

Everyone signed in may look; administrators (not auditors) may add
attributes and write records. Writes go through the registry and the
dataset service, so validation is the same as for the REST API and the
CLI; their refusals are shown next to the form. The small helpers at the
top (services, guarded POSTs, paging) are shared with the rules and log pages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlencode

from starlette.datastructures import FormData, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from carewire.datasets.definitions import DefinitionError
from carewire.datasets.model import Attribute, AttrType, Dataset, Origin, holds_reference
from carewire.datasets.query import FilterOp, Query, parse_filter, parse_sort
from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.security.audit import AuditEvent, Channel
from carewire.security.phi_access import holds_phi, read_details, read_target
from carewire.web.console.auth import (
    ANY_ROLE,
    WRITERS,
    SignedIn,
    check_csrf,
    remote_ip,
    require_role,
)
from carewire.web.console.render import error_page, render

if TYPE_CHECKING:
    from carewire.web.console.services import ConsoleServices

log = logging.getLogger(__name__)

T = TypeVar("T")
#: The most fields a data or rule form may post (a rule with a long action schema has ~60).
MAX_FIELDS = 500
PAGE_SIZES = (25, 50, 100)
FILTER_OPS = tuple(op.value for op in FilterOp)

# --- shared helpers ---------------------------------------------------------------


def services(request: Request) -> ConsoleServices:
    """The console's services."""
    return cast("ConsoleServices", request.app.state.services)


def need(value: T | None) -> T:
    """A service the page needs (a console built without it answers 404)."""
    if value is None:
        raise HTTPException(404)
    return value


async def guarded_post(request: Request) -> tuple[SignedIn, FormData]:
    """An administrator's POST with the right CSRF token, and its form."""
    signed_in = await require_role(request, *WRITERS)
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    check_csrf(request, form, signed_in)
    return signed_in, form


def text(form: Mapping[str, object], name: str) -> str:
    """A form or query field as text (missing: empty)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def audit(
    request: Request,
    signed_in: SignedIn,
    action: str,
    target: str,
    details: Mapping[str, object] | None = None,
) -> None:
    """Record a console act in the audit trail."""
    await services(request).audit.record(
        AuditEvent(
            actor=f"console:{signed_in.user.username}",
            channel=Channel.CONSOLE,
            action=action,
            target=target,
            remote_ip=remote_ip(request),
            details=details or {},
        )
    )


def origin_of(signed_in: SignedIn) -> Origin:
    """Who writes records from the console."""
    return Origin(actor=f"console:{signed_in.user.username}")


def int_param(params: Mapping[str, str], name: str, default: int, *, top: int) -> int:
    """A whole-number query parameter between 0 and ``top`` (otherwise ``default``)."""
    try:
        value = int(params.get(name, ""))
    except ValueError:
        return default
    return value if 0 <= value <= top else default


@dataclass(frozen=True, slots=True, kw_only=True)
class Paging:
    """Where a page of results is, for the "N–M of T" line and the links around it.

    Attributes:
        offset: Items skipped.
        limit: Page size.
        total: Items in all.
        params: The page's other query parameters (kept in the links).
    """

    offset: int
    limit: int
    total: int
    params: Mapping[str, str]

    @property
    def summary(self) -> str:
        """``1–25 of 40`` (``0 of 0`` when empty)."""
        if not self.total or self.offset >= self.total:
            return f"0 of {self.total}"
        return f"{self.offset + 1}–{min(self.offset + self.limit, self.total)} of {self.total}"

    def link(self, offset: int) -> str:
        """The query string of the page at ``offset``."""
        return "?" + urlencode({**self.params, "offset": str(offset), "limit": str(self.limit)})

    @property
    def previous(self) -> str:
        """The previous page's query string, or empty on the first page."""
        return self.link(max(0, self.offset - self.limit)) if self.offset > 0 else ""

    @property
    def next(self) -> str:
        """The next page's query string, or empty on the last page."""
        after = self.offset + self.limit
        return self.link(after) if after < self.total else ""


def paging_params(params: QueryParams) -> tuple[int, int]:
    """``offset`` and ``limit`` of a list page."""
    limit = int_param(params, "limit", PAGE_SIZES[0], top=PAGE_SIZES[-1]) or PAGE_SIZES[0]
    return int_param(params, "offset", 0, top=10**9), limit


def kept(params: QueryParams, *names: str) -> dict[str, str]:
    """The non-empty ``names`` of ``params`` (for paging and sort links)."""
    return {n: params[n] for n in names if params.get(n)}


# --- datasets ---------------------------------------------------------------------


def _dataset(request: Request) -> Dataset:
    registry = need(services(request).registry)
    name = str(request.path_params["name"])
    if name not in registry:
        raise HTTPException(404)
    return registry.get(name)


async def datasets(request: Request) -> Response:
    """GET /datasets: every dataset definition."""
    signed_in = await require_role(request, *ANY_ROLE)
    everything = need(services(request).registry).all()
    return render(request, "datasets.html", title="Datasets", signed_in=signed_in, sets=everything)


def _show_dataset(
    request: Request,
    signed_in: SignedIn,
    ds: Dataset,
    *,
    errors: Sequence[str] = (),
    form: Mapping[str, str] | None = None,
    notice: str = "",
) -> Response:
    return render(
        request,
        "dataset_detail.html",
        title=f"Dataset {ds.name}",
        signed_in=signed_in,
        status_code=400 if errors else 200,
        ds=ds,
        types=[t.value for t in AttrType],
        errors=errors,
        form=form or {},
        notice=notice,
        can_write=signed_in.user.role in WRITERS,
    )


async def dataset(request: Request) -> Response:
    """GET /datasets/{name}: attributes, links and the form to add an attribute."""
    signed_in = await require_role(request, *ANY_ROLE)
    notices = {"added": "The attribute was added.", "phi": "The PHI flag was changed."}
    notice = notices.get(request.query_params.get("m", ""), "")
    return _show_dataset(request, signed_in, _dataset(request), notice=notice)


async def add_attribute(request: Request) -> Response:
    """POST /datasets/{name}/attributes: add an (optional or required) attribute."""
    signed_in, form = await guarded_post(request)
    ds = _dataset(request)
    values = {k: text(form, k) for k in ("attr_name", "attr_type", "description")}
    try:
        attr = Attribute(
            name=values["attr_name"],
            type=AttrType(values["attr_type"]),
            is_required=form.get("required") == "on",
            description=values["description"],
            is_phi=form.get("phi") == "on",
        )
        new = await need(services(request).registry).add_attribute(ds.name, attr)
    except DefinitionError as exc:
        return _show_dataset(request, signed_in, ds, errors=exc.problems, form=values)
    except (ValueError, ValidationError) as exc:
        return _show_dataset(request, signed_in, ds, errors=[str(exc)], form=values)
    await audit(request, signed_in, "dataset.update", ds.name, {"added_attribute": attr.name})
    return RedirectResponse(f"/datasets/{new.name}?m=added", 303)


async def set_phi(request: Request) -> Response:
    """POST /datasets/{name}/attributes/{attr}/phi: mark (``phi=on``) or unmark an attribute."""
    signed_in, form = await guarded_post(request)
    ds = _dataset(request)
    attr, is_phi = str(request.path_params["attr"]), form.get("phi") == "on"
    try:
        new = await need(services(request).registry).set_phi(ds.name, attr, is_phi=is_phi)
    except DefinitionError as exc:
        return _show_dataset(request, signed_in, ds, errors=exc.problems)
    await audit(request, signed_in, "dataset.update", ds.name, {"attribute": attr, "phi": is_phi})
    return RedirectResponse(f"/datasets/{new.name}?m=phi", 303)


# --- records ----------------------------------------------------------------------


def columns(ds: Dataset) -> list[str]:
    """The fields a record table shows: attributes, then to-one links."""
    links = [ln.name for ln in ds.links if holds_reference(ds.name, ln)]
    return [a.name for a in ds.attributes] + links


def _query(ds: Dataset, params: QueryParams) -> Query:
    filters = [parse_filter(f) for f in params.getlist("filter") if f.strip()]
    field, op = params.get("field", ""), params.get("op", "")
    if field and op:
        value = params.get("value", "")
        joined = f"{field}:{op}" if op in ("empty", "not_empty") else f"{field}:{op}:{value}"
        filters.append(parse_filter(joined))
    offset, limit = paging_params(params)
    sort = parse_sort(params.get("sort", "")) or parse_sort("id")
    return Query(filters=tuple(filters), sort=sort, offset=offset, limit=limit)


async def records(request: Request) -> Response:
    """GET /datasets/{name}/records: search, sort and page through records."""
    signed_in = await require_role(request, *ANY_ROLE)
    ds = _dataset(request)
    params = request.query_params
    error, rows, total = "", [], 0
    query = Query()
    try:
        query = _query(ds, params)
        page = await need(services(request).datasets).query(ds.name, query)
        rows, total = [dict(r.values, id=r.id) for r in page.records], page.total
        await _audit_read(request, signed_in, ds, [r.id for r in page.records])
    except ValidationError as exc:
        error = exc.message
    keep = kept(params, "filter", "field", "op", "value", "sort")
    return render(
        request,
        "records.html",
        title=f"{ds.name} records",
        signed_in=signed_in,
        status_code=400 if error else 200,
        ds=ds,
        columns=columns(ds),
        rows=rows,
        error=error,
        ops=FILTER_OPS,
        params=params,
        sort=params.get("sort", ""),
        base=urlencode(kept(params, "filter", "field", "op", "value")),
        paging=Paging(offset=query.offset, limit=query.limit, total=total, params=keep),
        can_write=signed_in.user.role in WRITERS,
        display=display,
    )


def display(value: object) -> str:
    """A stored value as people read it (times in UTC)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def input_value(value: object) -> str:
    """A stored value as an input's value (``datetime-local`` wants no zone: UTC)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class InputField:
    """One input of the record form.

    Attributes:
        name: The attribute or link.
        label: What people see.
        input: The HTML input type.
        value: The current value, as the input shows it.
        is_required: The service refuses an empty value.
        note: A hint (a link's target, UTC).
    """

    name: str
    label: str
    input: str
    value: str
    is_required: bool = False
    note: str = ""


_INPUTS = {
    AttrType.STRING: "text",
    AttrType.INTEGER: "number",
    AttrType.BOOLEAN: "checkbox",
    AttrType.DATE: "date",
    AttrType.DATETIME: "datetime-local",
}


def record_fields(ds: Dataset, values: Mapping[str, object]) -> list[InputField]:
    """The record form's inputs, filled with ``values``."""
    out = []
    for a in ds.attributes:
        out.append(
            InputField(
                name=a.name,
                label=a.name,
                input=_INPUTS[a.type],
                value=input_value(values.get(a.name)),
                is_required=a.must_have_value,
                note="UTC" if a.type is AttrType.DATETIME else a.description,
            )
        )
    for ln in ds.links:
        if holds_reference(ds.name, ln):
            out.append(
                InputField(
                    name=ln.name,
                    label=f"{ln.name} (record id)",
                    input="number",
                    value=input_value(values.get(ln.name)),
                    is_required=ln.is_key,
                    note=f"a {ln.target} record id",
                )
            )
    return out


def _posted_values(ds: Dataset, form: FormData) -> dict[str, object]:
    values: dict[str, object] = {}
    for f in record_fields(ds, {}):
        raw = text(form, f"f_{f.name}")
        if f.input == "checkbox":
            values[f.name] = raw == "on"
        elif f.input == "datetime-local" and raw:
            values[f.name] = raw if raw[-1] == "Z" or "+" in raw[10:] else raw + "+00:00"
        else:
            values[f.name] = raw or None
    return values


def _show_record(
    request: Request,
    signed_in: SignedIn,
    ds: Dataset,
    *,
    record_id: int | None,
    values: Mapping[str, object],
    error: ValidationError | ConflictError | None = None,
) -> Response:
    field_name = getattr(error, "field", None)
    title = f"{ds.name} record {record_id}" if record_id else f"New {ds.name} record"
    return render(
        request,
        "records_form.html",
        title=title,
        signed_in=signed_in,
        status_code=400 if error else 200,
        ds=ds,
        record_id=record_id,
        fields=record_fields(ds, values),
        error=error.message if error else "",
        error_field=field_name or "",
        can_write=signed_in.user.role in WRITERS,
        saved=request.query_params.get("m") == "saved",
    )


def _record_id(request: Request) -> int:
    try:
        return int(request.path_params["record_id"])
    except ValueError:
        raise HTTPException(404) from None


async def new_record(request: Request) -> Response:
    """GET /datasets/{name}/records/new: an empty record form."""
    signed_in = await require_role(request, *WRITERS)
    return _show_record(request, signed_in, _dataset(request), record_id=None, values={})


async def record(request: Request) -> Response:
    """GET /datasets/{name}/records/{record_id}: one record's form."""
    signed_in = await require_role(request, *ANY_ROLE)
    ds = _dataset(request)
    record_id = _record_id(request)
    try:
        rec = await need(services(request).datasets).get(ds.name, record_id)
    except NotFoundError:
        raise HTTPException(404) from None
    await _audit_read(request, signed_in, ds, [rec.id])
    return _show_record(request, signed_in, ds, record_id=record_id, values=rec.values)


async def _audit_read(request: Request, signed_in: SignedIn, ds: Dataset, ids: list[int]) -> None:
    """One ``phi.read`` entry for a page that shows PHI (dataset and ids, never values)."""
    if holds_phi(ds):
        await audit(request, signed_in, "phi.read", read_target(ds, ids), read_details(ds, ids))


async def save_record(request: Request) -> Response:
    """POST /datasets/{name}/records[/{record_id}]: create or update a record."""
    signed_in, form = await guarded_post(request)
    ds = _dataset(request)
    record_id = _record_id(request) if "record_id" in request.path_params else None
    values = _posted_values(ds, form)
    svc = need(services(request).datasets)
    try:
        if record_id is None:
            saved = await svc.create(ds.name, values, origin=origin_of(signed_in))
        else:
            saved = await svc.update(ds.name, record_id, values, origin=origin_of(signed_in))
    except (ValidationError, ConflictError) as exc:
        shown: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
        return _show_record(request, signed_in, ds, record_id=record_id, values=shown, error=exc)
    except NotFoundError:
        raise HTTPException(404) from None
    return RedirectResponse(f"/datasets/{ds.name}/records/{saved.id}?m=saved", 303)


async def confirm_delete_record(request: Request) -> Response:
    """GET /datasets/{name}/records/{record_id}/delete: ask before deleting."""
    signed_in = await require_role(request, *WRITERS)
    ds = _dataset(request)
    return render(
        request,
        "records_delete.html",
        title=f"Delete {ds.name} record",
        signed_in=signed_in,
        ds=ds,
        record_id=_record_id(request),
    )


async def delete_record(request: Request) -> Response:
    """POST /datasets/{name}/records/{record_id}/delete: delete the record."""
    signed_in, _form = await guarded_post(request)
    ds = _dataset(request)
    try:
        await need(services(request).datasets).delete(
            ds.name, _record_id(request), origin=origin_of(signed_in)
        )
    except NotFoundError:
        raise HTTPException(404) from None
    except (ValidationError, ConflictError) as exc:
        return error_page(
            request, 409, "The record was not deleted", exc.message, signed_in=signed_in
        )
    return RedirectResponse(f"/datasets/{ds.name}/records", 303)
