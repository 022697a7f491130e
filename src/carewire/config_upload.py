"""The ``[upload]`` section of the configuration: file sharing (XEP-0363; docs/upload.md).

Kept apart from :mod:`carewire.config`, which loads it like every other
section (``CAREWIRE_UPLOAD_<KEY>`` variables included).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from carewire.errors import ConfigError

_PUBLIC_URL = re.compile(r"https://[^/\s?#]+(/[^\s?#]*)?")


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadSection:
    """[upload]: file sharing, XEP-0363 HTTP File Upload on the HTTPS port (docs/upload.md)."""

    enabled: bool = True  # serve upload.<domain>; files go to <data dir>/uploads, encrypted
    max_file_size: int = 52_428_800  # bytes per file (50 MiB); larger slot requests are refused
    quota: int = 1_073_741_824  # bytes per user (1 GiB) of files not yet expired
    slot_lifetime: str = "5m"  # a PUT URL works this long after the slot was given
    public_url: str = ""  # empty: https://<domain>:<https_port>; else the base clients reach
    body_timeout: str = "10m"  # a PUT's body must arrive within this (https.body_timeout: others)


def validate_upload(u: UploadSection, parse: Callable[[object, str], timedelta]) -> None:
    """Check ``[upload]`` (``parse``: the loader's duration parser).

    Raises:
        ConfigError: A value out of range; the message names the key.
    """
    if not 1 <= u.max_file_size <= 1 << 40:
        raise ConfigError(
            f"upload.max_file_size: must be between 1 byte and 1 TiB, got {u.max_file_size}"
        )
    if u.quota < u.max_file_size:
        raise ConfigError("upload.quota: must be at least upload.max_file_size")
    if not 10 <= parse(u.slot_lifetime, "upload.slot_lifetime").total_seconds() <= 3600:
        raise ConfigError(
            f"upload.slot_lifetime: must be between 10s and 1h, got {u.slot_lifetime!r}"
        )
    if not 1 <= parse(u.body_timeout, "upload.body_timeout").total_seconds() <= 86_400:
        raise ConfigError(
            f"upload.body_timeout: must be between 1s and 24h, got {u.body_timeout!r}"
        )
    if u.public_url and not _PUBLIC_URL.fullmatch(u.public_url):
        raise ConfigError(
            f"upload.public_url: expected an https:// URL without query, got {u.public_url!r}"
        )
