"""``carewire audit``: verify the trail, take a checkpoint, export a period's report, list entries.

The CLI's own acts are recorded through :mod:`carewire.cli.audit_trail`; an
export is itself recorded, as done by ``cli:<OS user>``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

from carewire.cli.audit_trail import cli_actor
from carewire.cli.runtime import Services, Subparsers, WithDataDir, config, run_with_platform
from carewire.errors import ValidationError
from carewire.security import audit_checkpoint as checkpoints
from carewire.security.audit import AuditEvent, Channel, ExportFormat, Outcome
from carewire.security.audit_key import ENV_VAR, load_key
from carewire.security.audit_verify import verify_trail

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
    """Check every entry's hash, link and MAC, and the signed checkpoints against the trail.

    Exit 0 when everything holds, 1 when tampering is found (each finding on its
    own line: which entry or checkpoint, what is wrong).
    """
    directory = config(args).audit_checkpoint_dir

    async def work(p: Services) -> int:
        result = await verify_trail(p.audit)
        key_id = p.audit.store.key.key_id
        if result.ok:
            print(
                f"{result.checked} entries, chain intact "
                f"({result.authenticated} authenticated with audit key {key_id})"
            )
        elif result.first_bad_id is not None:
            print(f"chain broken at entry {result.first_bad_id}: {result.reason}")
        else:
            print(f"chain not trustworthy: {result.reason}")
        for note in result.notes:
            print(f"note: {note}")
        report = await checkpoints.check(p.audit.store, directory)
        for problem in report.problems:
            print(f"checkpoint: {problem}")
        for note in report.notes:
            print(f"note: {note}")
        print(
            f"{report.checked} checkpoints in {directory / checkpoints.FILE_NAME} checked",
            file=sys.stderr,
        )
        if not result.ok:
            print(f"{result.checked} entries checked", file=sys.stderr)
        return 0 if result.ok and not report.problems else 1

    return run_with_platform(args, work)


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    """Sign the trail's head now and append the checkpoint outside the database."""
    cfg = config(args)

    async def work(p: Services) -> int:
        cp = await checkpoints.take(
            p.audit.store,
            cfg.audit_checkpoint_dir,
            datetime.now(UTC),
            to_log=cfg.audit.checkpoint_log,
        )
        where = cfg.audit_checkpoint_dir / checkpoints.FILE_NAME
        print(f"checkpoint: entry {cp.entry_id} ({cp.entries} entries), hash {cp.hash}")
        print(f"signed with audit key {cp.key_id}, appended to {where}")
        return 0

    return run_with_platform(args, work)


def cmd_audit_key(args: argparse.Namespace) -> int:
    """Show the audit key's id, where it is read from, and its public key for checkpoints."""
    cfg = config(args)
    from_env = bool(os.environ.get(ENV_VAR))
    key = load_key(cfg.audit_key_file, create=False)
    print(f"audit key {key.key_id}")
    print(f"read from {'$' + ENV_VAR if from_env else cfg.audit_key_file}")
    print(f"checkpoints in {cfg.audit_checkpoint_dir / checkpoints.FILE_NAME}")
    if args.public:
        print(key.public_pem(), end="")
    return 0


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


def cmd_audit_break_glass(args: argparse.Namespace) -> int:
    """List break-the-glass grants (who read which patient off the care team, and why).

    Newest first, for the period ``--from``/``--to`` (the last 30 days by
    default). Showing the reasons is itself recorded in the audit trail.
    """
    since, until = period(args.date_from, args.date_to, datetime.now(UTC).date())
    if args.limit < 1:
        raise ValidationError("--limit: expected a positive number")

    async def work(p: Services) -> int:
        grants = [g for g in await p.phi_access.grants(since, args.limit) if g.granted_at < until]
        for g in grants:
            print(
                f"{g.id:>6}  {g.granted_at:%Y-%m-%d %H:%M:%S}Z  until {g.expires_at:%H:%M:%S}Z  "
                f"{g.login:<20}  {g.dataset}/{g.record_id}  [{g.remote_ip}]  {g.reason}"
            )
        print(f"{len(grants)} grants", file=sys.stderr)
        await p.audit.record(
            AuditEvent(
                actor=cli_actor(),
                channel=Channel.CLI,
                action="phi.break-glass-report",
                target="break_glass",
                details={"grants": [g.id for g in grants]},
            )
        )
        return 0

    return run_with_platform(args, work)


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``audit verify|checkpoint|key|export|list|break-glass`` under ``audit``."""
    audit = sub.add_parser("audit", help="the audit trail", description="The audit trail.")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = with_data_dir(
        asub.add_parser("verify", help="check the chain", description=cmd_audit_verify.__doc__)
    )
    verify.set_defaults(func=cmd_audit_verify)
    cp = with_data_dir(
        asub.add_parser(
            "checkpoint", help="sign the trail's head now", description=cmd_audit_checkpoint.__doc__
        )
    )
    cp.set_defaults(func=cmd_audit_checkpoint)
    key = with_data_dir(
        asub.add_parser("key", help="the audit key's id", description=cmd_audit_key.__doc__)
    )
    key.add_argument("--public", action="store_true", help="print the public key (PEM) too")
    key.set_defaults(func=cmd_audit_key)
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
    bg = with_data_dir(
        asub.add_parser(
            "break-glass",
            help="who read patients off their care team, and why",
            description=cmd_audit_break_glass.__doc__,
        )
    )
    bg.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first day (UTC)")
    bg.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last day (UTC, inclusive)")
    bg.add_argument("--limit", type=int, default=1000, help="how many (default 1000)")
    bg.set_defaults(func=cmd_audit_break_glass)
