"""Backups of a whole installation, and restoring one into an empty place (docs/backup.md).

Theory of operation. An archive (:mod:`carewire.security.backup_cipher` outside)
holds a gzip'd tar stream of:

- ``audit/…``: the signed audit checkpoints, copied *before* the database so
  none of them names an entry the copy lacks;
- ``database/carewire.db`` (SQLite, the online backup API) or
  ``database/carewire.dump`` (``pg_dump`` custom format);
- ``data/…``: the data directory: ``carewire.toml``, certificates and their
  keys, the server secret, uploads (their content is encrypted already); not
  ``run/``, the live database files or the one-time password files;
- ``keys/kek`` and ``keys/audit.key`` only with ``include_keys``: the
  key-encryption key and the audit key live outside the data directory so a
  copy of the data does not carry them; by default the manifest only names
  them (their ids) and a restore checks the restored installation can read them;
- ``manifest.json`` last: versions, schema revision, database kind, time, and
  every other member's size and SHA-256.

A restore reads the archive twice: the first pass authenticates all of it and
checks the manifest, the schema revision and the target (empty data directory,
empty database, the keys at hand) and writes nothing; the second writes. If
the second fails, what it wrote is removed again.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

from carewire import __version__
from carewire.backup_target import Target, prepare_target
from carewire.config import CONFIG_FILE, Config
from carewire.security import audit_key, keys
from carewire.security.backup_cipher import ArchiveReader, ArchiveWriter, BackupError, Secret
from carewire.storage import migrate, snapshot

#: The manifest's format (a newer one is refused with the version that wrote it named).
FORMAT = 1
MANIFEST = "manifest.json"
#: What a backup leaves out of the data directory: live state and one-time secrets.
EXCLUDED_DIRS = frozenset({"run"})
EXCLUDED_FILES = frozenset(
    {"initial-admin-password.txt", "initial-console-password.txt", "serve.log"}
)
STAGING_PREFIX = ".backup-"
_BLOCK = 1 << 16

#: Progress of a stage: (stage, done, total); total 0 when unknown.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupResult:
    """What :func:`create` wrote: the archive, its SHA-256 and size, and its manifest."""

    path: Path
    sha256: str
    size: int
    manifest: dict[str, object]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _data_files(cfg: Config, database: Path | None) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every data-directory file a backup holds."""
    live: set[Path] = set()
    if database is not None:  # the live database files are copied by the backup API instead
        live = {database.with_name(database.name + s) for s in ("", "-wal", "-shm", "-journal")}
    for root, dirs, files in os.walk(cfg.data_dir):
        here = Path(root)
        rel = here.relative_to(cfg.data_dir)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(STAGING_PREFIX) and not (rel == Path() and d in EXCLUDED_DIRS)
        )
        for name in sorted(files):
            path = here / name
            if (rel == Path() and name in EXCLUDED_FILES) or path.resolve() in live:
                continue
            if path.is_file() and not path.is_symlink():
                yield f"data/{(rel / name).as_posix()}", path


def _key_members(cfg: Config) -> dict[str, bytes]:
    """The KEK and audit key as files, for an archive that carries them."""
    env = os.environ
    kek_text = (
        "".join(f"{k.strip()}\n" for k in env[keys.KEK_ENV].split(",") if k.strip())
        if env.get(keys.KEK_ENV, "").strip()
        else cfg.kek_file.read_text(encoding="ascii")
    )
    audit_text = (
        env[audit_key.ENV_VAR] + "\n"
        if env.get(audit_key.ENV_VAR)
        else cfg.audit_key_file.read_text(encoding="ascii")
    )
    return {"keys/kek": kek_text.encode("ascii"), "keys/audit.key": audit_text.encode("ascii")}


def key_ids(cfg: Config) -> dict[str, object]:
    """The ids (never the keys) of the KEKs and the audit key this installation uses."""
    source = keys.ConfiguredKek(key_file=cfg.kek_file, env=os.environ)
    return {
        "kek_ids": [k.kek_id for k in source.load()],
        "audit_key_id": audit_key.load_key(cfg.audit_key_file, create=False).key_id,
    }


