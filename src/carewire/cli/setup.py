"""``carewire init`` and ``carewire serve``: create an installation, and run its server.

``init`` writes the data directory (configuration, self-signed certificate,
server secret, database) with the first administrator, ``admin``: one account
for chat (``admin@DOMAIN``) and for the web console (``admin`` or
``admin@DOMAIN``), with one password, printed once. ``carewire user passwd
admin`` and the console's Change password both change it for both. With
``--config FILE`` the configuration is that file instead (written if missing,
used as it is if an operator wrote it first), outside the data directory.
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
    Services,
    Subparsers,
    WithDataDir,
    config,
    location,
    run_with_accounts,
    run_with_platform,
)
from carewire.config import CONFIG_FILE, Config, load, render_default
from carewire.config_location import Location
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


def _external_config(at: Location, domain: str | None) -> Config:
    """The configuration kept outside the data directory: the operator's file, else a new one.

    Raises:
        ConfigError: The data directory is already initialised, ``domain`` differs from
            the file's, or the file cannot be written or is invalid.
    """
    from carewire.server import SECRET_FILE

    if (at.data_dir / SECRET_FILE).exists():
        raise ConfigError(f"{at.data_dir} is already initialised ({SECRET_FILE} exists)")
    at.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if at.config_file.exists():
        cfg = load(at.data_dir, config_file=at.config_file)
        if domain is not None and domain != cfg.server.domain:
            raise ConfigError(
                f"--domain {domain} differs from server.domain {cfg.server.domain!r} "
                f"of {at.config_file}"
            )
        return cfg
    if domain is None:
        raise ConfigError(f"{at.config_file} does not exist: give --domain to write it")
    text = render_default(domain, data_dir=at.data_dir.resolve())
    try:
        at.config_file.parent.mkdir(parents=True, exist_ok=True)
        at.config_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{at.config_file}: cannot be written: {exc.strerror or exc}") from None
    try:
        return load(at.data_dir, config_file=at.config_file)
    except ConfigError:
        at.config_file.unlink()
        raise


def _domain(args: argparse.Namespace) -> str | None:
    return None if args.domain is None else str(args.domain).strip().lower().rstrip(".")


async def _first_console_admin(p: Services, domain: str, password: str) -> bool:
    """The console's first administrator: ``admin``, the chat account's address and password.

    Its e-mail being the chat address links the two (``shares_chat_account``): a password
    set on one side is the other's too. False when the console has users already.
    """
    from carewire.security.console_auth import FIRST_ADMIN, SYSTEM, Role

    if await p.console.list_users():
        return False
    await p.console.create_user(
        FIRST_ADMIN,
        Role.SYSTEM_ADMIN,
        email=f"{FIRST_ADMIN}@{domain}",
        password=password,
        origin=SYSTEM,
    )
    return True


def cmd_init(args: argparse.Namespace) -> int:
    """Create the data directory, configuration, certificate, database and first account."""
    from carewire.core.accounts import AccountInput
    from carewire.monitoring.endpoint import ensure_token_file
    from carewire.push.settings import VAPID_KEY_FILE
    from carewire.push.vapid import ensure_vapid_key
    from carewire.security.audit_key import ENV_VAR, create_key_file, load_key
    from carewire.security.certificates import ensure_certificate
    from carewire.server import server_secret, write_secret_file

    at = location(args)
    where = at.data_dir
    if at.is_external:
        cfg = _external_config(at, _domain(args))
    else:
        if (where / CONFIG_FILE).exists():
            raise ConfigError(f"{where} is already initialised ({CONFIG_FILE} exists)")
        if args.domain is None:
            raise ConfigError("--domain is required (the chat domain, e.g. chat.hospital.example)")
        cfg = _write_config(where, str(_domain(args)))
    domain = cfg.server.domain
    kek = ConfiguredKek(key_file=cfg.kek_file, env=os.environ)
    kek_created = kek.ensure()
    key_file = cfg.audit_key_file
    is_new_key = not os.environ.get(ENV_VAR) and not key_file.exists()
    audit_key = create_key_file(key_file) if is_new_key else load_key(key_file, create=False)
    password = secrets.token_urlsafe(12)

    async def create_admin(accounts: AccountService, _audit: CliAudit) -> None:
        await accounts.create(AccountInput(login=ADMIN_LOGIN, password=password))

    run_with_accounts(args, create_admin)
    console_made = run_with_platform(args, lambda p: _first_console_admin(p, domain, password))
    # Last, after the database: the server secret marks an installation kept apart from its
    # configuration as initialised, so an init that failed on the database can be run again.
    cert = ensure_certificate(domain, cfg.cert_file, cfg.key_file)
    server_secret(where)
    metrics_token = ensure_token_file(where)  # the bearer token of /metrics (docs/monitoring.md)
    ensure_vapid_key(where / VAPID_KEY_FILE)  # Web Push's signing key (docs/push.md#web-push)
    pw_file = where / ADMIN_PASSWORD_FILE
    write_secret_file(pw_file, f"{ADMIN_LOGIN}@{domain}\n{password}\n")
    print(f"Carewire initialised in {where}/")
    if at.is_external:
        print(f"  configuration  {at.config_file}")
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
    shared = console_made
    also = f"  (chat, and the web console as {ADMIN_LOGIN})" if shared else "  (chat)"
    print(f"  administrator  {ADMIN_LOGIN}@{domain}{also}")
    print(f"  password       {password}")
    how = f"--config {at.config_file}" if at.is_external else f"--data-dir {where}"
    print(f"  web console    https://{domain}:{cfg.server.https_port}/")
    print(f"  (the password is also in {pw_file}, readable only by you: change it")
    both = "for chat and the console at once " if shared else ""
    print(f"   {both}with 'carewire user passwd {ADMIN_LOGIN} {how}',")
    print("   then delete the file)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from carewire import log
    from carewire.process import install_uvloop
    from carewire.server import run

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
    init.add_argument(
        "--domain",
        help="the chat domain, e.g. chat.hospital.example (required unless the --config file "
        "exists and names it)",
    )
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
