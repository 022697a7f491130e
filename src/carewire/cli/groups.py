"""``carewire group``: an organisation's groups and their members, and CSV import.

The CLI acts as a system administrator (``cli:<OS user>``); every change
goes through the directory service, which validates it and records it in
the audit trail. A CSV import creates a group for each Department value
(existing names are reused) and puts each row's user (by Email) in it; bad
rows are reported by line on stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from carewire.cli.audit_trail import cli_caller
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.errors import ConfigError


def _print_groups(rows: list[tuple[int, str, int, str]]) -> None:
    header = ("ID", "MEMBERS", "WHOLE-GROUP", "NAME")
    cells = [header, *[(str(i), str(n), wgm, name) for i, name, n, wgm in rows]]
    widths = [max(len(r[c]) for r in cells) for c in range(3)]
    for r in cells:
        print("  ".join([*(r[c].ljust(widths[c]) for c in range(3)), r[3]]).rstrip())


def cmd_list(args: argparse.Namespace) -> int:
    """List an organisation's groups (optionally those whose name contains --name)."""

    async def work(p: Services) -> int:
        groups = await p.directory.groups.list_for(
            cli_caller(), args.organisation, name_contains=args.name or ""
        )
        _print_groups(
            [
                (g.id, g.name, g.member_count, "yes" if g.whole_group_messaging else "")
                for g in groups
            ]
        )
        return 0

    return run_with_platform(args, work)


def cmd_create(args: argparse.Namespace) -> int:
    """Create a group in an organisation."""

    async def work(p: Services) -> int:
        group = await p.directory.groups.create(
            cli_caller(),
            args.organisation,
            args.name,
            whole_group_messaging=args.whole_group_messaging,
        )
        print(f"created group {group.id}: {group.name} ({group.slug}@groups)")
        return 0

    return run_with_platform(args, work)


def cmd_rename(args: argparse.Namespace) -> int:
    """Rename a group (its chat address stays)."""

    async def work(p: Services) -> int:
        group = await p.directory.groups.update(cli_caller(), args.group, name=args.name)
        print(f"group {group.id} is now {group.name}")
        return 0

    return run_with_platform(args, work)


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a group; affiliations that used it as permission then allow no one."""

    async def work(p: Services) -> int:
        group = await p.directory.groups.get(cli_caller(), args.group)
        await p.directory.groups.delete(cli_caller(), args.group)
        print(f"deleted group {group.id}: {group.name}")
        return 0

    return run_with_platform(args, work)


def cmd_members(args: argparse.Namespace) -> int:
    """List a group's members: login, name, e-mail."""

    async def work(p: Services) -> int:
        for u in await p.directory.groups.members(cli_caller(), args.group):
            print(f"{u.login}\t{u.profile.sort_name}\t{u.profile.email}")
        return 0

    return run_with_platform(args, work)


def cmd_add(args: argparse.Namespace) -> int:
    """Add users (logins) of the group's organisation to a group."""

    async def work(p: Services) -> int:
        group = await p.directory.groups.add_members(cli_caller(), args.group, args.logins)
        print(f"group {group.name} has {group.member_count} members")
        return 0

    return run_with_platform(args, work)


def cmd_remove(args: argparse.Namespace) -> int:
    """Remove users from a group (they stay in the organisation)."""

    async def work(p: Services) -> int:
        group = await p.directory.groups.remove_members(cli_caller(), args.group, args.logins)
        print(f"group {group.name} has {group.member_count} members")
        return 0

    return run_with_platform(args, work)


def cmd_import(args: argparse.Namespace) -> int:
    """Create groups from a CSV file's Department column (with Email: their members)."""
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{args.file}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{args.file}: not UTF-8 text") from None

    async def work(p: Services) -> int:
        result = await p.directory.groups.import_csv(cli_caller(), args.organisation, text)
        for problem in result.problems:
            print(f"error: line {problem.line}: {problem.message}", file=sys.stderr)
        created = ", ".join(result.created) or "none"
        print(
            f"created {len(result.created)} groups ({created}), {len(result.existing)} existed, "
            f"{result.members_added} memberships added, {len(result.problems)} rows left out"
        )
        return 1 if result.problems else 0

    return run_with_platform(args, work)


def _command(
    group: Subparsers,
    with_data_dir: WithDataDir,
    name: str,
    func: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    doc = func.__doc__ or ""
    sp = with_data_dir(group.add_parser(name, help=doc.split("\n")[0], description=doc))
    sp.set_defaults(func=func)
    return sp


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``group list|create|rename|delete|members|add|remove|import``."""
    group = sub.add_parser("group", help="manage groups", description=__doc__)
    gsub = group.add_subparsers(dest="group_command", required=True, metavar="ACTION")
    ls = _command(gsub, with_data_dir, "list", cmd_list)
    ls.add_argument("--organisation", type=int, required=True, help="organisation id")
    ls.add_argument("--name", help="part of the name")
    create = _command(gsub, with_data_dir, "create", cmd_create)
    create.add_argument("name")
    create.add_argument("--organisation", type=int, required=True, help="organisation id")
    create.add_argument(
        "--whole-group-messaging", action="store_true", help="members may message the group"
    )
    rename = _command(gsub, with_data_dir, "rename", cmd_rename)
    rename.add_argument("group", type=int, help="group id")
    rename.add_argument("name")
    for name, func in (("delete", cmd_delete), ("members", cmd_members)):
        _command(gsub, with_data_dir, name, func).add_argument("group", type=int, help="group id")
    for name, func in (("add", cmd_add), ("remove", cmd_remove)):
        sp = _command(gsub, with_data_dir, name, func)
        sp.add_argument("group", type=int, help="group id")
        sp.add_argument("logins", nargs="+", metavar="LOGIN")
    imp = _command(gsub, with_data_dir, "import", cmd_import)
    imp.add_argument("file", help="CSV with a Department column (and Email)")
    imp.add_argument("--organisation", type=int, required=True, help="organisation id")