@contextmanager
def _staging(cfg: Config) -> Iterator[Path]:
    """A private scratch directory inside the data directory (0700, removed afterwards)."""
    where = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=cfg.data_dir))
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _snapshot_database(
    cfg: Config, into: Path, progress: Progress
) -> tuple[Path, dict[str, object]]:
    url = cfg.database_url
    kind = snapshot.kind(url)
    if kind == "sqlite":
        dest = into / "carewire.db"
        snapshot.copy_sqlite(
            snapshot.sqlite_path(url), dest, lambda d, t: progress("database", d, t)
        )
        return dest, {"kind": kind, "revision": snapshot.sqlite_revision(dest)}
    tool = snapshot.pg_tool("pg_dump")
    major = asyncio.run(snapshot.check_tool(tool, url))
    revision = asyncio.run(migrate.current(url))
    dest = into / "carewire.dump"
    snapshot.dump_postgres(tool, url, dest, lambda d, t: progress("database", d, t))
    return dest, {"kind": kind, "revision": revision, "pg_dump_major": major}


def create(
    cfg: Config,
    output: Path,
    secret: Secret,
    *,
    include_keys: bool = False,
    progress: Progress = lambda *_: None,
) -> BackupResult:
    """Write an encrypted backup of the installation ``cfg`` to ``output`` (a new file).

    Raises:
        BackupError: ``output`` exists.
        carewire.storage.snapshot.SnapshotError: The database could not be copied.
    """
    if output.exists():
        raise BackupError(f"{output} exists already; choose a new file", code="exists")
    if not output.parent.is_dir():
        raise BackupError(f"{output.parent}: no such directory", code="no-directory")
    ids = key_ids(cfg)  # fails early when the keys cannot be read
    members: list[tuple[str, Path]] = []
    with _staging(cfg) as staging:
        checkpoints = staging / "audit"
        if cfg.audit_checkpoint_dir.is_dir():
            shutil.copytree(cfg.audit_checkpoint_dir, checkpoints)
            members += [
                (f"audit/{p.relative_to(checkpoints).as_posix()}", p)
                for p in sorted(checkpoints.rglob("*"))
                if p.is_file()
            ]
        db_file, database = _snapshot_database(cfg, staging, progress)
        members.append((f"database/{db_file.name}", db_file))
        live = snapshot.sqlite_path(cfg.database_url) if database["kind"] == "sqlite" else None
        members += list(_data_files(cfg, live))
        extra = _key_members(cfg) if include_keys else {}
        manifest: dict[str, object] = {
            "format": FORMAT,
            "carewire_version": __version__,
            "sqlite_version": sqlite3.sqlite_version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "domain": cfg.server.domain,
            "database": database,
            "keys": {"included": include_keys, **ids},
        }
        part = output.with_name(output.name + ".part")
        part.unlink(missing_ok=True)  # left by an interrupted backup
        try:
            sha, files = _write(part, secret, members, extra, manifest, progress)
            os.replace(part, output)
        finally:
            part.unlink(missing_ok=True)
    manifest["files"] = files
    return BackupResult(path=output, sha256=sha, size=output.stat().st_size, manifest=manifest)


