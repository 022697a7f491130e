"""``carewire migrate``: check or bring the database schema up to this version (docs/upgrades.md).

Every other command (and the server at start) migrates the database itself;
this one lets an upgrade be checked and run as its own step, a line per
revision, before the new version serves. ``--check`` changes nothing and
says with its exit status where the schema stands.
"""

from __future__ import annotations

import argparse
import sys

from carewire.cli.audit_trail import record
from carewire.cli.runtime import (
    Services,
    Subparsers,
    WithDataDir,
    apply_migrations,
    run_with_platform,
    schema_status,
    too_new_message,
)

#: ``migrate --check``: the schema is this version's.
EXIT_CURRENT = 0
#: ``migrate --check``: migrations are pending (``carewire migrate`` applies them).
EXIT_PENDING = 1
#: ``migrate --check``: the database was migrated by a newer version (this one refuses it).
EXIT_NEWER = 3


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the pending schema migrations, one revision at a time, or check with --check.

    With --check nothing changes; the exit status is 0 when the schema is up to
    date, 1 when migrations are pending, 3 when the database is newer than this
    version (2 is any other error, as for every command).
    """
    found = schema_status(args)
    if found.is_newer:
        assert found.current is not None
        print(f"error: {too_new_message(found.current)}", file=sys.stderr)
        return EXIT_NEWER
    if args.check:
        if not found.pending:
            print(f"schema up to date (revision {found.head})")
            return EXIT_CURRENT
        print(
            f"{len(found.pending)} migrations pending: {found.current or 'empty database'}"
            f" -> {found.head} ({', '.join(found.pending)}); run 'carewire migrate'"
        )
        return EXIT_PENDING
    if not found.pending:
        print(f"schema up to date (revision {found.head}); nothing to do")
        return 0

    def applied(before: str | None, after: str, seconds: float) -> None:
        print(f"migrated {before or 'empty database'} -> {after} ({seconds:.2f} s)", flush=True)

    count = apply_migrations(args, applied)

    async def audit(p: Services) -> None:
        details = {"from": found.current, "to": found.head, "revisions": count}
        await record(p, "schema.migrate", found.head, details=details)

    run_with_platform(args, audit)
    print(f"schema at revision {found.head} ({count} migrations applied)")
    return 0


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``migrate`` under the top-level parser."""
    migrate = with_data_dir(
        sub.add_parser(
            "migrate",
            help="check or apply database schema migrations",
            description=cmd_migrate.__doc__,
        )
    )
    migrate.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 0 if up to date, 1 if migrations are pending, 3 if newer",
    )
    migrate.set_defaults(func=cmd_migrate)
