"""``carewire console user …`` and ``carewire mail outbox``: console users and the mail outbox.

Generated passwords are printed once and must be changed at the first
sign-in. Every change is recorded in the audit trail as done by ``cli``.
"""

from __future__ import annotations

import argparse
import sys

from carewire.cli.runtime import Services, Subparsers, WithDataDir, config, run_with_platform
from carewire.mail import read_outbox
from carewire.security.console_auth import Role


def cmd_user_add(args: argparse.Namespace) -> int:
    """Create a console user with a one-time password (printed once)."""

    async def work(p: Services) -> int:
        user, password = await p.console.create_user(
            args.name, Role(args.role), email=args.email or None
        )
        print(f"console user {user.username} created ({user.role.value})")
        print(f"  one-time password  {password}")
        print("  (shown only now; it must be changed at the first sign-in)")
        return 0

    return run_with_platform(args, work)


def cmd_user_list(args: argparse.Namespace) -> int:
    """List console users: username, role, e-mail, state."""

    async def work(p: Services) -> int:
        users = await p.console.list_users()
        if not users:
            print("no console users")
            return 0
        print(f"{'USERNAME':<24} {'ROLE':<13} {'E-MAIL':<32} STATE")
        for u in users:
            state = (
                "locked"
                if u.is_locked
                else ("must change password" if u.must_change_password else "active")
            )
            print(f"{u.username:<24} {u.role.value:<13} {u.email or '-':<32} {state}")
        return 0

    return run_with_platform(args, work)


def cmd_user_unlock(args: argparse.Namespace) -> int:
    """Unlock a console user locked after repeated failed sign-ins."""

    async def work(p: Services) -> int:
        user = await p.console.unlock(args.name)
        print(f"console user {user.username} unlocked")
        return 0

    return run_with_platform(args, work)


def cmd_user_passwd(args: argparse.Namespace) -> int:
    """Give a console user a new one-time password (printed once); ends its sessions."""

    async def work(p: Services) -> int:
        password = await p.console.reset_password(args.name)
        print(f"new one-time password for {args.name}: {password}")
        print("(shown only now; it must be changed at the next sign-in)")
        return 0

    return run_with_platform(args, work)


def cmd_mail_outbox(args: argparse.Namespace) -> int:
    """List the mail written to DATA/outbox/ (no SMTP server configured), or show one."""
    cfg = config(args)
    entries = read_outbox(cfg.outbox_dir)
    if args.show is not None:
        if not 1 <= args.show <= len(entries):
            print(f"carewire: no message {args.show} in the outbox", file=sys.stderr)
            return 1
        sys.stdout.write(entries[args.show - 1].path.read_text(encoding="utf-8"))
        return 0
    if not entries:
        print(f"the outbox is empty ({cfg.outbox_dir})")
        return 0
    print(f"{'N':>3}  {'DATE':<31} {'TO':<32} SUBJECT")
    for n, e in enumerate(entries, 1):
        print(f"{n:>3}  {e.date:<31} {e.to:<32} {e.subject}")
    return 0


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``console`` and ``mail`` under the top-level parser."""
    console = sub.add_parser("console", help="the web console", description="The web console.")
    csub = console.add_subparsers(dest="console_command", required=True, metavar="COMMAND")
    user = csub.add_parser("user", help="console users", description="Manage console users.")
    usub = user.add_subparsers(dest="console_user_command", required=True, metavar="COMMAND")
    add = with_data_dir(
        usub.add_parser("add", help="create a console user", description=cmd_user_add.__doc__)
    )
    add.add_argument("name", help="username (letters, digits, '.', '_', '-')")
    add.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in Role],
        help="system-admin (everything), org-admin (no console users), auditor (read-only)",
    )
    add.add_argument("--email", help="address for password-reset links")
    add.set_defaults(func=cmd_user_add)
    ls = with_data_dir(
        usub.add_parser("list", help="list console users", description=cmd_user_list.__doc__)
    )
    ls.set_defaults(func=cmd_user_list)
    for name, func, text in (
        ("unlock", cmd_user_unlock, "unlock a console user"),
        ("passwd", cmd_user_passwd, "give a console user a new one-time password"),
    ):
        sp = with_data_dir(usub.add_parser(name, help=text, description=func.__doc__))
        sp.add_argument("name")
        sp.set_defaults(func=func)
    mail = sub.add_parser("mail", help="outgoing mail", description="Outgoing mail.")
    msub = mail.add_subparsers(dest="mail_command", required=True, metavar="COMMAND")
    outbox = with_data_dir(
        msub.add_parser("outbox", help="list the outbox", description=cmd_mail_outbox.__doc__)
    )
    outbox.add_argument("--show", type=int, metavar="N", help="print message N in full")
    outbox.set_defaults(func=cmd_mail_outbox)
