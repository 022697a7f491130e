"""``carewire scim token``: the SCIM bearer tokens of an organisation (docs/scim.md).

``create ORG NAME`` prints the token once (only its SHA-256 is kept);
``list [ORG]`` shows names, creators, last use and revocation, never tokens;
``revoke ORG NAME`` stops a token at once. The CLI acts as a system
administrator (``cli:<OS user>``); creating and revoking are audited.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from carewire.cli.audit_trail import cli_caller
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform

if TYPE_CHECKING:
    from carewire.identity.scim.tokens import ScimTokens


def _tokens(p: Services) -> ScimTokens:
    """The SCIM tokens (the server's assembly, imported only by these commands)."""
    from carewire.assembly_scim import scim_tokens

    return scim_tokens(p)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def cmd_create(args: argparse.Namespace) -> int:
    """Create a SCIM token of an organisation and print it (it is shown only this once)."""

    async def work(p: Services) -> int:
        token, plaintext = await _tokens(p).create(
            cli_caller(), args.organisation, args.name, invite_users=not args.no_invite
        )
        print(plaintext)
        print(
            f"SCIM token {token.name!r} of organisation {token.organisation_id} created: "
            "store it now, it cannot be shown again",
            file=sys.stderr,
        )
        return 0

    return run_with_platform(args, work)


def cmd_list(args: argparse.Namespace) -> int:
    """List the SCIM tokens of an organisation (of all organisations without ORG)."""

    async def work(p: Services) -> int:
        tokens = await _tokens(p).list(cli_caller(), args.organisation)
        print("ORG\tNAME\tINVITES\tCREATED\tBY\tLAST USED\tREVOKED")
        for t in tokens:
            print(
                f"{t.organisation_id}\t{t.name}\t{'yes' if t.invite_users else 'no'}\t"
                f"{_when(t.created_at)}\t{t.created_by}\t{_when(t.last_used_at)}\t"
                f"{_when(t.revoked_at)}"
            )
        return 0

    return run_with_platform(args, work)


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke a SCIM token: the identity provider using it is refused from now on."""

    async def work(p: Services) -> int:
        token = await _tokens(p).revoke(cli_caller(), args.organisation, args.name)
        print(f"SCIM token {token.name!r} of organisation {token.organisation_id} revoked")
        return 0

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
    """Register ``scim token create|list|revoke``."""
    scim = sub.add_parser("scim", help="SCIM 2.0 provisioning", description=__doc__)
    ssub = scim.add_subparsers(dest="scim_command", required=True, metavar="SUBJECT")
    token = ssub.add_parser("token", help="SCIM bearer tokens", description=__doc__)
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = _command(tsub, with_data_dir, "create", cmd_create)
    create.add_argument("organisation", type=int, metavar="ORG", help="organisation id")
    create.add_argument("name", help="a name for the identity provider (unique in ORG)")
    create.add_argument(
        "--no-invite",
        action="store_true",
        help="users it creates without a password get no invitation e-mail",
    )
    ls = _command(tsub, with_data_dir, "list", cmd_list)
    ls.add_argument("organisation", type=int, nargs="?", metavar="ORG", help="organisation id")
    revoke = _command(tsub, with_data_dir, "revoke", cmd_revoke)
    revoke.add_argument("organisation", type=int, metavar="ORG", help="organisation id")
    revoke.add_argument("name")
