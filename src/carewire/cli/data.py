"""The data platform's commands: ``dataset``, ``records`` and ``token``.

They read and write through the same services as the REST API (validation, one
transaction per write, rules after commit) on the database of ``--data-dir``, as
``cli``, and recorded in the audit trail (record writes by dataset and id only).
Every write lets the rules it triggered fire before the command exits (the
server's scheduler runs the firings a rule deferred). Errors print one line to
stderr and exit 2 (see :func:`carewire.cli.main`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from carewire.cli.audit_trail import cli_caller, record, record_write
from carewire.cli.record_view import choose_columns, print_record, print_records, record_json
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.cli.tables import print_table
from carewire.config import parse_duration
from carewire.datasets.model import Dataset, Origin
from carewire.datasets.query import (
    MAX_LIMIT,
    Query,
    parse_filter,
    parse_sort,
)
from carewire.errors import ValidationError
from carewire.security.phi_access import holds_phi, read_details, read_target

#: Who CLI writes are recorded as.
CLI_ORIGIN = Origin(actor="cli")
_YES = {True: "yes", False: ""}


# -- dataset ------------------------------------------------------------------


def cmd_dataset_list(args: argparse.Namespace) -> int:
    """List the datasets with their number of attributes and links."""

    async def work(p: Services) -> int:
        rows = [
            (d.name, len(d.attributes), len(d.links), _YES[d.is_builtin], d.description)
            for d in p.registry.all()
        ]
        print_table(rows, ("NAME", "ATTRIBUTES", "LINKS", "BUILT-IN", "DESCRIPTION"))
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


def show_dataset(ds: Dataset) -> None:
    """Print a dataset's definition: its attributes and links as tables."""
    print(f"{ds.name}{' (built-in)' if ds.is_builtin else ''}: {ds.description}")
    print()
    print_table(
        [
            (a.name, a.type, _YES[a.is_key], _YES[a.must_have_value], _YES[a.is_phi], a.description)
            for a in ds.attributes
        ],
        ("ATTRIBUTE", "TYPE", "KEY", "REQUIRED", "PHI", "DESCRIPTION"),
    )
    print()
    print_table(
        [
            (ln.name, ln.cardinality, f"{ln.target}.{ln.reverse}", _YES[ln.is_key], ln.description)
            for ln in ds.links
        ],
        ("LINK", "CARDINALITY", "TARGET.REVERSE", "KEY", "DESCRIPTION"),
    )


def cmd_dataset_show(args: argparse.Namespace) -> int:
    """Show a dataset's attributes and links."""

    async def work(p: Services) -> int:
        show_dataset(p.registry.get(args.name))
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


# -- records ------------------------------------------------------------------


def parse_values(set_items: Sequence[str], json_values: str | None) -> dict[str, object]:
    """Values from ``--json-values`` and ``--set field=value`` (text; the service coerces).

    Raises:
        ValidationError: Malformed input, a field given twice, or no values at all.
    """
    values: dict[str, object] = {}
    if json_values:
        try:
            loaded = json.loads(json_values)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"--json-values is not valid JSON ({exc})") from None
        if not isinstance(loaded, Mapping):
            raise ValidationError("--json-values must be a JSON object of field names to values")
        values.update(loaded)
    for item in set_items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValidationError(f"--set {item!r}: expected field=value")
        if name in values:
            raise ValidationError(f"{name} is given twice")
        values[name] = value
    if not values:
        raise ValidationError("no values given: use --set field=value or --json-values JSON")
    return values


def cmd_records_list(args: argparse.Namespace) -> int:
    """Query records, with filters, sort and paging as in the REST API."""
    query = Query(
        filters=tuple(parse_filter(f) for f in args.filter),
        sort=parse_sort(args.sort),
        offset=args.offset,
        limit=args.limit,
    )

    async def work(p: Services) -> int:
        ds = p.registry.get(args.dataset)
        columns = choose_columns(ds, args.columns)
        page = await p.datasets.query(ds.name, query)
        await _audit_read(p, ds, [r.id for r in page.records])
        if args.json:
            records = [record_json(r) for r in page.records]
            body = dict(total=page.total, offset=query.offset, limit=query.limit, records=records)
            print(json.dumps(body, indent=2, ensure_ascii=False))
            return 0
        await print_records(p, ds, page.records, columns)
        shown = f"{query.offset + 1}–{query.offset + len(page.records)}" if page.records else "0"
        print(f"{shown} of {page.total} records", file=sys.stderr)
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


