"""``carewire org``: organisations, their members, communities and affiliations.

The CLI acts as a system administrator (``cli:<OS user>``): it sees every
organisation, creates hospitals, and creates practices on a hospital's
behalf. Every change goes through the directory service, which validates it
and records it in the audit trail; invitations are mailed as the server's
configuration says (``[mail]``: the outbox by default). A server that is
running picks the changes up within ``[directory] index_reload_interval``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carewire.cli.audit_trail import cli_caller
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.errors import ConfigError

if TYPE_CHECKING:
    from carewire.directory.model import Organisation, OrganisationSettings

_YES_NO = {"yes": True, "no": False}


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    """Print ``rows`` in columns under ``header`` (the last column is not padded)."""
    cells = [list(header), *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header) - 1)]
    for r in cells:
        print("  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip())


def read_text(path: str) -> str:
    """A UTF-8 text file (a byte order mark ignored).

    Raises:
        ConfigError: It does not exist, or is not UTF-8.
    """
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def show_organisation(org: Organisation) -> None:
    """Print an organisation's details and settings."""
    s = org.settings
    retention = "never" if s.retention_value is None else f"{s.retention_value} {s.retention_unit}"
    rows = [
        ("id", org.id),
        ("kind", org.kind.value),
        ("name", org.name),
        ("office number", org.office_number),
        ("voice number", org.voice_number or "-"),
        ("time zone", s.default_time_zone),
        ("whole-organisation messaging", "yes" if s.whole_org_messaging else "no"),
        ("messages to non-users", "yes" if s.non_user_messaging else "no"),
        ("high-priority sound", f"{s.high_priority_sound_seconds} s"),
        ("message expiration", s.message_expiration.label),
        ("message retention", retention),
        ("PIN length", s.pin_length),
    ]
    table(rows, ("FIELD", "VALUE"))


