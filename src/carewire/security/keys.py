"""Where the key-encryption key comes from: a key file outside the data directory, or the env.

A key file holds one or more base64 keys, one a line (``#`` comments
allowed); the first is the current KEK, the others are older ones still
accepted for unwrapping (a rotation writes the new key first and keeps the
old one until every stored key is re-wrapped). The file must be mode 0600
(or stricter) and its directory 0700; Carewire refuses a key file others
can read. The environment variable :data:`KEK_ENV` holds the same keys
separated by commas and wins over the file.

The default file is ``<data dir>-keys/kek`` beside the data directory (for
``/var/lib/carewire/data``: ``/var/lib/carewire/data-keys/kek``), so a copy
of the data directory does not carry its key. Losing it loses the data.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from carewire.security.envelope import EncryptionError, LocalKek, generate_key

log = logging.getLogger(__name__)

#: The environment variable holding the KEK (base64; older ones after commas).
KEK_ENV = "CAREWIRE_KEK"
#: The key file's name in its directory.
KEY_FILE_NAME = "kek"


def encode_key(key: bytes) -> str:
    """A key as the key file and :data:`KEK_ENV` write it (base64)."""
    return base64.b64encode(key).decode("ascii")


def parse_keys(text: str, source: str) -> list[LocalKek]:
    """The KEKs in a key file's text or the variable's value (current first).

    Raises:
        EncryptionError: No key, or one that is not base64 of 32 bytes (``malformed``);
            the message names ``source`` but never shows a key.
    """
    keks = []
    for n, raw in enumerate(parse_raw_keys(text, source), start=1):
        try:
            keks.append(LocalKek(raw))
        except EncryptionError as exc:
            raise EncryptionError(f"{source}: key {n}: {exc.message}", code="malformed") from None
    return keks


def parse_raw_keys(text: str, source: str) -> list[bytes]:
    """The keys' bytes in a key file's text or the variable's value (see :func:`parse_keys`)."""
    items = [
        item.strip()
        for line in text.splitlines()
        for item in line.split("#", 1)[0].split(",")
        if item.strip()
    ]
    if not items:
        raise EncryptionError(f"{source}: holds no key", code="malformed")
    out = []
    for n, item in enumerate(items, start=1):
        try:
            out.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise EncryptionError(f"{source}: key {n} is not base64", code="malformed") from None
    return out


def read_key_file(path: Path) -> list[bytes]:
    """The keys of a key file, current first (for a rotation, which rewrites the file).

    Raises:
        EncryptionError: The file others may read, or a malformed one.
    """
    check_private(path)
    return parse_raw_keys(path.read_text(encoding="ascii"), str(path))


def check_private(path: Path) -> None:
    """Refuse a key file (or its directory) that group or others may read or write.

    Raises:
        EncryptionError: The mode lets others in (``insecure-key-file``).
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise EncryptionError(
            f"{path}: mode {mode:04o} lets others read the key; run chmod 600 {path}",
            code="insecure-key-file",
        )


def write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Write ``keys`` (current first) to ``path`` atomically, mode 0600, directory 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    body = (
        "# Carewire key-encryption key: back this file up apart from the data.\n"
        "# Without it the encrypted data cannot be read. First line: current key.\n"
        + "".join(encode_key(k) + "\n" for k in keys)
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def create_key_file(path: Path) -> bool:
    """Create a key file with a fresh KEK unless one exists; True if it was created."""
    if path.exists():
        return False
    write_key_file(path, [generate_key()])
    log.info("created the key-encryption key file %s", path)
    return True


class KekSource(Protocol):
    """Where KEKs are read from (re-read on demand: a rotation changes them)."""

    @property
    def name(self) -> str:
        """What to call the source in messages (never the key)."""
        ...

    def load(self) -> list[LocalKek]:
        """The KEKs, current first.

        Raises:
            EncryptionError: None can be read.
        """
        ...

    def ensure(self) -> bool:
        """Make a KEK where none exists yet (a new installation); True if one was made."""
        ...


#: One random KEK per process, for :class:`ProcessKek`.
_PROCESS_KEY = generate_key()


class ProcessKek:
    """A KEK that lives only in this process's memory (tests, throw-away databases).

    Every :class:`ProcessKek` of one process is the same key, so a test may
    reopen its database; nothing it encrypted can be read by another process.
    """

    name = "a per-process key (nothing survives this process)"

    def load(self) -> list[LocalKek]:
        """The process's one KEK."""
        return [LocalKek(_PROCESS_KEY)]

    def ensure(self) -> bool:
        """Nothing to make: the key exists as long as the process."""
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfiguredKek:
    """The KEK an installation configures: :data:`KEK_ENV`, else its key file.

    Attributes:
        key_file: The key file (used when the environment has no :data:`KEK_ENV`).
        env: The environment to look in.
    """

    key_file: Path
    env: Mapping[str, str]

    @property
    def is_env(self) -> bool:
        """Whether the KEK comes from the environment variable."""
        return bool(self.env.get(KEK_ENV, "").strip())

    @property
    def name(self) -> str:
        """What to call the source in messages (never the key)."""
        return f"${KEK_ENV}" if self.is_env else str(self.key_file)

    def ensure(self) -> bool:
        """Create the key file unless it exists or the environment holds the KEK."""
        return False if self.is_env else create_key_file(self.key_file)

    def load(self) -> list[LocalKek]:
        """The KEKs, current first.

        Raises:
            EncryptionError: No key file and no variable (``no-key``), a key
                file others may read (``insecure-key-file``) or a malformed key.
        """
        if self.is_env:
            return parse_keys(self.env[KEK_ENV], f"${KEK_ENV}")
        try:
            check_private(self.key_file)
            text = self.key_file.read_text(encoding="ascii")
        except FileNotFoundError:
            raise EncryptionError(
                f"no key-encryption key: {self.key_file} is missing and ${KEK_ENV} is not set"
                " (carewire init creates the file; restore it from its backup)",
                code="no-key",
            ) from None
        except UnicodeDecodeError:
            raise EncryptionError(f"{self.key_file}: not a key file", code="malformed") from None
        return parse_keys(text, str(self.key_file))