def _write(
    part: Path,
    secret: Secret,
    members: list[tuple[str, Path]],
    extra: dict[str, bytes],
    manifest: dict[str, object],
    progress: Progress,
) -> tuple[str, list[dict[str, object]]]:
    total = sum(p.stat().st_size for _, p in members) + sum(map(len, extra.values()))
    done = 0
    files: list[dict[str, object]] = []
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackupError(f"{part}: cannot create ({exc.strerror})", code="cannot-write") from None
    with os.fdopen(fd, "wb") as out:
        writer = ArchiveWriter(out, secret)
        with (
            gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0) as zipped,  # type: ignore[arg-type]
            tarfile.open(fileobj=zipped, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, path in members:
                with path.open("rb") as f:
                    info = tar.gettarinfo(fileobj=f, arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    hashing = _Hashing(f, _reporter(progress, done, total))
                    tar.addfile(info, hashing)
                done += info.size
                files.append({"path": name, "size": info.size, "sha256": hashing.hexdigest()})
            for name, body in extra.items():
                _add_bytes(tar, name, body)
                done += len(body)
                files.append(
                    {"path": name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
                )
            progress("archive", done, total)
            _add_bytes(tar, MANIFEST, json.dumps({**manifest, "files": files}, indent=2).encode())
        writer.close()
        out.flush()
        os.fsync(out.fileno())
    return writer.sha256, files


def _reporter(progress: Progress, base: int, total: int) -> Callable[[int], None]:
    """Reports the archive stage at ``base`` plus what one member has read."""

    def report(read: int) -> None:
        progress("archive", base + read, total)

    return report


def _add_bytes(tar: tarfile.TarFile, name: str, body: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode = len(body), 0o600
    tar.addfile(info, io.BytesIO(body))


class _Hashing:
    """Reads through ``f``, hashing what passes and reporting how much did."""

    def __init__(self, f: IO[bytes], report: Callable[[int], None]) -> None:
        self._f, self._report = f, report
        self._digest = hashlib.sha256()
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._digest.update(data)
        self._read += len(data)
        self._report(self._read)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


# ---------------------------------------------------------------------------------- restore


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreResult:
    """What :func:`restore` did."""

    manifest: dict[str, object]
    target: Target


def _members(source: BinaryIO, secret: Secret) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    reader = ArchiveReader(source, secret)
    try:
        with (
            gzip.GzipFile(fileobj=reader, mode="rb") as unzipped,  # type: ignore[call-overload]
            tarfile.open(fileobj=unzipped, mode="r|") as tar,
        ):
            for info in tar:
                if not info.isfile() or info.name.startswith("/") or ".." in info.name.split("/"):
                    raise BackupError(f"unexpected archive member {info.name!r}", code="tampered")
                body = tar.extractfile(info)
                assert body is not None
                yield info, body
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise BackupError(f"the archive's content is damaged ({exc})", code="tampered") from None


def inspect(
    archive: Path, secret: Secret, progress: Progress = lambda *_: None
) -> dict[str, object]:
    """Authenticate all of ``archive`` and check its manifest; returns it. Writes nothing.

    Raises:
        BackupError: Wrong key, damaged or altered archive, or a manifest that does not match.
    """
    seen: dict[str, tuple[int, str]] = {}
    manifest: dict[str, object] | None = None
    total = archive.stat().st_size
    with archive.open("rb") as source:
        for info, body in _members(source, secret):
            if info.name == MANIFEST:
                try:
                    manifest = json.loads(body.read())
                except ValueError:
                    raise BackupError(
                        "the archive's manifest is unreadable", code="tampered"
                    ) from None
                continue
            digest = hashlib.sha256()
            while block := body.read(_BLOCK):
                digest.update(block)
                progress("verify", source.tell(), total)
            seen[info.name] = (info.size, digest.hexdigest())
    if manifest is None:
        raise BackupError("the archive has no manifest", code="tampered")
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"backup format {manifest.get('format')} (written by Carewire"
            f" {manifest.get('carewire_version')}) is not supported by {__version__}",
            code="unsupported-version",
        )
    listed = {f["path"]: (f["size"], f["sha256"]) for f in manifest["files"]}  # type: ignore[attr-defined]
    if listed != seen:
        raise BackupError("the archive's files do not match its manifest", code="tampered")
    return manifest


def restore(
    archive: Path,
    secret: Secret,
    data_dir: Path,
    *,
    database_url: str | None = None,
    progress: Progress = lambda *_: None,
) -> RestoreResult:
    """Restore ``archive`` into the empty (or new) ``data_dir`` (and empty database).

    Raises:
        BackupError: Wrong key, altered archive, a newer schema than this code, or a target
            that is not empty; nothing is written then.
    """
    manifest = inspect(archive, secret, progress)
    database = manifest["database"]
    assert isinstance(database, dict)
    revision = database.get("revision")
    if revision is not None and not migrate.is_known(str(revision)):
        raise BackupError(
            f"the backup's database schema is at revision {revision}, newer than Carewire"
            f" {__version__} knows: restore it with Carewire {manifest.get('carewire_version')}"
            " or newer",
            code="schema-too-new",
        )
    target = prepare_target(
        data_dir, _config_text(archive, secret), manifest, database_url=database_url
    )
    written: set[str] = set()
    try:
        with archive.open("rb") as source:
            for info, body in _members(source, secret):
                if info.name != MANIFEST:
                    target.write(info.name, body, manifest)
                    written.add(info.name)
                    progress("restore", info.size, 0)
        if written != {f["path"] for f in manifest["files"]}:  # type: ignore[attr-defined]
            raise BackupError("the archive changed since it was checked", code="tampered")
        target.finish()
    except BaseException:
        target.undo()
        raise
    return RestoreResult(manifest=manifest, target=target)


def _config_text(archive: Path, secret: Secret) -> str:
    """The backed-up ``carewire.toml``."""
    with archive.open("rb") as source:
        for info, body in _members(source, secret):
            if info.name == f"data/{CONFIG_FILE}":
                return body.read().decode("utf-8")
    raise BackupError(f"the archive holds no {CONFIG_FILE}", code="tampered")
