"""Where a backup is restored: an empty data directory, an empty database, the keys at hand.

:func:`prepare_target` checks everything a restore needs before the archive's
content is written (see :mod:`carewire.backup`): the data directory is new or
empty, the database is new (SQLite) or has no table (PostgreSQL), the
checkpoint directory is empty, and the key-encryption key and audit key the
backup was made with are either in the archive or already where the
restored configuration reads them. :class:`Target` then writes the members,
checking each one's SHA-256 against the manifest, and :meth:`Target.undo`
removes what it wrote if anything fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from carewire.config import CONFIG_FILE, Config, load
from carewire.errors import CarewireError
from carewire.security import audit_key, keys
from carewire.security.backup_cipher import BackupError
from carewire.storage import snapshot

_BLOCK = 1 << 16
_STAGING = ".backup-restore"


def _is_empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def with_database_url(config_text: str, url: str) -> str:
    """``carewire.toml`` with ``[storage] url`` set to ``url``."""
    line = f"url = {_toml_string(url)}"
    section = re.search(r"(?m)^\[storage\][^\n]*\n((?:(?!\[)[^\n]*\n?)*)", config_text)
    if section is None:
        return config_text.rstrip("\n") + f"\n\n[storage]\n{line}\n"
    body = section.group(1)
    if re.search(r"(?m)^\s*url\s*=", body):
        body = re.sub(r"(?m)^\s*url\s*=[^\n]*", lambda _m: line, body, count=1)
    else:
        body = line + "\n" + body
    return config_text[: section.start(1)] + body + config_text[section.end(1) :]


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(slots=True, kw_only=True)
class Target:
    """An installation being restored: where each archive member goes.

    Attributes:
        cfg: The restored configuration.
        write_keys: The key files the archive's keys are written to (those not in place).
    """

    cfg: Config
    write_keys: dict[str, Path]
    made: list[Path] = field(default_factory=list)
    dump: Path | None = None

    def _path(self, name: str) -> Path | None:
        prefix, _, rest = name.partition("/")
        if prefix == "data":
            return None if rest == CONFIG_FILE else self.cfg.data_dir / rest
        if prefix == "audit":
            return self.cfg.audit_checkpoint_dir / rest
        if prefix == "keys":
            return self.write_keys.get(name)
        if prefix == "database" and rest == "carewire.db":
            return snapshot.sqlite_path(self.cfg.database_url)
        if prefix == "database" and rest == "carewire.dump":
            self.dump = self.cfg.data_dir / _STAGING / rest
            return self.dump
        raise BackupError(f"unexpected archive member {name!r}", code="tampered")

    def write(self, name: str, body: IO[bytes], manifest: dict[str, object]) -> None:
        """Write the member ``name``, checking it against the manifest."""
        dest = self._path(name)
        if dest is None:
            return
        self._mkdirs(dest.parent)
        digest = hashlib.sha256()
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.made.append(dest)
        with os.fdopen(fd, "wb") as out:
            while block := body.read(_BLOCK):
                digest.update(block)
                out.write(block)
        listed = {f["path"]: f["sha256"] for f in manifest["files"]}  # type: ignore[attr-defined]
        if listed.get(name) != digest.hexdigest():
            raise BackupError(f"{name} changed since the archive was checked", code="tampered")

    def _mkdirs(self, where: Path) -> None:
        missing = []
        while not where.exists():
            missing.append(where)
            where = where.parent
        for d in reversed(missing):
            d.mkdir(mode=0o700)
            self.made.append(d)

    def finish(self) -> None:
        """Load the PostgreSQL dump (one transaction), and drop the scratch files."""
        if self.dump is not None:
            tool = snapshot.pg_tool("pg_restore")
            snapshot.restore_postgres(tool, self.dump, self.cfg.database_url)
        shutil.rmtree(self.cfg.data_dir / _STAGING, ignore_errors=True)

    def undo(self) -> None:
        """Remove every file and directory written (newest first)."""
        for path in reversed(self.made):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        self.made.clear()


def prepare_target(
    data_dir: Path, config_text: str, manifest: dict[str, object], *, database_url: str | None
) -> Target:
    """Check the target of a restore and write its configuration.

    Raises:
        BackupError: The data directory or database is not empty, the keys are missing, or
            a PostgreSQL client is too old; nothing is left written then.
    """
    if not _is_empty_dir(data_dir):
        raise BackupError(
            f"{data_dir} is not empty: restore into a new or empty data directory",
            code="not-empty",
        )
    if database_url is not None:
        config_text = with_database_url(config_text, database_url)
    target = Target(cfg=_bare_config(data_dir), write_keys={})
    target._mkdirs(data_dir.resolve())
    try:
        (data_dir / CONFIG_FILE).write_text(config_text, encoding="utf-8")
        os.chmod(data_dir / CONFIG_FILE, 0o600)
        target.made.append(data_dir / CONFIG_FILE)
        target.cfg = load(data_dir)
        _check_database(target.cfg, manifest)
        if not _is_empty_dir(target.cfg.audit_checkpoint_dir):
            raise BackupError(
                f"{target.cfg.audit_checkpoint_dir} is not empty: the restored audit"
                " checkpoints go there",
                code="not-empty",
            )
        target.write_keys = _check_keys(target.cfg, manifest)
    except BaseException:
        target.undo()
        raise
    return target


def _bare_config(data_dir: Path) -> Config:
    return Config(data_dir=data_dir.resolve())


def _check_database(cfg: Config, manifest: dict[str, object]) -> None:
    database = manifest["database"]
    assert isinstance(database, dict)
    url = cfg.database_url
    kind = snapshot.kind(url)
    if kind != database["kind"]:
        raise BackupError(
            f"the backup holds a {database['kind']} database but the restored configuration"
            f" names {kind}: give --database-url",
            code="wrong-database",
        )
    if kind == "sqlite":
        path = snapshot.sqlite_path(url)
        if path.exists():
            raise BackupError(f"{path} exists: restore into a new database", code="not-empty")
        return
    if not asyncio.run(snapshot.is_empty(url)):
        raise BackupError(
            "the PostgreSQL database has tables already: restore into a new, empty database"
            " (createdb NAME)",
            code="not-empty",
        )
    tool = snapshot.pg_tool("pg_restore")
    needed = int(database.get("pg_dump_major") or 0)
    if snapshot.tool_major(tool) < needed:
        raise BackupError(
            f"{tool} is older than the pg_dump {needed} that wrote the backup: install the"
            f" PostgreSQL {needed} client programs",
            code="old-client",
        )


def _check_keys(cfg: Config, manifest: dict[str, object]) -> dict[str, Path]:
    """Which key files to write from the archive; refuses when a needed key is missing."""
    info = manifest["keys"]
    assert isinstance(info, dict)
    wanted_keks, wanted_audit = set(info["kek_ids"]), info["audit_key_id"]
    to_write: dict[str, Path] = {}
    kek = keys.ConfiguredKek(key_file=cfg.kek_file, env=os.environ)
    if kek.is_env or cfg.kek_file.exists() or not info["included"]:
        held = _kek_ids(kek)
        if not wanted_keks <= held:
            raise BackupError(
                f"the backup's data keys are wrapped by {', '.join(sorted(wanted_keks))}, which"
                f" {kek.name} does not hold: put the key-encryption key kept apart from the"
                " backups there first (or restore a backup made with --include-keys)",
                code="missing-key",
            )
    else:
        to_write["keys/kek"] = cfg.kek_file
    if os.environ.get(audit_key.ENV_VAR) or cfg.audit_key_file.exists() or not info["included"]:
        try:
            held_audit = audit_key.load_key(cfg.audit_key_file, create=False).key_id
        except CarewireError:
            held_audit = None
        if held_audit != wanted_audit:
            raise BackupError(
                f"the backup's audit trail is authenticated by audit key {wanted_audit}, not"
                f" found at {cfg.audit_key_file} (or ${audit_key.ENV_VAR}): put it there first"
                " (or restore a backup made with --include-keys)",
                code="missing-key",
            )
    else:
        to_write["keys/audit.key"] = cfg.audit_key_file
    return to_write


def _kek_ids(kek: keys.ConfiguredKek) -> set[str]:
    try:
        return {k.kek_id for k in kek.load()}
    except (CarewireError, OSError):
        return set()
