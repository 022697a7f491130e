"""``carewire purge``: the retention purge now, or (``--dry-run``) what it would remove.

The server runs the same purge every night at 02:00 in each organisation's
time zone (docs/retention.md). A run is recorded in the audit trail as done
by ``cli:<OS user>``; a dry run changes nothing and is not recorded.
"""

from __future__ import annotations

import argparse
import sys

from carewire.cli.audit_trail import cli_actor
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.directory.retention import PurgeCount
from carewire.errors import ValidationError
from carewire.security.audit import Channel


def _table(counts: list[PurgeCount], verb: str) -> None:
    if not counts:
        print("no organisation has a message retention period: nothing to purge")
        return
    print(f"{'organisation':<40}  {'before (UTC)':<20}  {'message bodies':>14}  {'offline':>8}")
    for c in counts:
        print(
            f"{c.organisation[:40]:<40}  {c.cutoff:%Y-%m-%d %H:%M}Z{'':<3}  "
            f"{c.messages:>14}  {c.offline:>8}"
        )
    total = [sum(getattr(c, k) for c in counts) for k in ("messages", "offline", "files")]
    print(
        f"{verb}: {total[0]} message bodies, {total[1]} offline copies, {total[2]} shared files",
        file=sys.stderr,
    )


def cmd_purge(args: argparse.Namespace) -> int:
    """Purge message content past each organisation's retention period (metadata stays)."""
    only: set[int] | None = None
    if args.organisation:
        if any(o < 1 for o in args.organisation):
            raise ValidationError("--organisation: expected organisation ids (Group ID)")
        only = set(args.organisation)

    async def work(p: Services) -> int:
        if args.dry_run:
            _table(await p.retention.dry_run(organisations=only), "would purge")
            return 0
        counts = await p.retention.run(organisations=only, actor=cli_actor(), channel=Channel.CLI)
        _table(counts, "purged")
        return 0

    return run_with_platform(args, work)


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``purge`` under the top-level parser."""
    purge = with_data_dir(
        sub.add_parser(
            "purge",
            help="purge message content past the retention period",
            description=(cmd_purge.__doc__ or "")
            + " Counts are per organisation and store: message bodies (the clinical record and"
            " the archive) and offline copies. Safe to interrupt: run it again to finish.",
        )
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="show what would be purged; change nothing"
    )
    purge.add_argument(
        "--organisation",
        type=int,
        action="append",
        metavar="ID",
        help="only this organisation (repeatable; default: every one with a retention period)",
    )
    purge.set_defaults(func=cmd_purge)