# -- organisations ----------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    """List organisations: id, kind, name, office number."""

    async def work(p: Services) -> int:
        orgs = await p.directory.organisations.list_visible(cli_caller())
        table(
            [(o.id, o.kind.value, o.name, o.office_number) for o in orgs],
            ("ID", "KIND", "NAME", "OFFICE"),
        )
        return 0

    return run_with_platform(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    """Show an organisation's details and settings."""

    async def work(p: Services) -> int:
        show_organisation(await p.directory.organisations.get(cli_caller(), args.id))
        return 0

    return run_with_platform(args, work)


def _settings(args: argparse.Namespace, base: OrganisationSettings) -> OrganisationSettings:
    """``base`` with the settings options given on the command line."""
    from carewire.directory.model import MessageExpiration, RetentionUnit

    changes: dict[str, Any] = {}
    for option, name in (
        ("time_zone", "default_time_zone"),
        ("sound_seconds", "high_priority_sound_seconds"),
        ("pin_length", "pin_length"),
    ):
        if getattr(args, option, None) is not None:
            changes[name] = getattr(args, option)
    for option, name in (
        ("whole_org_messaging", "whole_org_messaging"),
        ("non_user_messaging", "non_user_messaging"),
    ):
        if getattr(args, option, None) is not None:
            changes[name] = _YES_NO[getattr(args, option)]
    if getattr(args, "expiration", None) is not None:
        changes["message_expiration"] = MessageExpiration(args.expiration)
    if getattr(args, "no_retention", False):
        changes.update(retention_value=None, retention_unit=None)
    elif getattr(args, "retention", None) is not None:
        value, unit = args.retention
        if not value.isdigit() or unit not in {u.value for u in RetentionUnit}:
            raise ConfigError("--retention takes a whole number and days, weeks, months or years")
        changes.update(retention_value=int(value), retention_unit=RetentionUnit(unit))
    return replace(base, **changes)


def cmd_create_hospital(args: argparse.Namespace) -> int:
    """Create a hospital and invite its first administrator by e-mail."""
    from carewire.directory.model import AdminInvitee, NewHospital, OrganisationSettings

    async def work(p: Services) -> int:
        new = NewHospital(
            name=args.name,
            office_number=args.office,
            settings=_settings(args, OrganisationSettings()),
            admin=AdminInvitee(
                email=args.admin_email, first_name=args.admin_first, last_name=args.admin_last
            ),
        )
        org = await p.directory.organisations.create_hospital(cli_caller(), new)
        print(f"created hospital {org.id}: {org.name}")
        print(f"invited {args.admin_email.strip().lower()} as its administrator")
        return 0

    return run_with_platform(args, work)


def cmd_create_practice(args: argparse.Namespace) -> int:
    """Create a practice of a hospital (affiliated with it), inviting its administrator."""
    from carewire.directory.model import AdminInvitee, NewPractice, OrganisationId

    csv_text = read_text(args.csv) if args.csv else None

    async def work(p: Services) -> int:
        created = await p.directory.organisations.create_practice(
            cli_caller(),
            NewPractice(
                hospital_id=OrganisationId(args.hospital),
                name=args.name,
                office_number=args.office,
                admin=AdminInvitee(
                    email=args.admin_email, first_name=args.admin_first, last_name=args.admin_last
                ),
                emails="\n".join(args.emails),
                csv_text=csv_text,
            ),
        )
        print(f"Practice {created.practice.name} was created (id {created.practice.id}).")
        print(f"invited {created.admin_invitation.email} as its administrator")
        users = created.users
        for problem in users.problems:
            print(f"error: line {problem.line}: {problem.message}", file=sys.stderr)
        print(f"invited {len(users.invited)} initial users")
        return 1 if users.problems else 0

    return run_with_platform(args, work)


def cmd_update(args: argparse.Namespace) -> int:
    """Change an organisation's details or settings (only the options given)."""
    from carewire.directory.model import OrganisationUpdate

    async def work(p: Services) -> int:
        orgs = p.directory.organisations
        current = await orgs.get(cli_caller(), args.id)
        update = OrganisationUpdate(
            name=args.name, office_number=args.office, settings=_settings(args, current.settings)
        )
        show_organisation(await orgs.update(cli_caller(), args.id, update))
        return 0

    return run_with_platform(args, work)


def cmd_admins(args: argparse.Namespace) -> int:
    """List an organisation's administrators."""

    async def work(p: Services) -> int:
        admins = await p.directory.organisations.admins(cli_caller(), args.id)
        rows = [(u.login, u.profile.sort_name, u.profile.email) for u in admins]
        table(rows, ("LOGIN", "NAME", "E-MAIL"))
        return 0

    return run_with_platform(args, work)


def cmd_members(args: argparse.Namespace) -> int:
    """List an organisation's members with their status, one page at a time."""
    from carewire.directory.model import PageRequest

    async def work(p: Services) -> int:
        page = await p.directory.organisations.members(
            cli_caller(), args.id, PageRequest(offset=args.offset, limit=args.limit)
        )
        rows = [(m.user.login, m.user.profile.sort_name, m.status.value) for m in page.items]
        table(rows, ("LOGIN", "NAME", "STATUS"))
        shown = f"{page.offset + 1}–{page.offset + len(page.items)}" if page.items else "0"
        print(f"{shown} of {page.total} members", file=sys.stderr)
        return 0

    return run_with_platform(args, work)


# -- communities and affiliations -------------------------------------------------------------


def cmd_communities(args: argparse.Namespace) -> int:
    """List each hospital's community; with --add HOSPITAL ORG, put ORG in it first."""

    async def work(p: Services) -> int:
        aff = p.directory.affiliations
        if args.add:
            hospital, member = args.add
            community = await aff.add_community_member(cli_caller(), hospital, member)
            name = next(m.name for m in community.members if m.id == member)
            print(f"added {name} to the community of {community.hospital.name}")
        for c in await aff.communities(cli_caller()):
            names = ", ".join(m.name for m in c.members[1:]) or "-"
            print(f"{c.hospital.id}  {c.hospital.name}: {names}")
        return 0

    return run_with_platform(args, work)


def cmd_list_affs(args: argparse.Namespace) -> int:
    """List an organisation's affiliations and pending invitations."""

    async def work(p: Services) -> int:
        views = await p.directory.affiliations.list_for(cli_caller(), args.id)
        rows = []
        for v in views:
            state = v.affiliation.status.value
            if state == "pending":
                state = "incoming" if v.is_incoming else "outgoing"
            groups = ",".join(str(g) for g in sorted(v.permission.groups))
            permission = v.permission.mode.value + (f":{groups}" if groups else "")
            rows.append((v.affiliation.id, v.other.id, v.label, state, permission))
        table(rows, ("ID", "ORG", "NAME", "STATE", "OUR PERMISSION"))
        return 0

    return run_with_platform(args, work)


def cmd_invite(args: argparse.Namespace) -> int:
    """Invite an existing organisation; its administrators are mailed a link."""

    async def work(p: Services) -> int:
        aff = await p.directory.affiliations.invite(cli_caller(), args.id, args.invitee)
        other = await p.directory.organisations.ref(aff.invitee_id)
        print(
            f"Invitations have been sent to the administrators of {other.name} "
            f"(affiliation {aff.id})."
        )
        return 0

    return run_with_platform(args, work)


def cmd_accept(args: argparse.Namespace) -> int:
    """Accept an affiliation invitation with its mailed token (all users, or a group)."""
    from carewire.directory.model import AcceptChoice, GroupId

    choice = AcceptChoice(
        group_id=None if args.group is None else GroupId(args.group), new_group_name=args.new_group
    )

    async def work(p: Services) -> int:
        aff, group = await p.directory.affiliations.accept(
            cli_caller(), args.affiliation, args.token, choice
        )
        who = "all users" if group is None else f"the group {group.name} ({group.id})"
        print(f"affiliation {aff.id} is active for {who}")
        return 0

    return run_with_platform(args, work)


def cmd_permissions(args: argparse.Namespace) -> int:
    """Set who of an organisation may communicate with an affiliate: none, everyone or groups."""
    from carewire.directory.model import GroupId, Permission, PermissionMode

    if args.groups:
        try:
            ids = frozenset(GroupId(int(g)) for g in args.groups.split(","))
        except ValueError:
            raise ConfigError("--groups takes group ids separated by commas") from None
        permission = Permission(mode=PermissionMode.GROUPS, groups=ids)
    else:
        permission = Permission(
            mode=PermissionMode.NONE if args.none else PermissionMode.ORGANISATION
        )

    async def work(p: Services) -> int:
        await p.directory.affiliations.set_permission(cli_caller(), args.id, args.other, permission)
        print("Permissions updated successfully")
        return 0

    return run_with_platform(args, work)


def cmd_delete(args: argparse.Namespace) -> int:
    """End an affiliation permanently, on both sides (they must be invited again)."""

    async def work(p: Services) -> int:
        await p.directory.affiliations.delete(cli_caller(), args.id, args.other)
        print(f"organisations {args.id} and {args.other} no longer communicate")
        return 0

    return run_with_platform(args, work)


# -- parser -----------------------------------------------------------------------------------


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


def add_settings(sp: argparse.ArgumentParser) -> None:
    """The settings options of create-hospital and update."""
    yes_no = ["yes", "no"]
    sp.add_argument("--time-zone", help="default time zone, e.g. America/Chicago")
    sp.add_argument("--whole-org-messaging", choices=yes_no)
    sp.add_argument("--non-user-messaging", choices=yes_no)
    sp.add_argument("--sound-seconds", type=int, help="5, 10, 15, 30 or 60")
    sp.add_argument("--expiration", help="30m 1h 2h 4h 8h 12h 1d 2d 3d 7d 2w 30d")
    sp.add_argument("--retention", nargs=2, metavar=("N", "UNIT"), help="e.g. 7 years")
    sp.add_argument("--no-retention", action="store_true", help="never purge messages")
    sp.add_argument("--pin-length", type=int, choices=[4, 6])


def _add_admin(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--office", required=True, help="office number, e.g. '(408) 882-5830'")
    sp.add_argument("--admin-email", required=True, help="the administrator to invite")
    sp.add_argument("--admin-first", required=True, help="their first name")
    sp.add_argument("--admin-last", required=True, help="their last name")


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``org …`` on the ``carewire`` parser."""
    org = sub.add_parser("org", help="manage organisations", description=__doc__)
    osub = org.add_subparsers(dest="org_command", required=True, metavar="ACTION")
    _command(osub, with_data_dir, "list", cmd_list)
    for name, func in (("show", cmd_show), ("admins", cmd_admins)):
        _command(osub, with_data_dir, name, func).add_argument(
            "id", type=int, help="organisation id"
        )
    hospital = _command(osub, with_data_dir, "create-hospital", cmd_create_hospital)
    hospital.add_argument("name")
    _add_admin(hospital)
    add_settings(hospital)
    practice = _command(osub, with_data_dir, "create-practice", cmd_create_practice)
    practice.add_argument("hospital", type=int, help="the hospital's id")
    practice.add_argument("name")
    _add_admin(practice)
    practice.add_argument("--emails", nargs="*", default=[], help="initial users to invite")
    practice.add_argument("--csv", help="initial users as a CSV file")
    update = _command(osub, with_data_dir, "update", cmd_update)
    update.add_argument("id", type=int)
    update.add_argument("--name")
    update.add_argument("--office")
    add_settings(update)
    members = _command(osub, with_data_dir, "members", cmd_members)
    members.add_argument("id", type=int)
    members.add_argument("--offset", type=int, default=0)
    members.add_argument("--limit", type=int, default=10)
    communities = _command(osub, with_data_dir, "communities", cmd_communities)
    communities.add_argument("--add", nargs=2, type=int, metavar=("HOSPITAL", "ORG"))
    _add_affiliations(osub, with_data_dir)


def _add_affiliations(osub: Subparsers, with_data_dir: WithDataDir) -> None:
    aff = osub.add_parser(
        "affiliations", help="affiliations between organisations", description=cmd_list_affs.__doc__
    )
    asub = aff.add_subparsers(dest="affiliations_command", required=True, metavar="ACTION")
    _command(asub, with_data_dir, "list", cmd_list_affs).add_argument("id", type=int)
    invite = _command(asub, with_data_dir, "invite", cmd_invite)
    invite.add_argument("id", type=int, help="the inviting organisation")
    invite.add_argument("invitee", type=int, help="the organisation invited")
    accept = _command(asub, with_data_dir, "accept", cmd_accept)
    accept.add_argument("affiliation", type=int)
    accept.add_argument(
        "--token",
        required=True,
        help="the token of the mailed link (write --token=VALUE: a token may start with '-')",
    )
    choice = accept.add_mutually_exclusive_group()
    choice.add_argument("--group", type=int, help="only this group's members")
    choice.add_argument("--new-group", help="only the members of a new group of this name")
    perms = _command(asub, with_data_dir, "permissions", cmd_permissions)
    perms.add_argument("id", type=int, help="the organisation whose side is set")
    perms.add_argument("other", type=int, help="the affiliated organisation")
    mode = perms.add_mutually_exclusive_group(required=True)
    mode.add_argument("--none", action="store_true", help="no one (temporarily ended)")
    mode.add_argument("--everyone", action="store_true", help="every user")
    mode.add_argument("--groups", help="group ids, comma-separated")
    delete = _command(asub, with_data_dir, "delete", cmd_delete)
    delete.add_argument("id", type=int)
    delete.add_argument("other", type=int)
