"""``carewire user``: accounts (add, passwd, list, remove, unlock, import) and invitations.

Every change is recorded in the audit trail as ``cli:<OS user>``; passwords
never are. A password is taken from ``--password``, standard input or the
terminal (asked for twice). ``user add --organisation ID`` makes a directory
user of that organisation (account, profile, PIN and USERS record) instead of
a bare account; ``user invite`` and ``user invitations`` invite users to an
organisation and list its invitations, through the directory service (as a
system administrator).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from carewire.cli.audit_trail import cli_caller
from carewire.cli.invitations import failed_invitations, invite_csv
from carewire.cli.runtime import (
    Services,
    Subparsers,
    WithDataDir,
    config,
    read_password,
    run_with_accounts,
    run_with_platform,
)
from carewire.errors import CarewireError, ConfigError

if TYPE_CHECKING:
    from carewire.cli.audit_trail import CliAudit
    from carewire.core.accounts import AccountService
    from carewire.core.stores import NewAccount
    from carewire.directory.model import CsvProblem, CsvRow, InviteResult

#: Accounts written per transaction by ``user import``.
IMPORT_BATCH = 500
#: CSV rows per invite request of ``user invite --csv``: each commits at once and queues its
#: mail, which the command then waits for (a second progress bar).
INVITE_BATCH = 1000
#: Files of fewer rows are invited without progress bars.
PROGRESS_ROWS = 100


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create one account (with --organisation: a directory user of that organisation)."""
    from carewire.core.accounts import AccountInput

    cfg = config(args)
    if args.organisation is not None:
        return _add_directory_user(args, read_password(args), cfg.server.domain)
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
    """Set a new password (also the web console's, for the account init made: admin)."""
    from carewire.cli.audit_trail import CliAudit
    from carewire.security.console_model import check_password, shares_chat_account

    cfg = config(args)
    password = read_password(args)
    domain = cfg.server.domain

    async def work(p: Services) -> int:
        audit = CliAudit(p.audit)
        named = [u for u in await p.console.list_users() if u.username == args.login.lower()]
        user = named[0] if named else None
        linked = user is not None and shares_chat_account(user, domain)
        if linked:  # the console's policy holds for the one password
            check_password(password)
        await p.accounts.set_password(args.login, password)
        await audit("user.passwd", args.login)
        also = ""
        if linked and user is not None:
            await p.console.set_password_hash(
                user.username, await p.console.hash_password(password), must_change=False
            )
            also = f" (and for the web console user {user.username})"
        print(f"password changed for {args.login}@{domain}{also}")
        return 0

    return run_with_platform(args, work)


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


def _add_directory_user(args: argparse.Namespace, password: str, domain: str) -> int:
    """``user add --organisation``: account, profile, PIN and USERS record in one go."""
    from carewire.directory.model import NewUser, Profile

    names = ("email", "pin", "first_name", "last_name")
    missing = [f"--{n.replace('_', '-')}" for n in names if not getattr(args, n)]
    if missing:
        raise ConfigError(f"a user of an organisation needs {', '.join(missing)}")
    new = NewUser(
        profile=Profile(
            first_name=args.first_name,
            last_name=args.last_name,
            email=args.email,
        ),
        login=args.login,
        pin=args.pin,
        password=password,
        is_org_admin=args.admin,
    )

    async def work(p: Services) -> int:
        user = await p.directory.users.create(cli_caller(), args.organisation, new)
        print(f"created {user.login}@{domain} in organisation {user.organisation_id}")
        return 0

    return run_with_platform(args, work)


# -- invitations ------------------------------------------------------------------


async def _organisation(p: Services, given: int | None) -> int:
    """``--organisation``, else the installation's only organisation."""
    if given is not None:
        return given
    orgs = await p.directory.organisations.list_visible(cli_caller())
    if len(orgs) != 1:
        raise ConfigError(f"name the organisation with --organisation ({len(orgs)} exist)")
    return int(orgs[0].id)


def _report(totals: dict[str, list[str]], problems: list[CsvProblem]) -> int:
    for problem in sorted(problems, key=lambda x: x.line):
        print(f"error: line {problem.line}: {problem.message}", file=sys.stderr)
    for address in totals["existing"]:
        print(f"skipped: {address} is a user already", file=sys.stderr)
    failed = len(totals["failed"])
    print(
        f"invited {len(totals['invited'])}"
        + (f" ({failed} could not be mailed)" if failed else "")
        + f", resent {len(totals['resent'])}, {len(totals['existing'])} users skipped, "
        f"{len(totals['duplicates'])} duplicates, {len(problems)} rows left out"
    )
    if totals["groups"]:
        print(f"groups created: {', '.join(totals['groups'])}")
    return 1 if problems else 0