async def _audit_read(p: Services, ds: Dataset, ids: list[int]) -> None:
    """One ``phi.read`` entry when ``ds`` holds PHI (dataset and ids, never values)."""
    if holds_phi(ds):
        await record(p, "phi.read", read_target(ds, ids), details=read_details(ds, ids))


def cmd_records_get(args: argparse.Namespace) -> int:
    """Show one record."""

    async def work(p: Services) -> int:
        rec = await p.datasets.get(args.dataset, args.id)
        await _audit_read(p, p.registry.get(rec.dataset), [rec.id])
        await print_record(p, rec, as_json=args.json)
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


def cmd_records_create(args: argparse.Namespace) -> int:
    """Create a record; key fields must be unique."""
    return _save(args, is_upsert=False)


def cmd_records_upsert(args: argparse.Namespace) -> int:
    """Update the record with the same key fields, or create it."""
    return _save(args, is_upsert=True)


def _save(args: argparse.Namespace, *, is_upsert: bool) -> int:
    values = parse_values(args.set, args.json_values)

    async def work(p: Services) -> int:
        save = p.datasets.upsert if is_upsert else p.datasets.create
        rec = await save(args.dataset, values, origin=CLI_ORIGIN)
        await record_write(
            p, "record.upsert" if is_upsert else "record.create", rec.dataset, rec.id
        )
        await print_record(p, rec, as_json=args.json, verb="saved" if is_upsert else "created")
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


def cmd_records_update(args: argparse.Namespace) -> int:
    """Change some fields of a record; the others keep their values."""
    values = parse_values(args.set, args.json_values)

    async def work(p: Services) -> int:
        rec = await p.datasets.update(args.dataset, args.id, values, origin=CLI_ORIGIN)
        await record_write(p, "record.update", rec.dataset, rec.id)
        await print_record(p, rec, as_json=args.json, verb="updated")
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


def cmd_records_delete(args: argparse.Namespace) -> int:
    """Delete a record (refused while other records link to it)."""

    async def work(p: Services) -> int:
        await p.datasets.delete(args.dataset, args.id, origin=CLI_ORIGIN)
        await record_write(p, "record.delete", p.registry.get(args.dataset).name, args.id)
        print(f"deleted {args.dataset} record {args.id}")
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


# -- token --------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create an API token and print it (once: it cannot be shown again)."""
    from carewire.security.tokens import Role

    async def work(p: Services) -> int:
        if args.organisation is not None:  # an unknown organisation is an error, not a token
            await p.directory.organisations.get(cli_caller(), args.organisation)
        expires_in = None if args.expires is None else parse_duration(args.expires, "--expires")
        info, plaintext = await p.tokens.create(
            args.name, Role(args.role), organisation_id=args.organisation, expires_in=expires_in
        )
        details: dict[str, object] = {"role": info.role.value}
        if info.organisation_id is not None:
            details["organisation"] = info.organisation_id
        if info.expires_at is not None:
            details["expires_at"] = info.expires_at.isoformat()
        await record(p, "token.create", info.name, details=details)
        print(plaintext)
        scope = (
            "every organisation"
            if info.organisation_id is None
            else f"organisation {info.organisation_id}"
        )
        until = "" if info.expires_at is None else f", valid until {_when(info.expires_at)}"
        print(
            f"created {info.role.value} API token {info.name!r} for {scope}{until}: copy it "
            "now, it cannot be shown again (only its digest is stored)",
            file=sys.stderr,
        )
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


def _when(at: datetime | None) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M}Z"


