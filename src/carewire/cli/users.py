"""``carewire user``: XMPP accounts (add, passwd, list, remove, unlock, import from CSV).

Every change is recorded in the audit trail as ``cli:<OS user>``; passwords
never are. A password is taken from ``--password``, standard input or the
terminal (asked for twice).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carewire.cli.runtime import (
    Subparsers,
    WithDataDir,
    config,
    read_password,
    run_with_accounts,
)
from carewire.errors import CarewireError, ConfigError

if TYPE_CHECKING:
    from carewire.cli.audit_trail import CliAudit
    from carewire.core.accounts import AccountService
    from carewire.core.stores import NewAccount

#: Accounts written per transaction by ``user import``.
IMPORT_BATCH = 500


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create one account."""
    from carewire.core.accounts import AccountInput

    cfg = config(args)
    item = AccountInput(
        login=args.login,
        password=read_password(args),
        first_name=args.first_name or "",
        last_name=args.last_name or "",
    )

    async def work(accounts: AccountService, audit: CliAudit) -> int:
        account = await accounts.create(item)
        await audit("user.add", account.login)
        print(f"created {account.login}@{cfg.server.domain}")
        return 0

    return run_with_accounts(args, work)


def cmd_user_passwd(args: argparse.Namespace) -> int:
    """Set a new password."""
    cfg = config(args)
    password = read_password(args)

    async def work(accounts: AccountService, audit: CliAudit) -> int:
        await accounts.set_password(args.login, password)
        await audit("user.passwd", args.login)
        print(f"password changed for {args.login}@{cfg.server.domain}")
        return 0

    return run_with_accounts(args, work)


def cmd_user_list(args: argparse.Namespace) -> int:
    """List accounts."""
    cfg = config(args)

    async def work(accounts: AccountService, _audit: CliAudit) -> int:
        rows = await accounts.stores.accounts.list()
        for a in rows:
            if args.locked and not a.is_locked:
                continue
            state = (
                "locked"
                if a.is_locked
                else (f"{a.failed_logins} failed" if a.failed_logins else "ok")
            )
            name = f"{a.first_name} {a.last_name}".strip()
            print(f"{a.login}@{cfg.server.domain}\t{name}\t{state}")
        print(f"{len(rows)} accounts", file=sys.stderr)
        return 0

    return run_with_accounts(args, work)


def _account_action(args: argparse.Namespace, method: str, done: str) -> int:
    """Run ``AccountService.<method>(login)``; exit 1 when there is no such account."""
    from carewire.security.audit import Outcome

    cfg = config(args)

    async def work(accounts: AccountService, audit: CliAudit) -> int:
        if not await getattr(accounts, method)(args.login):
            await audit(
                f"user.{method}",
                args.login,
                outcome=Outcome.FAILURE,
                details={"reason": "no such account"},
            )
            print(f"error: no account {args.login!r}", file=sys.stderr)
            return 1
        await audit(f"user.{method}", args.login)
        print(f"{done} {args.login}@{cfg.server.domain}")
        return 0

    return run_with_accounts(args, work)


def cmd_user_remove(args: argparse.Namespace) -> int:
    """Delete an account and everything it owns."""
    return _account_action(args, "remove", "removed")


def cmd_user_unlock(args: argparse.Namespace) -> int:
    """Unlock an account after repeated failed logins (account security policy)."""
    return _account_action(args, "unlock", "unlocked")


# -- import ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One CSV row with its line number."""

    line: int
    cells: list[str]