def cmd_user_invite(args: argparse.Namespace) -> int:
    """Invite users to an organisation by e-mail (typed addresses, or a CSV file)."""
    from carewire.directory.csvfiles import parse_csv
    from carewire.directory.model import InviteRequest

    if not args.emails and not args.csv:
        raise ConfigError("give e-mail addresses, or --csv FILE")
    rows, problems = parse_csv(_read_csv(Path(args.csv))) if args.csv else ([], [])
    batches, duplicates = invite_batches(rows)
    totals: dict[str, list[str]] = {k: [] for k in ("invited", "failed", "resent", "existing")}
    totals.update(duplicates=duplicates, groups=[])

    def add(result: InviteResult) -> None:
        totals["invited"] += [i.email for i in result.invited]
        totals["resent"] += [i.email for i in result.resent]
        totals["existing"] += result.existing_users
        totals["duplicates"] += result.duplicates
        totals["groups"] += result.groups_created

    async def work(p: Services) -> int:
        org = await _organisation(p, args.organisation)
        results: list[InviteResult] = []
        if args.emails:  # all or nothing: a malformed address sends nothing
            typed = InviteRequest(emails="\n".join(args.emails), is_admin=args.admin)
            results.append(await p.directory.invitations.invite(cli_caller(), org, typed))
            add(results[-1])
        quiet = args.quiet or len(rows) < PROGRESS_ROWS
        for result in await invite_csv(
            p.directory, cli_caller(), org, batches, is_admin=args.admin, quiet=quiet
        ):
            results.append(result)
            add(result)
        totals["failed"] = await failed_invitations(p.directory, cli_caller(), org, results)
        return _report(totals, problems)

    return run_with_platform(args, work)


def invite_batches(rows: list[CsvRow]) -> tuple[list[tuple[str, int]], list[str]]:
    """CSV texts of at most :data:`INVITE_BATCH` rows each, and the addresses given twice.

    An address is invited once, for its first row (empty names filled from
    the later ones); a later row's Department still names a group.
    """
    first: dict[str, int] = {}
    kept: list[CsvRow] = []
    duplicates: list[str] = []
    for row in rows:
        at = first.get(row.email) if row.email else None
        if at is None:
            if row.email:
                first[row.email] = len(kept)
            kept.append(row)
            continue
        duplicates.append(row.email)
        was = kept[at]
        kept[at] = replace(
            was,
            first_name=was.first_name or row.first_name,
            last_name=was.last_name or row.last_name,
        )
        if row.department:
            kept.append(replace(row, email=""))
    batches = []
    for start in range(0, len(kept), INVITE_BATCH):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("Email", "First Name", "Last Name", "Department"))
        part = kept[start : start + INVITE_BATCH]
        writer.writerows((r.email, r.first_name, r.last_name, r.department) for r in part)
        batches.append((out.getvalue(), len(part)))
    return batches, duplicates


def _read_csv(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def cmd_user_invitations(args: argparse.Namespace) -> int:
    """List an organisation's invitations, newest first (filters as on the console)."""
    from carewire.directory.model import (
        InvitationFilter,
        InvitationStatus,
        PageRequest,
    )

    search = InvitationFilter(
        email=args.email or "",
        status=None if args.status is None else InvitationStatus(args.status),
    )

    async def work(p: Services) -> int:
        org = await _organisation(p, args.organisation)
        page = await p.directory.invitations.find(
            cli_caller(), org, search, PageRequest(offset=args.offset, limit=args.limit)
        )
        for i in page.items:
            name = f"{i.first_name} {i.last_name}".strip()
            print(f"{i.id}\t{i.email}\t{name}\t{i.status.value}\t{i.updated_at:%Y-%m-%d %H:%M}Z")
        print(f"{len(page.items)} of {page.total} invitations", file=sys.stderr)
        return 0

    return run_with_platform(args, work)


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
    """Register ``user add|passwd|list|remove|unlock|import|invite|invitations``."""
    user = sub.add_parser("user", help="manage accounts", description="Manage XMPP accounts.")
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = with_data_dir(
        usub.add_parser("add", help="create an account", description=cmd_user_add.__doc__)
    )
    add.add_argument("login")
    add.add_argument("--password", help="the password (prompted for when omitted)")
    add.add_argument("--first-name")
    add.add_argument("--last-name")
    add.add_argument("--organisation", type=int, help="make a directory user of this organisation")
    add.add_argument("--email", help="with --organisation: the user's e-mail address")
    add.add_argument("--pin", help="with --organisation: the user's PIN")
    add.add_argument("--admin", action="store_true", help="with --organisation: its administrator")
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
    _add_invitations(usub, with_data_dir)


def _add_invitations(usub: Subparsers, with_data_dir: WithDataDir) -> None:
    inv = with_data_dir(
        usub.add_parser(
            "invite", help="invite users by e-mail", description=cmd_user_invite.__doc__
        )
    )
    inv.add_argument("emails", nargs="*", metavar="EMAIL", help="addresses to invite")
    inv.add_argument("--csv", help="a CSV file: Email,First Name,Last Name,Department")
    inv.add_argument("--organisation", type=int, help="organisation id (default: the only one)")
    inv.add_argument("--admin", action="store_true", help="invite administrators")
    inv.add_argument("--quiet", action="store_true", help="no progress bar")
    inv.set_defaults(func=cmd_user_invite)
    ls = with_data_dir(
        usub.add_parser(
            "invitations", help="list invitations", description=cmd_user_invitations.__doc__
        )
    )
    ls.add_argument("--organisation", type=int, help="organisation id (default: the only one)")
    ls.add_argument("--email", help="part of the address")
    ls.add_argument(
        "--status", choices=["Pending", "Email Sent", "Failure", "User Clicked", "Registered"]
    )
    ls.add_argument("--offset", type=int, default=0)
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=cmd_user_invitations)
