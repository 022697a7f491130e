"""``carewire backup`` and ``carewire restore``: encrypted online backups (docs/backup.md).

The archive is encrypted with the operator's key: ``--key-file`` (base64 of
32 random bytes, mode 0600; ``carewire keys generate`` prints one) or the
passphrase in ``$CAREWIRE_BACKUP_PASSPHRASE``. Progress goes to standard
error when it is a terminal. Both commands are recorded in the audit trail
(``backup.create`` on the backed-up installation, ``backup.restore`` on the
restored one), by identifiers only.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carewire.cli.audit_trail import record
from carewire.cli.runtime import (
    Services,
    Subparsers,
    WithDataDir,
    config,
    data_dir,
    run_with_platform,
)
from carewire.errors import ConfigError

if TYPE_CHECKING:
    from carewire.security.backup_cipher import Secret

#: The environment variable holding the backup passphrase (when no --key-file is given).
PASSPHRASE_ENV = "CAREWIRE_BACKUP_PASSPHRASE"
SUFFIX = ".cwbak"


class _Bars:
    """One progress bar per stage on standard error (none when it is not a terminal)."""

    _UNITS = {"database": "page", "archive": "B", "verify": "B", "restore": "B"}

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            for other in self._bars.values():
                other.close()
            unit = self._UNITS.get(stage, "B")
            if stage == "database" and total == 0:
                unit = "B"  # pg_dump: bytes written, total unknown
            bar = tqdm(
                desc=f"{stage:9}",
                total=total or None,
                unit=unit,
                unit_scale=unit == "B",
                file=sys.stderr,
                disable=None,  # off when standard error is not a terminal
                leave=False,
            )
            self._bars[stage] = bar
        if total and bar.total != total:
            bar.total = total
        bar.update((done if stage != "restore" else bar.n + done) - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def _secret(args: argparse.Namespace) -> Secret:
    from carewire.security.backup_cipher import Secret

    if args.key_file:
        return Secret.key_file(Path(args.key_file))
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        raise ConfigError(f"no backup key: give --key-file FILE or set ${PASSPHRASE_ENV}")
    return Secret.passphrase(passphrase)


def cmd_backup(args: argparse.Namespace) -> int:
    """Write an encrypted, consistent backup of the installation, while it may be serving.

    SQLite is copied with the online backup API, PostgreSQL with pg_dump; with
    the database go the data directory (configuration, certificates, server
    secret, uploads) and the audit checkpoints. The key-encryption key and the
    audit key stay out unless --include-keys: keep them apart from the backups.
    """
    from carewire import backup

    cfg = config(args)
    secret = _secret(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = Path(args.output or f"carewire-{cfg.server.domain}-{stamp}{SUFFIX}")
    bars = _Bars()
    try:
        done = backup.create(cfg, output, secret, include_keys=args.include_keys, progress=bars)
    finally:
        bars.close()
    database = done.manifest["database"]
    assert isinstance(database, dict)

    async def audit(p: Services) -> None:
        details = {
            "file": output.name,
            "sha256": done.sha256,
            "bytes": done.size,
            "database": database["kind"],
            "revision": database["revision"],
            "keys_included": args.include_keys,
        }
        await record(p, "backup.create", output.name, details=details)

    run_with_platform(args, audit)
    print(f"backup written to {output} ({done.size} bytes)")
    print(f"  sha256    {done.sha256}")
    print(f"  database  {database['kind']} at schema revision {database['revision']}")
    files = done.manifest["files"]
    assert isinstance(files, list)
    print(f"  files     {len(files)}")
    if args.include_keys:
        print("  keys      included: the archive alone restores everything; guard its key")
    else:
        print(f"  keys      not included: keep {cfg.kek_file} and {cfg.audit_key_file}")
        print("            (or their variables) apart from the backups; a restore needs them")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into a new or empty data directory (and a new, empty database).

    The whole archive is authenticated and checked first (wrong key, altered
    archive, a schema newer than this version, a non-empty target: nothing is
    written). With PostgreSQL, --database-url names the empty database
    pg_restore fills (default: the URL in the backed-up configuration).
    """
    from carewire import backup

    archive = Path(args.archive)
    if not archive.is_file():
        raise ConfigError(f"{archive}: no such backup file")
    target = data_dir(args)
    bars = _Bars()
    try:
        done = backup.restore(
            archive, _secret(args), target, database_url=args.database_url, progress=bars
        )
    finally:
        bars.close()
    manifest = done.manifest
    database = manifest["database"]
    assert isinstance(database, dict)

    async def audit(p: Services) -> None:
        details = {
            "file": archive.name,
            "created_at": manifest["created_at"],
            "carewire_version": manifest["carewire_version"],
            "database": database["kind"],
            "revision": database["revision"],
        }
        await record(p, "backup.restore", archive.name, details=details)

    run_with_platform(argparse.Namespace(data_dir=str(target)), audit)
    print(f"restored {archive} (taken {manifest['created_at']}) into {target}/")
    print(f"  database  {database['kind']}: {done.target.cfg.database_url}")
    print(f"  start it  carewire serve --data-dir {target}")
    return 0


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``backup`` and ``restore`` under the top-level parser."""
    key_help = f"the backup key file (else the passphrase in ${PASSPHRASE_ENV})"
    b = with_data_dir(
        sub.add_parser("backup", help="write an encrypted backup", description=cmd_backup.__doc__)
    )
    b.add_argument(
        "--output", "-o", help=f"archive to write (default carewire-DOMAIN-TIME{SUFFIX})"
    )
    b.add_argument("--key-file", help=key_help)
    b.add_argument(
        "--include-keys",
        action="store_true",
        help="put the key-encryption key and the audit key in the archive too",
    )
    b.set_defaults(func=cmd_backup)

    r = with_data_dir(
        sub.add_parser(
            "restore",
            help="restore a backup into an empty data directory",
            description=cmd_restore.__doc__,
        )
    )
    r.add_argument("archive", help="the backup file")
    r.add_argument("--key-file", help=key_help)
    r.add_argument("--database-url", help="the new, empty database to restore into")
    r.set_defaults(func=cmd_restore)