def read_import_rows(path: Path) -> tuple[list[ImportRow], list[str]]:
    """Rows of an import CSV (header optional) and the problems found while reading."""
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    rows: list[ImportRow] = []
    for n, cells in enumerate(csv.reader(text.splitlines()), start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        if n == 1 and cells[0].strip().lower() == "login":
            continue
        if len(cells) not in (2, 3, 4):
            problems.append(
                f"line {n}: expected login,password[,first_name,last_name], "
                f"got {len(cells)} columns"
            )
            continue
        rows.append(ImportRow(n, cells))
    return rows, problems


def _prepare(
    accounts: AccountService, rows: list[ImportRow], problems: list[str], *, quiet: bool
) -> list[NewAccount]:
    """Derive the keys of every valid row; the others are added to ``problems``."""
    from tqdm import tqdm

    from carewire.core.accounts import AccountInput

    prepared: list[NewAccount] = []
    seen: set[str] = set()
    for row in tqdm(rows, desc="deriving keys", unit="account", disable=quiet, file=sys.stderr):
        c = row.cells + [""] * (4 - len(row.cells))
        try:
            item = accounts.prepare(
                AccountInput(login=c[0], password=c[1], first_name=c[2], last_name=c[3])
            )
        except CarewireError as exc:
            problems.append(f"line {row.line}: {exc.message}")
            continue
        if item.login in seen:
            problems.append(f"line {row.line}: duplicate login {item.login!r} in the file")
            continue
        seen.add(item.login)
        prepared.append(item)
    return prepared


async def _write(
    accounts: AccountService, prepared: list[NewAccount], *, quiet: bool
) -> tuple[int, list[str]]:
    """Create the ``prepared`` accounts in batches: (how many were created, logins that exist)."""
    from tqdm import tqdm

    created = 0
    skipped: list[str] = []
    for i in tqdm(
        range(0, len(prepared), IMPORT_BATCH),
        desc="writing",
        unit="batch",
        disable=quiet,
        file=sys.stderr,
    ):
        n, sk = await accounts.create_many(prepared[i : i + IMPORT_BATCH])
        created += n
        skipped += sk
    return created, skipped


def cmd_user_import(args: argparse.Namespace) -> int:
    """Create many accounts from CSV, with a progress bar; bad rows are reported, not fatal."""
    config(args)  # an uninitialised data directory is reported before a missing file
    rows, problems = read_import_rows(Path(args.file))

    async def work(accounts: AccountService, audit: CliAudit) -> int:
        prepared = _prepare(accounts, rows, problems, quiet=args.quiet)
        created, skipped = await _write(accounts, prepared, quiet=args.quiet)
        existing = set(skipped)
        await audit(
            "user.import",
            Path(args.file).name,
            details={
                "created": sorted(p.login for p in prepared if p.login not in existing),
                "existing": len(skipped),
                "rejected": len(problems),
            },
        )
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        for login in skipped:
            print(f"skipped: {login} already exists", file=sys.stderr)
        print(
            f"imported {created} accounts, {len(skipped)} already existed, "
            f"{len(problems)} rows rejected"
        )
        return 1 if problems else 0

    return run_with_accounts(args, work)


# -- parser ---------------------------------------------------------------------


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``user add|passwd|list|remove|unlock|import`` under the top-level parser."""
    user = sub.add_parser("user", help="manage accounts", description="Manage XMPP accounts.")
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = with_data_dir(
        usub.add_parser("add", help="create an account", description=cmd_user_add.__doc__)
    )
    add.add_argument("login")
    add.add_argument("--password", help="the password (prompted for when omitted)")
    add.add_argument("--first-name")
    add.add_argument("--last-name")
    add.set_defaults(func=cmd_user_add)
    pw = with_data_dir(
        usub.add_parser("passwd", help="set a password", description=cmd_user_passwd.__doc__)
    )
    pw.add_argument("login")
    pw.add_argument("--password", help="the new password (prompted for when omitted)")
    pw.set_defaults(func=cmd_user_passwd)
    ls = with_data_dir(
        usub.add_parser("list", help="list accounts", description=cmd_user_list.__doc__)
    )
    ls.add_argument("--locked", action="store_true", help="only locked accounts")
    ls.set_defaults(func=cmd_user_list)
    for name, func, text in (
        ("remove", cmd_user_remove, "delete an account"),
        ("unlock", cmd_user_unlock, "unlock a locked account"),
    ):
        sp = with_data_dir(usub.add_parser(name, help=text, description=func.__doc__))
        sp.add_argument("login")
        sp.set_defaults(func=func)
    imp = with_data_dir(
        usub.add_parser(
            "import", help="create accounts from CSV", description=cmd_user_import.__doc__
        )
    )
    imp.add_argument("file", help="CSV with columns login,password[,first_name,last_name]")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_user_import)
