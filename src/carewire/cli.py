"""The ``carewire`` command: init, serve and account administration.

Every command takes ``--data-dir`` (default ``./data`` or ``CAREWIRE_DATA_DIR``).
Errors print one clear line to stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import getpass
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carewire import __version__
from carewire.config import CONFIG_FILE, Config, load, render_default
from carewire.errors import CarewireError, ConfigError

ADMIN_LOGIN = "admin"
ADMIN_PASSWORD_FILE = "initial-admin-password.txt"
DEMO_PASSWORD_FILE = "demo-password.txt"


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or os.environ.get("CAREWIRE_DATA_DIR") or "data")


def _config(args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    data_dir = _data_dir(args)
    if not (data_dir / CONFIG_FILE).exists():
        raise ConfigError(
            f"{data_dir}/{CONFIG_FILE} not found: "
            f"run 'carewire init --data-dir {data_dir} --domain DOMAIN' first"
        )
    return load(data_dir, overrides=overrides)


async def _with_accounts(cfg: Config, work: Callable[[Any], Awaitable[int]]) -> int:
    """Open storage, run ``work(AccountService)``, close storage."""
    return await _with_audited_accounts(cfg, lambda accounts, _audit: work(accounts))


async def _with_audited_accounts(cfg: Config, work: Callable[[Any, Any], Awaitable[int]]) -> int:
    """Open storage, run ``work(AccountService, CliAudit)``, close storage."""
    from carewire import storage
    from carewire.cli_audit import audit_on
    from carewire.core.accounts import AccountService
    from carewire.storage import migrate

    await migrate.upgrade(cfg.database_url)
    db, stores = await storage.open_stores(cfg.database_url)
    try:
        accounts = AccountService(stores, iterations=cfg.xmpp.scram_iterations)
        return await work(accounts, audit_on(db))
    finally:
        await db.close()


# -- init / serve ---------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """Create the data directory, configuration, certificate, database and first account."""
    from carewire.core.accounts import AccountInput
    from carewire.security.certificates import ensure_certificate
    from carewire.server import CONSOLE_PASSWORD_FILE, server_secret, write_secret_file

    data_dir = _data_dir(args)
    if (data_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{data_dir} is already initialised ({CONFIG_FILE} exists)")
    domain = args.domain.strip().lower().rstrip(".")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    (data_dir / CONFIG_FILE).write_text(render_default(domain), encoding="utf-8")
    try:
        cfg = load(data_dir)
    except ConfigError:
        (data_dir / CONFIG_FILE).unlink()
        raise
    cert = ensure_certificate(domain, cfg.cert_file, cfg.key_file)
    server_secret(data_dir)
    password = secrets.token_urlsafe(12)

    async def create_admin(accounts: Any) -> int:
        await accounts.create(AccountInput(login=ADMIN_LOGIN, password=password))
        return 0

    asyncio.run(_with_accounts(cfg, create_admin))
    console_password = asyncio.run(_console_admin(cfg, domain))
    pw_file = data_dir / ADMIN_PASSWORD_FILE
    fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{ADMIN_LOGIN}@{domain}\n{password}\n")
    print(f"Carewire initialised in {data_dir}/")
    print(f"  chat domain    {domain}  (rooms: chat.{domain})")
    print(f"  certificate    {cfg.cert_file} (self-signed, until {cert.not_after:%Y-%m-%d})")
    print(f"  database       {cfg.database_url}")
    print(f"  administrator  {ADMIN_LOGIN}@{domain}")
    print(f"  password       {password}")
    print(f"  (also in {pw_file}, readable only by you: change it with")
    print(f"   'carewire user passwd {ADMIN_LOGIN} --data-dir {data_dir}' and delete the file)")
    if console_password is not None:
        console_file = data_dir / CONSOLE_PASSWORD_FILE
        write_secret_file(console_file, f"admin\n{console_password}\n")
        print(f"  web console    https://{domain}:{cfg.server.https_port}/  user admin")
        print(f"  console pw     {console_password}  (one-time: a new one is asked at first")
        print(f"                 sign-in; also in {console_file})")
    return 0


def run_with_platform(
    args: argparse.Namespace,
    work: Callable[[Any], Awaitable[int]],
    *,
    with_defaults: bool = False,
    fire_rules: bool = False,
) -> int:
    """Open the platform of ``--data-dir``, run ``work(platform)``, close it.

    Args:
        args: The parsed command line (for ``--data-dir``).
        work: The command's body.
        with_defaults: Create the default adapters first on a new installation.
        fire_rules: Run the rule worker, and let the rules ``work``'s writes triggered
            fire before closing (deferred firings are left to the server's scheduler).
    """
    import dataclasses

    from carewire.adapters.xmpp import COMPONENT as XMPP
    from carewire.platform import engine_config, open_platform

    cfg = _config(args)
    # No XMPP server runs here: its actions are handed to the running server's scheduler.
    engine = dataclasses.replace(engine_config(cfg), hand_over=frozenset({XMPP}))

    async def main() -> int:
        platform = await open_platform(cfg.database_url, engine_config=engine)
        try:
            if with_defaults:
                await platform.ensure_default_adapters(cfg.server.domain)
            if not fire_rules:
                return await work(platform)
            await platform.engine.start(scheduler=False)
            try:
                return await work(platform)
            finally:
                await platform.engine.drain()
        finally:
            await platform.close()

    return asyncio.run(main())


async def _console_admin(cfg: Config, domain: str) -> str | None:
    """Create the console's first administrator; returns its one-time password."""
    from carewire.platform import open_platform

    platform = await open_platform(cfg.database_url)
    try:
        return await platform.console.ensure_first_admin(domain)
    finally:
        await platform.close()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from carewire import log
    from carewire.server import install_uvloop, run

    overrides: dict[str, Any] = {}
    for flag in ("bind", "c2s_port", "c2s_tls_port", "s2s_port", "https_port"):
        value = getattr(args, flag)
        if value is not None:
            overrides[flag] = value
    cfg = _config(args, {"server": overrides} if overrides else None)
    log.setup(args.log_level or cfg.log.level)
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(cfg))
    return 0


