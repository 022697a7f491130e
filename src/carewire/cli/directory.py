"""``carewire directory``: an organisation's LDAP integration: settings, status, sync.

The CLI acts as a system administrator (``cli:<OS user>``); settings and runs
go through the LDAP service, which checks them and records them in the audit
trail. The bind password is read from a file (``--bind-secret-file``) or
standard input, never from the command line (where ``ps`` would show it). A
run held by the mass-disable guard exits 3 and says so; ``--confirm`` lets
it go on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from carewire.cli.audit_trail import cli_caller
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.errors import ConfigError
from carewire.identity.ldap.model import (
    PRESET_FILTERS,
    PRESETS,
    LdapSettings,
    RunState,
    SyncRun,
    Trigger,
)

if TYPE_CHECKING:
    from carewire.identity.ldap.service import LdapService

#: Exit status of a run held by the mass-disable guard.
EXIT_HELD = 3


def _ldap(p: Services) -> LdapService:
    if p.ldap is None:
        raise ConfigError("directory sync is not available in this installation")
    return p.ldap


def _run_line(run: SyncRun) -> str:
    c = run.counts
    ended = run.ended_at.isoformat(timespec="seconds") if run.ended_at else "-"
    return (
        f"run {run.id} {run.kind.value} {run.state.value}: started "
        f"{run.started_at.isoformat(timespec='seconds')}, ended {ended}; created {c.created}, "
        f"updated {c.updated}, disabled {c.disabled}, unchanged {c.unchanged}, failed {c.failed}"
    )


def cmd_status(args: argparse.Namespace) -> int:
    """Show the integration's status (checked now), its last run and a held run."""

    async def work(p: Services) -> int:
        ldap = _ldap(p)
        settings = await ldap.settings(cli_caller(), args.organisation)
        if settings is None:
            print(f"organisation {args.organisation}: no LDAP integration")
            return 1
        await ldap.check(args.organisation)
        status = await ldap.status(cli_caller(), args.organisation)
        state = "Connected" if status.is_connected else "Not Connected"
        print(f"{settings.url} ({settings.base_dn}): {state}")
        if status.error:
            print(f"error: {status.error}")
        print(
            f"linked users: {status.linked_users}; sign-in by LDAP: "
            f"{'on' if settings.is_sign_in_enabled else 'off'}"
        )
        if status.last_run is not None:
            print("last " + _run_line(status.last_run))
            if status.last_run.message:
                print(status.last_run.message)
        return 0

    return run_with_platform(args, work)


def cmd_sync(args: argparse.Namespace) -> int:
    """Sync the organisation's users from its directory now (--confirm: past the guard)."""

    async def work(p: Services) -> int:
        run = await _ldap(p).sync(
            cli_caller(),
            args.organisation,
            trigger=Trigger.CLI,
            is_confirmed=args.confirm,
            is_full=True if args.full else None,
        )
        print(_run_line(run))
        if run.message:
            print(run.message, file=sys.stderr if run.state is not RunState.DONE else sys.stdout)
        if run.state is RunState.HELD:
            return EXIT_HELD
        return 0 if run.state is RunState.DONE else 1

    return run_with_platform(args, work)


def cmd_configure(args: argparse.Namespace) -> int:
    """Create or change the LDAP integration (the bind password from a file or stdin)."""
    secret = _secret(args)
    mapping = PRESETS[args.preset]
    user_filter, group_filter = PRESET_FILTERS[args.preset]

    async def work(p: Services) -> int:
        ldap = _ldap(p)
        before = await ldap.settings(cli_caller(), args.organisation)
        base = before or LdapSettings(
            organisation_id=args.organisation,
            url="",
            bind_dn="",
            base_dn="",
            user_filter=user_filter,
            group_filter=group_filter,
            mapping=mapping,
        )
        values = {
            "url": args.url,
            "bind_dn": args.bind_dn,
            "base_dn": args.base_dn,
            "user_filter": args.filter,
            "group_base_dn": args.group_base_dn,
            "ca_file": args.ca_file,
            "is_sign_in_enabled": args.sign_in,
            "max_disable_percent": args.max_disable_percent,
        }
        fields = {k: v for k, v in values.items() if v is not None}
        settings = LdapSettings(
            **{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **fields}
        )
        saved = await ldap.save(cli_caller(), settings, secret)
        print(f"organisation {saved.organisation_id}: LDAP integration saved ({saved.url})")
        return 0

    return run_with_platform(args, work)


def _secret(args: argparse.Namespace) -> str | None:
    if args.bind_secret_file is None:
        return None
    if args.bind_secret_file == "-":
        return sys.stdin.readline().rstrip("\n") or None
    try:
        return Path(args.bind_secret_file).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        raise ConfigError(f"{args.bind_secret_file}: no such file") from None


def _command(
    group: Subparsers,
    with_data_dir: WithDataDir,
    name: str,
    func: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    doc = func.__doc__ or ""
    sp = with_data_dir(group.add_parser(name, help=doc.split("\n")[0], description=doc))
    sp.set_defaults(func=func)
    sp.add_argument("organisation", type=int, metavar="ORG", help="organisation id")
    return sp


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``directory status|sync|configure``."""
    group = sub.add_parser("directory", help="sync users from LDAP", description=__doc__)
    dsub = group.add_subparsers(dest="directory_command", required=True, metavar="ACTION")
    _command(dsub, with_data_dir, "status", cmd_status)
    sync = _command(dsub, with_data_dir, "sync", cmd_sync)
    sync.add_argument(
        "--confirm", action="store_true", help="go on even if many users would be disabled"
    )
    sync.add_argument("--full", action="store_true", help="a full run (sees who left)")
    conf = _command(dsub, with_data_dir, "configure", cmd_configure)
    conf.add_argument("--preset", choices=sorted(PRESETS), default="openldap")
    conf.add_argument("--url", help="ldaps://host[:port] or ldap://host[:port] (StartTLS)")
    conf.add_argument("--bind-dn")
    conf.add_argument("--bind-secret-file", help="file holding the bind password ('-': stdin)")
    conf.add_argument("--base-dn")
    conf.add_argument("--filter", help="the users' search filter")
    conf.add_argument("--group-base-dn", help="where groups are searched ('' for none)")
    conf.add_argument("--ca-file", help="PEM file of the CA of the server's certificate")
    conf.add_argument("--max-disable-percent", type=int)
    conf.add_argument(
        "--sign-in",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="synced users sign in with their directory password",
    )
