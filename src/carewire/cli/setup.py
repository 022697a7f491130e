"""``carewire init`` and ``carewire serve``: create an installation, and run its server.

``init`` writes the data directory (configuration, self-signed certificate,
server secret, database) with the first XMPP administrator and the web
console's first administrator, and prints their one-time passwords.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carewire.cli.runtime import (
    Subparsers,
    WithDataDir,
    config,
    data_dir,
    run_with_accounts,
    run_with_platform,
)
from carewire.config import CONFIG_FILE, Config, load, render_default
from carewire.errors import ConfigError
from carewire.security.keys import ConfiguredKek

if TYPE_CHECKING:
    from carewire.cli.audit_trail import CliAudit
    from carewire.core.accounts import AccountService

ADMIN_LOGIN = "admin"
ADMIN_PASSWORD_FILE = "initial-admin-password.txt"


def _write_config(where: Path, domain: str) -> Config:
    """Create the data directory with the default configuration for ``domain``.

    Raises:
        ConfigError: The configuration is invalid for ``domain`` (no file is left behind).
    """
    where.mkdir(parents=True, exist_ok=True)
    os.chmod(where, 0o700)
    (where / CONFIG_FILE).write_text(render_default(domain), encoding="utf-8")
    try:
        return load(where)
    except ConfigError:
        (where / CONFIG_FILE).unlink()
        raise


def cmd_init(args: argparse.Namespace) -> int:
    """Create the data directory, configuration, certificate, database and first account."""
    from carewire.core.accounts import AccountInput
    from carewire.monitoring.endpoint import ensure_token_file
    from carewire.security.audit_key import ENV_VAR, create_key_file, load_key
    from carewire.security.certificates import ensure_certificate
    from carewire.server import CONSOLE_PASSWORD_FILE, server_secret, write_secret_file

    where = data_dir(args)
    if (where / CONFIG_FILE).exists():
        raise ConfigError(f"{where} is already initialised ({CONFIG_FILE} exists)")
    domain = args.domain.strip().lower().rstrip(".")
    cfg = _write_config(where, domain)
    kek = ConfiguredKek(key_file=cfg.kek_file, env=os.environ)
    kek_created = kek.ensure()
    cert = ensure_certificate(domain, cfg.cert_file, cfg.key_file)
    server_secret(where)
    metrics_token = ensure_token_file(where)  # the bearer token of /metrics (docs/monitoring.md)
    key_file = cfg.audit_key_file
    is_new_key = not os.environ.get(ENV_VAR) and not key_file.exists()
    audit_key = create_key_file(key_file) if is_new_key else load_key(key_file, create=False)
    password = secrets.token_urlsafe(12)

    async def create_admin(accounts: AccountService, _audit: CliAudit) -> None:
        await accounts.create(AccountInput(login=ADMIN_LOGIN, password=password))

    run_with_accounts(args, create_admin)
    console_password = run_with_platform(args, lambda p: p.console.ensure_first_admin(domain))
    pw_file = where / ADMIN_PASSWORD_FILE
    write_secret_file(pw_file, f"{ADMIN_LOGIN}@{domain}\n{password}\n")
    print(f"Carewire initialised in {where}/")
    print(f"  chat domain    {domain}  (rooms: chat.{domain})")
    print(f"  certificate    {cfg.cert_file} (self-signed, until {cert.not_after:%Y-%m-%d})")
    print(f"  database       {cfg.database_url}")
    where_key = f"${ENV_VAR}" if os.environ.get(ENV_VAR) else str(cfg.audit_key_file)
    print(f"  audit key      {audit_key.key_id} in {where_key}")
    print("                 (back it up apart from the database: it authenticates the audit trail)")
    if kek_created:
        print(f"  encryption key {cfg.kek_file}")
        print("                 (back it up apart from the data: without it the data is lost)")
    else:
        print(f"  encryption key {kek.name}")
    print(f"  metrics token  {metrics_token}  (Prometheus: GET /metrics with it as bearer)")
    print(f"  administrator  {ADMIN_LOGIN}@{domain}")
    print(f"  password       {password}")
    print(f"  (also in {pw_file}, readable only by you: change it with")
    print(f"   'carewire user passwd {ADMIN_LOGIN} --data-dir {where}' and delete the file)")
    if console_password is not None:
        console_file = where / CONSOLE_PASSWORD_FILE
        write_secret_file(console_file, f"admin\n{console_password}\n")
        print(f"  web console    https://{domain}:{cfg.server.https_port}/  user admin")
        print(f"  console pw     {console_password}  (one-time: a new one is asked at first")
        print(f"                 sign-in; also in {console_file})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from carewire import log
    from carewire.server import install_uvloop, run

    overrides: dict[str, Any] = {}
    for flag in ("bind", "c2s_port", "c2s_tls_port", "s2s_port", "https_port"):
        value = getattr(args, flag)
        if value is not None:
            overrides[flag] = value
    cfg = config(args, {"server": overrides} if overrides else None)
    log.setup(args.log_level or cfg.log.level, cfg.log.format)
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(cfg))
    return 0


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``init`` and ``serve`` under the top-level parser."""
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
