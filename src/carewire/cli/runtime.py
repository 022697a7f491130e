"""What every ``carewire`` command stands on: its data directory, configuration and database.

A command finds its installation through ``--data-dir`` (default ``./data`` or
``$CAREWIRE_DATA_DIR``), or ``--config`` (``$CAREWIRE_CONFIG``) for a configuration
file kept apart from the data directory (:mod:`carewire.config_location`), and
reaches the installation's services only through
:func:`run_with_platform` (every service, built by the composition root
:mod:`carewire.assembly`) or :func:`run_with_accounts` (the XMPP accounts
and the audit trail, from the same assembly): this module is the one place
where the CLI opens the database.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from carewire.config import Config, load
from carewire.config_location import Location, locate
from carewire.errors import ConfigError

if TYPE_CHECKING:
    from carewire.assembly import Assembly
    from carewire.cli.audit_trail import CliAudit
    from carewire.core.accounts import AccountService
    from carewire.storage.migrate import SchemaStatus

#: What :func:`run_with_platform` hands a command: the installation's services.
Services: TypeAlias = "Assembly"
#: The ``carewire`` parser's sub-command group, on which each command group registers.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: Adds ``--data-dir`` to a sub-command's parser and returns the parser.
WithDataDir: TypeAlias = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]

T = TypeVar("T")


def add_data_dir(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give the sub-command ``sp`` the ``--data-dir`` and ``--config`` options; returns ``sp``."""
    sp.add_argument("--data-dir", help="data directory (default ./data or $CAREWIRE_DATA_DIR)")
    sp.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file kept outside the data directory, e.g. "
        "/etc/carewire/carewire.toml ($CAREWIRE_CONFIG); its data_dir names the data directory",
    )
    return sp


def location(args: argparse.Namespace) -> Location:
    """The configuration file and data directory the command line and environment name.

    Raises:
        ConfigError: ``--config`` names a file that names no data directory, and none is given.
    """
    return locate(
        config=getattr(args, "config", None),
        data_dir=getattr(args, "data_dir", None),
        env=os.environ,
    )


def data_dir(args: argparse.Namespace) -> Path:
    """The data directory: ``--data-dir``, else ``$CAREWIRE_DATA_DIR``, else the ``data_dir``
    of the ``--config`` file, else ``./data``."""
    return location(args).data_dir


def config(args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """The configuration of the installation (with ``overrides`` by section).

    Raises:
        ConfigError: The installation is not initialised, or its configuration is invalid.
    """
    where = location(args)
    if not where.config_file.exists():
        how = f"--config {where.config_file} " if where.is_external else ""
        raise ConfigError(
            f"{where.config_file} not found: "
            f"run 'carewire init {how}--data-dir {where.data_dir} --domain DOMAIN' first"
        )
    if where.is_external and not where.data_dir.is_dir():
        raise ConfigError(
            f"{where.data_dir} (the data directory {where.config_file} names) does not exist: "
            f"run 'carewire init --config {where.config_file}' first"
        )
    return load(where.data_dir, overrides=overrides, config_file=where.config_file)


def read_password(args: argparse.Namespace) -> str:
    """``--password``, else a line of standard input, else asked for twice on the terminal.

    Raises:
        ConfigError: Nothing on standard input, or the two typed passwords differ.
    """
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


def run_with_platform(
    args: argparse.Namespace,
    work: Callable[[Services], Awaitable[T]],
    *,
    with_defaults: bool = False,
    fire_rules: bool = False,
) -> T:
    """Assemble the services of ``--data-dir`` (migrating first), run ``work``, close them.

    No XMPP server runs in the CLI: the XMPP adapter's firings are handed over
    to the running server's scheduler.

    Args:
        args: The parsed command line (for ``--data-dir``).
        work: The command's body.
        with_defaults: Create the default adapters first on a new installation.
        fire_rules: Run the rule worker, and let the rules ``work``'s writes triggered
            fire before closing (deferred firings are left to the server's scheduler).

    Returns:
        What ``work`` returned.
    """
    from carewire.assembly import assemble, options_from_config

    cfg = config(args)

    async def main() -> T:
        services = await assemble(options_from_config(cfg, is_server=False))
        try:
            if with_defaults:
                await services.ensure_default_adapters(cfg.server.domain)
            if not fire_rules:
                return await work(services)
            await services.engine.start(scheduler=False)
            try:
                return await work(services)
            finally:
                await services.engine.drain()
        finally:
            await services.close()

    return asyncio.run(main())


def run_with_accounts(
    args: argparse.Namespace, work: Callable[[AccountService, CliAudit], Awaitable[T]]
) -> T:
    """Run ``work`` with the XMPP accounts of ``--data-dir`` (see :func:`run_with_platform`).

    Args:
        args: The parsed command line (for ``--data-dir``).
        work: The command's body, given the account service and the recorder of
            the CLI's acts on the installation's audit trail.

    Returns:
        What ``work`` returned.
    """
    from carewire.cli.audit_trail import CliAudit

    async def on(services: Services) -> T:
        return await work(services.accounts, CliAudit(services.audit))

    return run_with_platform(args, on)


#: Where a running server keeps its adapters' health (``carewire.server.ADAPTERS_FILE``).
ADAPTERS_STATUS = "run/adapters.json"
STATUS_MAX_AGE = 30.0


def running_status(args: argparse.Namespace) -> dict[str, object] | None:
    """The running server's ``run/adapters.json``, or None (no server, or a stale file)."""
    path = data_dir(args) / ADAPTERS_STATUS
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return None
    pid = body.get("pid") if isinstance(body, dict) else None
    if not isinstance(pid, int) or age > STATUS_MAX_AGE:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    return dict(body)


def nudge_server(args: argparse.Namespace) -> int | None:
    """Tell the running server to take up new datasets and rules now; its pid, or None.

    The server re-reads them on ``SIGHUP`` (and every few seconds regardless).
    """
    status = running_status(args)
    pid = status.get("pid") if status is not None else None
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:  # gone meanwhile, or another user's: its own poll will see them
        return None
    return pid


async def sealed_counts(services: Services) -> dict[str, tuple[int, int]]:
    """Per encrypted column: how many values are sealed and how many still plaintext."""
    from carewire.storage.reseal import count_values

    return await count_values(services.db)


def schema_status(args: argparse.Namespace) -> SchemaStatus:
    """Where the installation's schema stands against this version's migrations.

    Reads only: nothing is migrated (unlike every other way this module opens the database).
    """
    from carewire.storage import migrate

    return asyncio.run(migrate.status(config(args).database_url))


def too_new_message(current: str) -> str:
    """The line that says the database was migrated by a newer Carewire."""
    from carewire.storage import migrate

    return migrate.too_new_message(current)


def apply_migrations(
    args: argparse.Namespace, on_applied: Callable[[str | None, str, float], None]
) -> int:
    """Migrate the installation's database to this version, one revision at a time.

    Returns:
        How many revisions were applied.

    Raises:
        carewire.storage.migrate.SchemaTooNewError: The database is newer than this code.
    """
    from carewire.storage import migrate

    return asyncio.run(migrate.upgrade_each(config(args).database_url, on_applied))