async def _load_demo_data(cfg: Config) -> Any:
    from carewire.demo_data import load_demo_data
    from carewire.platform import open_platform

    platform = await open_platform(cfg.database_url)
    try:
        await platform.ensure_default_adapters(cfg.server.domain)
        return await load_demo_data(platform)
    finally:
        await platform.close()


def cmd_demo(args: argparse.Namespace) -> int:
    """Load the demo hospital: staff of three units with ready-made rosters."""
    from carewire import storage
    from carewire.core.accounts import AccountService
    from carewire.demo import load_demo
    from carewire.storage import migrate

    cfg = _config(args)

    async def work() -> int:
        await migrate.upgrade(cfg.database_url)
        db, stores = await storage.open_stores(cfg.database_url)
        try:
            accounts = AccountService(stores, iterations=cfg.xmpp.scram_iterations)
            result = await load_demo(stores, accounts, domain=cfg.server.domain)
        finally:
            await db.close()
        data = await _load_demo_data(cfg)
        if result.created:
            pw_file = _data_dir(args) / DEMO_PASSWORD_FILE
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(result.password + "\n")
            print(
                f"demo hospital loaded: {len(result.created)} staff accounts, "
                f"{result.roster_items} roster entries"
            )
            for login in result.created:
                print(f"  {login}@{cfg.server.domain}")
            print(f"  password for all of them: {result.password}  (also in {pw_file})")
        else:
            print("demo hospital already loaded (no account changed)")
        if result.existing:
            print(f"  kept existing accounts: {', '.join(result.existing)}", file=sys.stderr)
        shown = ", ".join(f"{n} {ds}" for ds, n in data.counts.items())
        print(f"  datasets: {shown}; the NURSE_CALLS dataset and its alert rules")
        print("  a running server picks up the rosters at the users' next login")
        where = _data_dir(args)
        print(f"  raise a nurse call: carewire demo nurse-call ICU-101A --data-dir {where}")
        return 0

    return asyncio.run(work())


def cmd_demo_call(args: argparse.Namespace) -> int:
    """Raise a nurse call from a demo bed: the running server alerts the bed's nurse."""
    from carewire.demo_data import bed_of, patient_in
    from carewire.platform import Platform

    try:
        bed = bed_of(args.bed)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None

    async def work(p: Platform) -> int:
        from carewire.datasets.model import Origin

        if "NURSE_CALLS" not in p.registry:
            raise ConfigError("no NURSE_CALLS dataset: run 'carewire demo' first")
        call_id = f"{args.bed}-{p.datasets.clock.now():%Y%m%d%H%M%S}"
        values: dict[str, object] = {
            "call_id": call_id,
            "status": "Open",
            "priority": "Normal",
            "bed": bed,
        }
        mrn = patient_in(args.bed)
        if mrn is not None:
            values["patient"] = {"mrn": mrn}
        rec = await p.datasets.create("NURSE_CALLS", values, origin=Origin(actor="cli:demo"))
        print(f"nurse call {call_id} raised from {args.bed} (NURSE_CALLS record {rec.id})")
        print("  the running server alerts the bed's nurse; unanswered after 60 s, the backup")
        return 0

    return run_with_platform(args, work, fire_rules=True)


