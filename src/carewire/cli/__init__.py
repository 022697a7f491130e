"""The ``carewire`` command: its entry point and the table of command groups.

Each command group is a module of this package whose ``register(sub,
with_data_dir)`` adds its sub-commands (each setting ``func``) to the
top-level parser; :func:`build_parser` registers every group of
:data:`COMMANDS`. The groups share :mod:`carewire.cli.runtime` (the data
directory, its configuration, and the one place the CLI opens the database)
and :mod:`carewire.cli.audit_trail` (the CLI's own audit records); they never
import each other or this package.

Every command takes ``--data-dir`` (default ``./data`` or ``CAREWIRE_DATA_DIR``).
Errors print one clear line to stderr and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from carewire import __version__
from carewire.cli import (
    assignments,
    audit,
    backup,
    certs,
    console,
    coverage,
    data,
    demo,
    directory,
    groups,
    health,
    keys,
    org,
    purge,
    rules,
    s2s,
    schema,
    scim,
    setup,
    users,
)
from carewire.cli.runtime import Subparsers, WithDataDir, add_data_dir
from carewire.errors import CarewireError
from carewire.security.filemodes import restrict_umask


class CommandGroup(Protocol):
    """A module of commands, registering them on the ``carewire`` parser."""

    def register(self, sub: Subparsers, with_data_dir: WithDataDir) -> None:
        """Add the group's commands to ``sub``, each with ``--data-dir`` where it applies."""


#: The command groups, in the order ``carewire --help`` lists their commands.
COMMANDS: tuple[CommandGroup, ...] = (
    setup,
    health,
    schema,
    demo,
    users,
    org,
    groups,
    directory,
    scim,
    data,
    assignments,
    rules,
    certs,
    s2s,
    audit,
    keys,
    purge,
    coverage,
    console,
    backup,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``--help`` everywhere)."""
    p = argparse.ArgumentParser(
        prog="carewire", description="Carewire clinical communication server."
    )
    p.add_argument("--version", action="version", version=f"carewire {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMANDS:
        group.register(sub, add_data_dir)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``carewire`` command."""
    args = build_parser().parse_args(argv)
    restrict_umask()  # every file a command writes is the owner's alone (0600 / 0700)
    try:
        return int(args.func(args))
    except CarewireError as exc:
        print(f"error: {exc.message or exc}", file=sys.stderr)
        return 2