def cmd_token_list(args: argparse.Namespace) -> int:
    """List API tokens (names and roles; the tokens themselves are not stored).

    The ORGANISATION column appears once a token is for one directory organisation,
    the EXPIRES column once a token has an expiry.
    """

    async def work(p: Services) -> int:
        tokens = await p.tokens.list()
        now = p.clock.now()
        rows: list[tuple[object, ...]] = [
            (
                t.name,
                t.role.value,
                _when(t.created_at),
                _when(t.last_used_at) or "never",
                f"revoked {_when(t.revoked_at)}"
                if t.is_revoked
                else "expired"
                if t.is_expired(now)
                else "active",
            )
            for t in tokens
        ]
        header: tuple[str, ...] = ("NAME", "ROLE", "CREATED", "LAST USED", "STATE")
        if any(t.expires_at is not None for t in tokens):
            rows = [(*r, _when(t.expires_at) or "never") for r, t in zip(rows, tokens, strict=True)]
            header = (*header, "EXPIRES")
        if any(t.organisation_id is not None for t in tokens):
            rows = [(*r, t.organisation_id or "all") for r, t in zip(rows, tokens, strict=True)]
            header = (*header, "ORGANISATION")
        print_table(rows, header)
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke an API token; requests using it fail from now on."""

    async def work(p: Services) -> int:
        info = await p.tokens.revoke(args.name)
        await record(p, "token.revoke", info.name)
        print(f"revoked API token {info.name!r}")
        return 0

    return run_with_platform(args, work, with_defaults=True, fire_rules=True)


# -- parser -------------------------------------------------------------------


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``dataset``, ``records`` and ``token`` on the ``carewire`` parser."""
    ds = sub.add_parser("dataset", help="inspect datasets", description="Dataset definitions.")
    dsub = ds.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    _command(dsub, with_data_dir, "list", cmd_dataset_list)
    show = _command(dsub, with_data_dir, "show", cmd_dataset_show)
    show.add_argument("name", help="dataset name, e.g. BEDS")
    _add_records(sub, with_data_dir)
    _add_tokens(sub, with_data_dir)


def _command(
    group: Subparsers,
    with_data_dir: WithDataDir,
    name: str,
    func: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """A sub-command running ``func``, its help taken from the docstring."""
    doc = func.__doc__ or ""
    sp = with_data_dir(group.add_parser(name, help=doc.split("\n")[0], description=doc))
    sp.set_defaults(func=func)
    return sp


def _add_records(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    rec = sub.add_parser("records", help="read and write records", description="Dataset records.")
    rsub = rec.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    ls = _command(rsub, with_data_dir, "list", cmd_records_list)
    ls.add_argument("dataset")
    ls.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="F",
        help="field:op:value (eq ne lt le gt ge in contains empty not_empty); repeatable",
    )
    ls.add_argument(
        "--sort",
        default="",
        help="fields, comma-separated; a leading - sorts descending (--sort=-name,id)",
    )
    ls.add_argument("--limit", type=int, default=100, help=f"page size (at most {MAX_LIMIT})")
    ls.add_argument("--offset", type=int, default=0, help="records to skip")
    ls.add_argument("--json", action="store_true", help="print JSON as the REST API does")
    ls.add_argument(
        "--columns",
        metavar="A,B,C",
        help="the columns to show, in this order (default: id, every attribute and link; "
        "DELIVERIES also has 'notified'); the table is fitted to the terminal (COLUMNS)",
    )
    for name, func, has_id, has_values in (
        ("get", cmd_records_get, True, False),
        ("create", cmd_records_create, False, True),
        ("upsert", cmd_records_upsert, False, True),
        ("update", cmd_records_update, True, True),
        ("delete", cmd_records_delete, True, False),
    ):
        sp = _command(rsub, with_data_dir, name, func)
        sp.add_argument("dataset")
        if has_id:
            sp.add_argument("id", type=int)
        if has_values:
            _add_value_arguments(sp)
        if name != "delete":
            sp.add_argument("--json", action="store_true", help="print the record as JSON")


def _add_value_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a value as text (converted to the field's type); repeatable",
    )
    sp.add_argument(
        "--json-values",
        metavar="JSON",
        help='values as a JSON object, e.g. \'{"room": {"room_number": "101"}}\'',
    )


def _add_tokens(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    tok = sub.add_parser("token", help="manage API tokens", description="REST API tokens.")
    tsub = tok.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = _command(tsub, with_data_dir, "create", cmd_token_create)
    create.add_argument("name", help="a name for the token, e.g. nurse-call-gateway")
    create.add_argument(
        "--role",
        choices=["admin", "read-only"],
        default="read-only",
        help="admin may write; read-only may only read (default)",
    )
    create.add_argument(
        "--organisation",
        type=int,
        help="for one directory organisation (without: every organisation)",
    )
    create.add_argument(
        "--expires",
        metavar="DURATION",
        help="stop working this long after creation, e.g. 90d or 12h (without: never)",
    )
    _command(tsub, with_data_dir, "list", cmd_token_list)
    revoke = _command(tsub, with_data_dir, "revoke", cmd_token_revoke)
    revoke.add_argument("name")
