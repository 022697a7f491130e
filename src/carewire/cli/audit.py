"""``carewire audit``: verify the audit trail's chain, export a period's report, list entries.

The CLI's own acts are recorded through :mod:`carewire.cli.audit_trail`; an
export is itself recorded, as done by ``cli:<OS user>``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

from carewire.cli.audit_trail import cli_actor
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.errors import ValidationError
from carewire.security.audit import Channel, ExportFormat, Outcome

#: The period ``audit export`` reports on when no dates are given.
DEFAULT_DAYS = 30


def parse_day(value: str, flag: str) -> date:
    """A ``YYYY-MM-DD`` option value.

    Raises:
        ValidationError: Not a date in that form.
    """
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{flag}: expected a date as YYYY-MM-DD, got {value!r}") from None


def period(first: str | None, last: str | None, today: date) -> tuple[datetime, datetime]:
    """``[since, until)`` in UTC for the days ``first`` to ``last`` inclusive.

    Without dates: the last :data:`DEFAULT_DAYS` days up to ``today``.
    """
    end = parse_day(last, "--to") if last else today
    start = parse_day(first, "--from") if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ValidationError(f"--from {start} is after --to {end}")
    since = datetime.combine(start, time(), UTC)
    return since, datetime.combine(end + timedelta(days=1), time(), UTC)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check every entry's hash and link; exit 1 naming the first entry that breaks the chain."""

    async def work(p: Services) -> int:
        result = await p.audit.verify()
        if result.ok:
            print(f"{result.checked} entries, chain intact")
            return 0
        print(f"chain broken at entry {result.first_bad_id}: {result.reason}")
        print(f"{result.checked} entries checked", file=sys.stderr)
        return 1

    return run_with_platform(args, work)


def cmd_audit_export(args: argparse.Namespace) -> int:
    """Write a period's entries as CSV or JSON lines (the export itself is recorded)."""
    since, until = period(args.date_from, args.date_to, datetime.now(UTC).date())
    fmt = ExportFormat(args.format)

    async def work(p: Services) -> int:
        async def write(out: TextIO) -> int:
            return await p.audit.export(
                since, until, fmt, out, actor=cli_actor(), channel=Channel.CLI
            )

        if not args.output:
            await write(sys.stdout)
            return 0
        try:
            with Path(args.output).open("w", encoding="utf-8", newline="") as f:
                count = await write(f)
        except OSError as exc:
            raise ValidationError(f"{args.output}: cannot write ({exc.strerror})") from None
        last = until - timedelta(days=1)
        print(f"{count} entries from {since:%Y-%m-%d} to {last:%Y-%m-%d} written to {args.output}")
        return 0

    return run_with_platform(args, work)


def cmd_audit_list(args: argparse.Namespace) -> int:
    """Show the most recent entries, newest first."""
    if args.limit < 1:
        raise ValidationError("--limit: expected a positive number")

    async def work(p: Services) -> int:
        entries, total = await p.audit.store.entries(
            actor=args.actor,
            action=args.action,
            outcome=Outcome(args.outcome) if args.outcome else None,
            limit=args.limit,
        )
        for e in entries:
            ev = e.event
            print(
                f"{e.id:>6}  {e.at:%Y-%m-%d %H:%M:%S}Z  {ev.outcome.value:<7}  "
                f"{ev.channel.value:<7}  {ev.actor:<24}  {ev.action:<18}  {ev.target}"
                + (f"  [{ev.remote_ip}]" if ev.remote_ip else "")
            )
        print(f"{len(entries)} of {total} entries", file=sys.stderr)
        return 0

    return run_with_platform(args, work)


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``audit verify|export|list`` under the top-level parser."""
    audit = sub.add_parser("audit", help="the audit trail", description="The audit trail.")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = with_data_dir(
        asub.add_parser("verify", help="check the chain", description=cmd_audit_verify.__doc__)
    )
    verify.set_defaults(func=cmd_audit_verify)
    exp = with_data_dir(
        asub.add_parser("export", help="a period's report", description=cmd_audit_export.__doc__)
    )
    exp.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first day (UTC)")
    exp.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last day (UTC, inclusive)")
    exp.add_argument("--format", choices=[f.value for f in ExportFormat], default="csv")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.set_defaults(func=cmd_audit_export)
    ls = with_data_dir(
        asub.add_parser("list", help="recent entries", description=cmd_audit_list.__doc__)
    )
    ls.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    ls.add_argument("--action", help="an action, or a group of them (rule matches rule.*)")
    ls.add_argument("--actor", help="an actor, or all under it (cli matches cli:*)")
    ls.add_argument("--outcome", choices=[o.value for o in Outcome])
    ls.set_defaults(func=cmd_audit_list)
