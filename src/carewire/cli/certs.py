"""``carewire cert``: the XMPP certificate manager from the command line.

``show``, ``download``, ``csr``, ``upload``, ``delete`` and ``apns`` do what
the API's ``/certificates`` resources do, through the same
:class:`~carewire.security.cert_manager.CertificateManager`, and record their
changes in the audit trail as ``cli``. A running server picks up a change made
here when it restarts (a change made through the API applies at once).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from carewire.cli.runtime import Services, Subparsers, WithDataDir, config, run_with_platform
from carewire.clock import SystemClock
from carewire.errors import ValidationError
from carewire.security.audit import AuditTrail, Channel
from carewire.security.cert_manager import Caller, CertificateDetails, CertificateManager

CLI = Caller(actor="cli", channel=Channel.CLI)
RESTART_NOTE = "a running server uses it for new connections once restarted"


def _manager(args: argparse.Namespace, audit: AuditTrail | None = None) -> CertificateManager:
    """The installation's certificate manager (recording in ``audit``, if given)."""
    cfg = config(args)
    return CertificateManager(
        cfg.data_dir,
        cfg.server.domain,
        SystemClock(),
        audit,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
    )


def _change(args: argparse.Namespace, work: Callable[[CertificateManager], Awaitable[int]]) -> int:
    """Run ``work`` with a manager that records in the installation's audit trail."""

    async def with_manager(platform: Services) -> int:
        return await work(_manager(args, platform.audit))

    return run_with_platform(args, with_manager)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read ({exc.strerror})") from None


def _emit(text: str, output: str | None, what: str) -> None:
    if output:
        Path(output).write_text(text, encoding="ascii")
        print(f"{what} written to {output}")
    else:
        sys.stdout.write(text)


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _print_details(d: CertificateDetails) -> None:
    print(f"Domain:       {d.domain}")
    print(f"Status:       {d.status.value}")
    print(f"Subject:      {d.subject}")
    print(f"Issuer:       {d.issuer}")
    print(f"Valid from:   {_when(d.not_before)}")
    print(f"Expires:      {_when(d.not_after)}")
    print(f"Self-signed:  {'yes' if d.is_self_signed else 'no'}")
    print(f"Names:        {', '.join(d.names) or '-'}")
    print(f"SHA-256:      {d.fingerprint}")


def cmd_cert_show(args: argparse.Namespace) -> int:
    """Show the XMPP certificate, the CSR in progress and the push certificates."""
    m = _manager(args)
    _print_details(m.details())
    csr = m.csr_details()
    if csr is None:
        print("CSR:          No CSR in progress")
    else:
        print(
            f"CSR:          {csr.country}, {csr.state}, {csr.city}, {csr.organization}, "
            f"{csr.unit} (created {_when(csr.created_at)})"
        )
    for a in m.apns_details():
        kind = "production" if a.is_production else "development"
        print(f"Push ({a.slot}): {a.subject}, {kind}, expires {_when(a.not_after)}")
    return 0


def cmd_cert_download(args: argparse.Namespace) -> int:
    """Write the certificate chain (PEM) to a file or standard output."""
    _emit(_manager(args).download(), args.output, "certificate")
    return 0


def cmd_cert_csr(args: argparse.Namespace) -> int:
    """Create a new key and CSR for the chat domain (overwrites any CSR in progress)."""

    async def work(m: CertificateManager) -> int:
        pem = await m.create_csr(
            country=args.country or "",
            city=args.city or "",
            state=args.state or "",
            organization=args.organization or "",
            unit=args.unit or "",
            by=CLI,
        )
        _emit(pem, args.output, "CSR")
        return 0

    return _change(args, work)


def cmd_cert_upload(args: argparse.Namespace) -> int:
    """Install a certificate chain: leaf first, intermediates in order, optional key last."""
    text = _read(args.file)

    async def work(m: CertificateManager) -> int:
        d = await m.upload(text, is_federating=args.federating, by=CLI)
        print(f"certificate installed: {d.subject}, issued by {d.issuer}")
        print(f"expires {_when(d.not_after)}")
        print(RESTART_NOTE)
        return 0

    return _change(args, work)


def cmd_cert_delete(args: argparse.Namespace) -> int:
    """Delete the certificate and key; a new self-signed certificate replaces them."""
    if not args.yes:
        raise ValidationError("deleting the certificate needs --yes")

    async def work(m: CertificateManager) -> int:
        d = await m.delete(by=CLI)
        print(f"certificate deleted; a new self-signed one expires {_when(d.not_after)}")
        print(RESTART_NOTE)
        return 0

    return _change(args, work)


def cmd_cert_apns(args: argparse.Namespace) -> int:
    """Store a push certificate (PKCS#12); the password only opens it and is not kept."""
    data = _read(args.file)
    password = _read(args.password_file).decode("utf-8").rstrip("\r\n")

    async def work(m: CertificateManager) -> int:
        d = await m.upload_apns(
            data, password, is_production=args.production, is_next_gen=args.next_gen, by=CLI
        )
        print(f"push certificate ({d.slot}) stored: {d.subject}, expires {_when(d.not_after)}")
        return 0

    return _change(args, work)


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``cert`` under the top-level parser."""
    cert = sub.add_parser("cert", help="the XMPP certificate", description=__doc__)
    csub = cert.add_subparsers(dest="cert_command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sp = with_data_dir(csub.add_parser(name, help=func.__doc__, description=func.__doc__))
        sp.set_defaults(func=func)
        return sp

    command("show", cmd_cert_show)
    command("download", cmd_cert_download).add_argument(
        "-o", "--output", help="file to write (default: standard output)"
    )
    csr = command("csr", cmd_cert_csr)
    for flag, label in (
        ("--country", "two-letter country code"),
        ("--city", "city"),
        ("--state", "state or province"),
        ("--organization", "organization"),
        ("--unit", "organizational unit"),
    ):
        csr.add_argument(flag, help=f"{label} (required)")
    csr.add_argument("-o", "--output", help="file to write (default: standard output)")
    up = command("upload", cmd_cert_upload)
    up.add_argument("file", help="PEM: the certificate, intermediates in order, optional key last")
    up.add_argument(
        "--federating", action="store_true", help="also require the chat. and patients. names"
    )
    command("delete", cmd_cert_delete).add_argument(
        "--yes", action="store_true", help="confirm the deletion"
    )
    apns = command("apns", cmd_cert_apns)
    apns.add_argument("file", help="the push certificate (PKCS#12)")
    apns.add_argument("--password-file", required=True, help="file holding its password")
    apns.add_argument("--production", action="store_true", help="a production certificate")
    apns.add_argument("--next-gen", action="store_true", help="for next-generation clients")
