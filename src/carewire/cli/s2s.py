"""``carewire s2s``: federation's status, policy, partner domains and pinned certificates.

``status`` prints the policy and a table of remote domains (the streams' last
reports, partner domains, pins); ``allow DOMAIN`` / ``disallow DOMAIN`` edit
the allow-list; ``policy --certificates-only|--dialback-allowed [--open]``
sets the switch (``--open`` empties the allow-list: any domain may federate);
``pin DOMAIN FILE`` uploads the other server's certificate, ``pins [DOMAIN]``
lists them and ``unpin DOMAIN SHA256`` removes one. Changes are recorded in
the audit trail as ``cli:<OS user>``; a running server picks them up within
seconds (docs/federation-admin.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from carewire.cli.audit_trail import cli_actor
from carewire.cli.runtime import Services, Subparsers, WithDataDir, run_with_platform
from carewire.errors import CarewireError
from carewire.federation.model import PolicyRecord
from carewire.federation.peer_certificates import MAX_PEER_CERTIFICATE_BYTES
from carewire.security.audit import Channel
from carewire.security.cert_manager import Caller

_COLUMNS = "DOMAIN ALLOWED PINS DIR NODE CONNECTED AUTH TLS FINGERPRINT EXPIRES QUEUED"
_HEADER = "\t".join([*_COLUMNS.split(), "LAST ERROR"])


def _by() -> Caller:
    return Caller(actor=cli_actor(), channel=Channel.CLI)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _describe(policy: PolicyRecord) -> str:
    auth = "certificates only" if policy.certificates_only else "dialback allowed"
    if not policy.allow:
        return f"policy: open to any domain; {auth}"
    partners = ", ".join(a.domain for a in policy.allow)
    return f"policy: partner domains only ({partners}); {auth}"


def cmd_status(args: argparse.Namespace) -> int:
    """Show the policy and each remote domain's streams (from the servers' reports)."""

    async def work(p: Services) -> int:
        print(_describe(await p.federation.trust.read_policy()))
        print(_HEADER)
        for d in await p.federation.overview():
            head = f"{d.domain}\t{'yes' if d.is_allowed else 'no'}\t{d.pins}"
            if not d.streams:
                print(f"{head}\t-\t-\tno\t-\t-\t-\t-\t0\t-")
            for r in d.streams:
                s = r.status
                error = "-" if not s.last_error else f"{s.last_error} ({_when(s.last_error_at)})"
                print(
                    f"{head}\t{s.direction}\t{s.node or '-'}\t{'yes' if s.connected else 'no'}\t"
                    f"{s.auth or '-'}\t{s.tls_version or '-'}\t{s.fingerprint or '-'}\t"
                    f"{_when(s.certificate_not_after)}\t{s.queued}\t{error}"
                )
        return 0

    return run_with_platform(args, work)


def cmd_allow(args: argparse.Namespace) -> int:
    """Put a partner domain on the allow-list (only listed domains federate then)."""

    async def work(p: Services) -> int:
        domain, added = await p.federation.trust.allow(args.domain, by=_by())
        print(f"{domain} allowed" if added else f"{domain} was allowed already")
        return 0

    return run_with_platform(args, work)


def cmd_disallow(args: argparse.Namespace) -> int:
    """Take a partner domain off the allow-list (never the last one: see ``policy --open``)."""

    async def work(p: Services) -> int:
        domain = await p.federation.trust.disallow(args.domain, by=_by())
        print(f"{domain} is no longer allowed")
        return 0

    return run_with_platform(args, work)


def cmd_policy(args: argparse.Namespace) -> int:
    """Show or set the policy: certificates only or dialback allowed; --open clears the list."""

    async def work(p: Services) -> int:
        trust = p.federation.trust
        if args.certificates_only is None and not args.open:
            print(_describe(await trust.read_policy()))
            return 0
        current = trust.policy()
        certificates_only = (
            current.certificates_only if args.certificates_only is None else args.certificates_only
        )
        record = await trust.set_policy(
            certificates_only=certificates_only, allow=[] if args.open else None, by=_by()
        )
        print(_describe(record))
        return 0

    return run_with_platform(args, work)


def cmd_pin(args: argparse.Namespace) -> int:
    """Pin the other server's certificate (PEM or DER file) for DOMAIN."""
    path = Path(args.file)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PEER_CERTIFICATE_BYTES + 1)
    except OSError as exc:
        raise CarewireError(f"cannot read {path}: {exc.strerror or exc}") from None

    async def work(p: Services) -> int:
        outcome = await p.federation.trust.pin(args.domain, data, by=_by())
        pin = outcome.pin
        print(f"{pin.sha256}\t{pin.domain}\t{pin.subject}\texpires {_when(pin.not_after)}")
        for warning in outcome.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return 0

    return run_with_platform(args, work)


def cmd_pins(args: argparse.Namespace) -> int:
    """List the pinned certificates (of DOMAIN, or of every domain)."""

    async def work(p: Services) -> int:
        print("DOMAIN\tSHA256\tSUBJECT\tEXPIRES\tUPLOADED\tBY")
        for pin in await p.federation.trust.certificates(args.domain):
            print(
                f"{pin.domain}\t{pin.sha256}\t{pin.subject}\t{_when(pin.not_after)}\t"
                f"{_when(pin.uploaded_at)}\t{pin.uploaded_by}"
            )
        return 0

    return run_with_platform(args, work)


def cmd_unpin(args: argparse.Namespace) -> int:
    """Remove a pinned certificate of DOMAIN by its SHA-256 fingerprint."""

    async def work(p: Services) -> int:
        pin = await p.federation.trust.unpin(args.domain, args.sha256, by=_by())
        print(f"{pin.sha256} is no longer pinned for {pin.domain}")
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
    """Register ``s2s status|allow|disallow|policy|pin|pins|unpin``."""
    s2s = sub.add_parser("s2s", help="federation with other XMPP servers", description=__doc__)
    ssub = s2s.add_subparsers(dest="s2s_command", required=True, metavar="ACTION")
    _command(ssub, with_data_dir, "status", cmd_status)
    _command(ssub, with_data_dir, "allow", cmd_allow).add_argument("domain")
    _command(ssub, with_data_dir, "disallow", cmd_disallow).add_argument("domain")
    policy = _command(ssub, with_data_dir, "policy", cmd_policy)
    switch = policy.add_mutually_exclusive_group()
    switch.add_argument(
        "--certificates-only",
        dest="certificates_only",
        action="store_const",
        const=True,
        help="only certificate authentication (SASL EXTERNAL); never Server Dialback",
    )
    switch.add_argument(
        "--dialback-allowed",
        dest="certificates_only",
        action="store_const",
        const=False,
        help="Server Dialback for peers whose certificate does not validate",
    )
    policy.add_argument(
        "--open", action="store_true", help="empty the allow-list: any domain may federate"
    )
    pin = _command(ssub, with_data_dir, "pin", cmd_pin)
    pin.add_argument("domain")
    pin.add_argument("file", metavar="FILE.pem", help="the other server's certificate")
    _command(ssub, with_data_dir, "pins", cmd_pins).add_argument("domain", nargs="?")
    unpin = _command(ssub, with_data_dir, "unpin", cmd_unpin)
    unpin.add_argument("domain")
    unpin.add_argument("sha256", help="the SHA-256 fingerprint (hex, colons allowed)")
