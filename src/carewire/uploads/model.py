"""File sharing's data: settings, slots, stored files' metadata, errors and the store interface.

An upload is one row from the slot request on: ``SLOT`` (a PUT URL was
given), ``RECEIVING`` (a PUT is being received: a second one is refused),
``STORED`` (the GET URL serves it). A failed PUT puts it back to ``SLOT`` so
the client may try again while the slot lasts. A stored file expires at
``expires_at`` (the owner's organisation's Message Expiration Time after
the slot request); an upload never stored, a grace period after its
``slot_expires_at``. The sweep deletes what has expired.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from carewire.errors import CarewireError


class UploadState(StrEnum):
    """Where an upload is in its life."""

    SLOT = "slot"
    RECEIVING = "receiving"
    STORED = "stored"


class UploadError(CarewireError):
    """A slot request, PUT or GET refused; ``code`` says why (mapped to XMPP and HTTP errors).

    Codes: ``file-too-large`` (a slot over the size limit; ``limit`` is set),
    ``quota`` (the owner's quota would be passed), ``bad-request`` (a
    malformed request), ``not-found`` (unknown, not stored, expired or
    deleted), ``expired`` (a PUT after its slot's lifetime), ``conflict``
    (the slot was used or is in use), ``length-required`` (a PUT without
    Content-Length), ``too-large`` (a PUT body longer than the slot),
    ``size-mismatch`` (a PUT body shorter than the slot), ``type-mismatch``
    (the Content-Type is not the slot's), ``unavailable`` (no HTTPS listener).
    """

    code = "upload-error"

    def __init__(self, message: str = "", *, code: str, limit: int | None = None) -> None:
        """An error of ``code``; ``limit`` is the size limit for ``file-too-large``."""
        super().__init__(message, code=code)
        self.limit = limit


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadSettings:
    """File sharing's settings (``[upload]``).

    Attributes:
        directory: Where the encrypted files are written (``<data dir>/uploads``).
        max_file_size: The largest file, in bytes.
        quota: The most bytes one user's files not yet expired may hold.
        slot_lifetime: How long a PUT URL works after the slot was given.
        public_url: The base of the URLs clients are given (empty: set by the
            server from the domain and the HTTPS port).
    """

    directory: Path
    max_file_size: int = 52_428_800
    quota: int = 1_073_741_824
    slot_lifetime: timedelta = timedelta(minutes=5)
    public_url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadRecord:
    """One upload's row (no content; the filename and digest are sealed).

    Attributes:
        file_id: Names the encrypted file on disk (random, not the URL's secret).
        token_hash: SHA-256 (hex) of the URL's secret part.
        owner: The uploader's login.
        filename: The file's name, sealed (``cw1:…``).
        content_type: The Content-Type the slot was given for.
        size: The size in bytes the slot was given for.
        state: Where the upload is.
        created_at: When the slot was given.
        slot_expires_at: When the PUT URL stops working.
        expires_at: When the sweep deletes it once stored.
        sha256: The plaintext's SHA-256 (hex), sealed, once stored.
    """

    file_id: str
    token_hash: str
    owner: str
    filename: str
    content_type: str
    size: int
    state: UploadState
    created_at: datetime
    slot_expires_at: datetime
    expires_at: datetime
    sha256: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Slot:
    """A slot given to a client (XEP-0363 §4): the PUT and GET URLs."""

    put_url: str
    get_url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """A stored file being served: its metadata and its plaintext, chunk by chunk."""

    filename: str
    content_type: str
    size: int
    chunks: AsyncGenerator[bytes, None]


class UploadStore(Protocol):
    """The uploads' metadata (storage implements it on SQLite and PostgreSQL)."""

    async def add_within_quota(
        self, record: UploadRecord, *, quota: int, now: datetime, slots_since: datetime
    ) -> int:
        """Insert ``record`` if the owner's live uploads plus it fit ``quota``.

        Live: stored and not expired at ``now``, or not stored with a
        ``slot_expires_at`` after ``slots_since``.

        Returns:
            0 when inserted, else the bytes the owner holds now (the quota would be passed).
        """
        ...

    async def by_token(self, token_hash: str) -> UploadRecord | None:
        """The upload whose URL secret hashes to ``token_hash``."""
        ...

    async def claim(self, token_hash: str, now: datetime) -> bool:
        """``SLOT`` → ``RECEIVING`` if the slot still works; whether it moved."""
        ...

    async def release(self, file_id: str) -> None:
        """``RECEIVING`` → ``SLOT`` (a PUT failed)."""
        ...

    async def mark_stored(self, file_id: str, *, sha256: str) -> bool:
        """``RECEIVING`` → ``STORED``, with its sealed digest; False if the row is gone."""
        ...

    async def expired(
        self, now: datetime, *, slots_before: datetime, limit: int
    ) -> list[UploadRecord]:
        """At most ``limit`` uploads stored and expired at ``now``, or never stored with a
        ``slot_expires_at`` before ``slots_before``."""
        ...

    async def created_before(
        self, owners: Sequence[str], before: datetime, *, limit: int
    ) -> list[UploadRecord]:
        """At most ``limit`` uploads of ``owners`` created before ``before`` (retention)."""
        ...

    async def count_created_before(self, owners: Sequence[str], before: datetime) -> int:
        """How many uploads of ``owners`` were created before ``before``."""
        ...

    async def delete(self, file_ids: Sequence[str]) -> int:
        """Delete these rows; how many."""
        ...
