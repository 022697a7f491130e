"""``carewire coverage``: a user's interruption state and held messages; release them now.

The command line runs beside the server, not in it, so it reads what the
server keeps in the database (docs/coverage.md): a timed Do Not Disturb,
unanswered urgent alerts and the held messages. Presence ``dnd`` lives only
in the running server and is not shown (the REST API and the console show
it). ``release`` leaves a request that the running server honours within 15
seconds; it is recorded in the audit trail as ``cli:<OS user>``. Held
messages are listed by sender, time and reason only, never their content.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from carewire.cli.audit_trail import cli_actor
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.security.audit import Channel


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "-"


def cmd_coverage_status(args: argparse.Namespace) -> int:
    """Show whether a user is busy (why, until when) and what is held for them."""

    async def work(p: Services) -> int:
        status = await p.coverage.status(args.login)
        if status.is_busy:
            print(f"{status.login}: busy ({status.reason}) until {_when(status.until)}")
        else:
            print(f"{status.login}: not busy (presence dnd is known only to the running server)")
        if status.note:
            print(f"  reason given: {status.note}")
        if status.urgent_alerts:
            print(f"  unanswered urgent alerts: {status.urgent_alerts}")
        print(f"  held messages: {len(status.held)}")
        for held in status.held:
            print(f"    {_when(held.held_at)}  {held.reason:<12}  from {held.sender or '?'}")
        return 0

    return run_with_platform(args, work)


def cmd_coverage_release(args: argparse.Namespace) -> int:
    """Ask the running server to deliver a user's held messages now, busy or not."""

    async def work(p: Services) -> int:
        done = await p.coverage.release(args.login, actor=cli_actor(), channel=Channel.CLI)
        print(f"{args.login}: {done.text if done.is_requested else 'nothing is held'}")
        return 0

    return run_with_platform(args, work)


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``coverage status|release`` under the top-level parser."""
    cov = sub.add_parser(
        "coverage", help="busy users and held messages", description=__doc__.splitlines()[0]
    )
    csub = cov.add_subparsers(dest="coverage_command", required=True, metavar="COMMAND")
    status = with_data_dir(
        csub.add_parser(
            "status", help="busy state and held messages", description=cmd_coverage_status.__doc__
        )
    )
    status.add_argument("login", help="the user's login")
    status.set_defaults(func=cmd_coverage_status)
    release = with_data_dir(
        csub.add_parser(
            "release", help="deliver held messages now", description=cmd_coverage_release.__doc__
        )
    )
    release.add_argument("login", help="the user's login")
    release.set_defaults(func=cmd_coverage_release)