# -- users ----------------------------------------------------------------------


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise ConfigError("no password given: use --password or type it on standard input")
        return line
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise ConfigError("the passwords do not match")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create one account."""
    from carewire.core.accounts import AccountInput

    cfg = _config(args)
    item = AccountInput(
        login=args.login,
        password=_password(args),
        first_name=args.first_name or "",
        last_name=args.last_name or "",
    )

    async def work(accounts: Any, audit: Any) -> int:
        account = await accounts.create(item)
        await audit("user.add", account.login)
        print(f"created {account.login}@{cfg.server.domain}")
        return 0

    return asyncio.run(_with_audited_accounts(cfg, work))


def cmd_user_passwd(args: argparse.Namespace) -> int:
    """Set a new password."""
    cfg = _config(args)
    password = _password(args)

    async def work(accounts: Any, audit: Any) -> int:
        await accounts.set_password(args.login, password)
        await audit("user.passwd", args.login)
        print(f"password changed for {args.login}@{cfg.server.domain}")
        return 0

    return asyncio.run(_with_audited_accounts(cfg, work))


def cmd_user_list(args: argparse.Namespace) -> int:
    """List accounts."""
    cfg = _config(args)

    async def work(accounts: Any) -> int:
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

    return asyncio.run(_with_accounts(cfg, work))


def _account_action(args: argparse.Namespace, method: str, done: str) -> int:
    """Run ``AccountService.<method>(login)``; exit 1 when there is no such account."""
    from carewire.security.audit import Outcome

    cfg = _config(args)

    async def work(accounts: Any, audit: Any) -> int:
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

    return asyncio.run(_with_audited_accounts(cfg, work))


def cmd_user_remove(args: argparse.Namespace) -> int:
    """Delete an account and everything it owns."""
    return _account_action(args, "remove", "removed")


def cmd_user_unlock(args: argparse.Namespace) -> int:
    """Unlock an account after repeated failed logins (account security policy)."""
    return _account_action(args, "unlock", "unlocked")


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


def cmd_user_import(args: argparse.Namespace) -> int:
    """Create many accounts from CSV, with a progress bar; bad rows are reported, not fatal."""
    from tqdm import tqdm

    from carewire.core.accounts import AccountInput

    cfg = _config(args)
    rows, problems = read_import_rows(Path(args.file))

    async def work(accounts: Any, audit: Any) -> int:
        prepared = []
        seen: set[str] = set()
        for row in tqdm(
            rows, desc="deriving keys", unit="account", disable=args.quiet, file=sys.stderr
        ):
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
        created, skipped = 0, []
        for i in tqdm(
            range(0, len(prepared), 500),
            desc="writing",
            unit="batch",
            disable=args.quiet,
            file=sys.stderr,
        ):
            n, sk = await accounts.create_many(prepared[i : i + 500])
            created += n
            skipped += sk
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

    return asyncio.run(_with_audited_accounts(cfg, work))


# -- parser -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``--help`` everywhere)."""
    p = argparse.ArgumentParser(
        prog="carewire", description="Carewire clinical communication server."
    )
    p.add_argument("--version", action="version", version=f"carewire {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_data_dir(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--data-dir", help="data directory (default ./data or $CAREWIRE_DATA_DIR)")
        return sp

    init = with_data_dir(
        sub.add_parser("init", help="create a data directory", description=cmd_init.__doc__)
    )
    init.add_argument("--domain", required=True, help="the chat domain, e.g. chat.hospital.example")
    init.set_defaults(func=cmd_init)

    serve = with_data_dir(
        sub.add_parser("serve", help="run the server", description=cmd_serve.__doc__)
    )
    serve.add_argument("--bind", help="address to listen on (overrides server.bind)")
    for flag, key in (
        ("--c2s-port", "c2s"),
        ("--c2s-tls-port", "direct TLS"),
        ("--s2s-port", "federation"),
        ("--https-port", "HTTPS"),
    ):
        serve.add_argument(
            flag, type=int, help=f"{key} port; 0 picks a free one (written to run/ports.json)"
        )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=cmd_serve)

    demo = with_data_dir(
        sub.add_parser("demo", help="load the demo hospital", description=cmd_demo.__doc__)
    )
    demo.set_defaults(func=cmd_demo)
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="ACTION")
    call = demo_sub.add_parser(
        "nurse-call", help="raise a nurse call from a bed", description=cmd_demo_call.__doc__
    )
    call.add_argument("bed", help="the bed's location, e.g. ICU-101A")
    call.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    call.set_defaults(func=cmd_demo_call)

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
    rm = with_data_dir(
        usub.add_parser("remove", help="delete an account", description=cmd_user_remove.__doc__)
    )
    rm.add_argument("login")
    rm.set_defaults(func=cmd_user_remove)
    un = with_data_dir(
        usub.add_parser(
            "unlock", help="unlock a locked account", description=cmd_user_unlock.__doc__
        )
    )
    un.add_argument("login")
    un.set_defaults(func=cmd_user_unlock)
    imp = with_data_dir(
        usub.add_parser(
            "import", help="create accounts from CSV", description=cmd_user_import.__doc__
        )
    )
    imp.add_argument("file", help="CSV with columns login,password[,first_name,last_name]")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_user_import)
    from carewire import cli_data

    cli_data.add_commands(sub, with_data_dir)
    from carewire import cli_rules

    cli_rules.add_commands(sub, with_data_dir)
    from carewire import cli_cert

    cli_cert.add_commands(sub, with_data_dir)
    from carewire import cli_audit

    cli_audit.add_commands(sub, with_data_dir)
    from carewire import cli_console

    cli_console.add_commands(sub, with_data_dir)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carewire`` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CarewireError as exc:
        print(f"error: {exc.message or exc}", file=sys.stderr)
        return 2
