"""File sharing's service: slots within the limits, encrypted files in, plaintext out, expiry.

Theory of operation:

- :meth:`UploadService.request_slot` checks the size limit and the owner's
  quota (files not yet expired, and slots given but not yet used, count)
  and stores a ``SLOT`` row. The URLs carry a random secret of 192 bits;
  only its SHA-256 is stored, so the database and the disk (whose files are
  named by another random id) give no working URL away.
- :meth:`UploadService.receive` (HTTP PUT) claims the slot (``SLOT`` →
  ``RECEIVING`` in one statement: two PUTs cannot both win), streams the
  body through :class:`~carewire.uploads.sealing.ChunkSealer` into a
  ``.part`` file, checks that exactly the slot's size arrived, renames the
  file into place and marks the row ``STORED`` with its lifetime (the
  owner's organisation's Message Expiration Time from the slot request on,
  given by the caller then). A failed PUT deletes the partial file and gives
  the slot back. A slot never used is deleted :data:`SLOT_GRACE` after its
  PUT URL stopped working.
- :meth:`UploadService.download` (HTTP GET) decrypts chunk by chunk from disk.
- :meth:`UploadService.sweep` deletes expired uploads (file first, then row,
  in batches: a sweep stopped anywhere is finished by the next one), and
  :meth:`UploadService.purge_created_before` does the same for the
  retention purge. Each call that deleted something is one audit entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from carewire.clock import Clock
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.security.envelope import EncryptionError, Keyring
from carewire.uploads import sealing
from carewire.uploads.checks import check_content_type, check_filename, check_put
from carewire.uploads.model import (
    Download,
    Slot,
    UploadError,
    UploadRecord,
    UploadSettings,
    UploadState,
    UploadStore,
)

log = logging.getLogger(__name__)

#: Rows deleted per sweep batch.
BATCH = 500
#: How long after its PUT URL stopped working an unused slot still counts against the quota
#: (a PUT that started just in time may still be arriving).
SLOT_GRACE = timedelta(minutes=10)


def token_hash(token: str) -> str:
    """What is stored of a URL's secret: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UploadService:
    """Slots, encrypted storage and serving of shared files (XEP-0363).

    Attributes:
        base_url: The base of the URLs handed out (``https://host:port``);
            None until the HTTPS listener is up (slot requests fail until then).
    """

    def __init__(
        self,
        store: UploadStore,
        keyring: Keyring,
        clock: Clock,
        settings: UploadSettings,
        *,
        audit: AuditTrail | None = None,
    ) -> None:
        """Prepare (the directory is made on the first upload)."""
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self.settings = settings
        self.audit = audit
        self.base_url: str | None = settings.public_url.rstrip("/") or None
        self._quota_lock = asyncio.Lock()

    # -- slots --------------------------------------------------------------------------------

    async def request_slot(
        self,
        *,
        owner: str,
        filename: str,
        size: int,
        content_type: str | None,
        lifetime: timedelta,
    ) -> Slot:
        """Give ``owner`` a slot for one file.

        Args:
            owner: The uploader's login.
            filename: The file's name (kept in the URLs; sealed in the database).
            size: Its size in bytes.
            content_type: Its Content-Type (``application/octet-stream`` if None).
            lifetime: How long the file is kept once uploaded.

        Raises:
            UploadError: ``bad-request``, ``file-too-large``, ``quota`` or ``unavailable``.
        """
        name = check_filename(filename)
        ctype = check_content_type(content_type)
        if size < 1:
            raise UploadError("the size must be at least 1 byte", code="bad-request")
        limit = self.settings.max_file_size
        if size > limit:
            raise UploadError(
                f"File too large. The maximum file size is {limit} bytes",
                code="file-too-large",
                limit=limit,
            )
        if self.base_url is None:
            raise UploadError("file sharing has no HTTPS listener", code="unavailable")
        now = self.clock.now()
        token = secrets.token_urlsafe(24)
        file_id = secrets.token_hex(16)
        slot_expires = now + self.settings.slot_lifetime
        record = UploadRecord(
            file_id=file_id,
            token_hash=token_hash(token),
            owner=owner,
            filename=self.keyring.seal_text(name, aad=self._aad("filename", file_id)),
            content_type=ctype,
            size=size,
            state=UploadState.SLOT,
            created_at=now,
            slot_expires_at=slot_expires,
            expires_at=now + lifetime,
            sha256=None,
        )
        async with self._quota_lock:  # one check-and-insert at a time: the quota holds exactly
            held = await self.store.add_within_quota(
                record, quota=self.settings.quota, now=now, slots_since=now - SLOT_GRACE
            )
        if held:
            raise UploadError(
                f"Quota reached: {held} of {self.settings.quota} bytes in use",
                code="quota",
            )
        url = f"{self.base_url}/upload/{token}/{quote(name, safe='')}"
        log.info("upload slot %s given to %s (%d bytes)", file_id, owner, size)
        return Slot(put_url=url, get_url=url, expires_at=slot_expires)

    @staticmethod
    def _aad(column: str, file_id: str) -> bytes:
        return f"uploads.{column}|{file_id}".encode()

    def path_of(self, file_id: str) -> Path:
        """Where the encrypted file of ``file_id`` is (or will be) on disk."""
        return self.settings.directory / file_id[:2] / file_id

    # -- PUT ----------------------------------------------------------------------------------

    async def _slot_for(self, token: str, filename: str) -> UploadRecord:
        record = await self.store.by_token(token_hash(token))
        if record is None or self._name_of(record) != filename:
            raise UploadError("no such upload slot", code="not-found")
        return record

    def _name_of(self, record: UploadRecord) -> str:
        return self.keyring.open_text(record.filename, aad=self._aad("filename", record.file_id))

    async def receive(
        self,
        token: str,
        filename: str,
        *,
        length: int | None,
        content_type: str | None,
        body: AsyncIterator[bytes],
        remote_ip: str = "",
    ) -> None:
        """Store the body of a PUT to the slot ``token``/``filename``, encrypted.

        Args:
            token: The URL's secret part.
            filename: The URL's filename part.
            length: The request's Content-Length (None: not given).
            content_type: The request's Content-Type.
            body: The body, piece by piece.
            remote_ip: The client's address (for the audit trail).

        Raises:
            UploadError: ``not-found`` (unknown slot or name), ``expired``,
                ``conflict`` (used or in use), ``length-required``, ``too-large``,
                ``size-mismatch``, ``type-mismatch``.
        """
        record = await self._slot_for(token, filename)
        now = self.clock.now()
        check_put(record, now, length=length, content_type=content_type)
        if not await self.store.claim(record.token_hash, now):
            raise UploadError("this upload slot was used already", code="conflict")
        try:
            digest = await self._write(record, body)
        except BaseException:
            await asyncio.shield(self.store.release(record.file_id))
            raise
        sealed_digest = self.keyring.seal_text(digest, aad=self._aad("sha256", record.file_id))
        if not await self.store.mark_stored(record.file_id, sha256=sealed_digest):
            # Swept while it arrived (a body slower than the slot's grace period): drop it.
            await self._delete([record])
            raise UploadError("this upload slot has expired", code="expired")
        log.info("upload %s stored (%d bytes)", record.file_id, record.size)
        if self.audit is not None:
            await self.audit.record(
                AuditEvent(
                    actor=f"xmpp:{record.owner}",
                    channel=Channel.XMPP,
                    action="upload.store",
                    target=record.file_id,
                    remote_ip=remote_ip,
                    details={"size": record.size, "content_type": record.content_type},
                )
            )

    async def _write(self, record: UploadRecord, body: AsyncIterator[bytes]) -> str:
        """Encrypt ``body`` to the file of ``record``; its plaintext SHA-256 (hex)."""
        path = self.path_of(record.file_id)
        part = path.with_name(path.name + ".part")
        part.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sealer = sealing.ChunkSealer(self.keyring, record.file_id, record.size)
        digest = hashlib.sha256()
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                async for piece in body:
                    if sealer.taken + len(piece) > record.size:
                        raise UploadError(
                            f"the body is longer than the slot's size {record.size}",
                            code="too-large",
                        )
                    digest.update(piece)
                    for frame in sealer.feed(piece):
                        out.write(frame)
                if sealer.taken != record.size:
                    raise UploadError(
                        f"the body has {sealer.taken} of the slot's {record.size} bytes",
                        code="size-mismatch",
                    )
                await asyncio.to_thread(os.fsync, out.fileno())
            os.replace(part, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise
        return digest.hexdigest()

    # -- GET ----------------------------------------------------------------------------------

    async def download(self, token: str, filename: str) -> Download:
        """The stored file of the URL ``token``/``filename``.

        Raises:
            UploadError: ``not-found``: unknown, not stored yet, expired or deleted.
        """
        record = await self._slot_for(token, filename)
        if record.state is not UploadState.STORED or record.expires_at <= self.clock.now():
            raise UploadError("no such file", code="not-found")
        path = self.path_of(record.file_id)
        if not path.is_file():  # deleted by a sweep since the row was read
            raise UploadError("no such file", code="not-found")
        return Download(
            filename=filename,
            content_type=record.content_type,
            size=record.size,
            chunks=self._plaintext(path, record),
        )

    async def _plaintext(self, path: Path, record: UploadRecord) -> AsyncGenerator[bytes, None]:
        with path.open("rb") as handle:
            sealing.check_magic(handle.read(len(sealing.MAGIC)))
            for index, (frame_size, is_final) in enumerate(sealing.frame_sizes(record.size)):
                frame = handle.read(frame_size)
                if len(frame) != frame_size:
                    raise EncryptionError("the file is cut short", code="tampered")
                yield sealing.open_chunk(
                    self.keyring, record.file_id, index, frame, is_final=is_final
                )
            if handle.read(1):
                raise EncryptionError("bytes after the last chunk", code="tampered")

    # -- deletion -----------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete every expired upload (files, then rows, in batches); how many."""
        total = 0
        while True:
            now = self.clock.now()
            batch = await self.store.expired(now, slots_before=now - SLOT_GRACE, limit=BATCH)
            total += await self._delete(batch)
            if len(batch) < BATCH:
                break
        if total:
            log.info("upload sweep: %d expired uploads deleted", total)
            await self._record_deletion("upload.expire", total)
        return total

    async def purge_created_before(self, owners: Sequence[str], before: datetime) -> int:
        """Delete the uploads of ``owners`` made before ``before`` (the retention purge)."""
        total = 0
        while True:
            batch = await self.store.created_before(owners, before, limit=BATCH)
            total += await self._delete(batch)
            if len(batch) < BATCH:
                break
        if total:
            log.info("retention purge: %d uploads deleted", total)
        return total

    async def count_created_before(self, owners: Sequence[str], before: datetime) -> int:
        """How many uploads :meth:`purge_created_before` would delete (a dry run)."""
        return await self.store.count_created_before(owners, before)

    async def _delete(self, records: Sequence[UploadRecord]) -> int:
        if not records:
            return 0
        for r in records:
            path = self.path_of(r.file_id)
            for p in (path, path.with_name(path.name + ".part")):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        return await self.store.delete([r.file_id for r in records])

    async def _record_deletion(self, action: str, count: int) -> None:
        if self.audit is not None:
            await self.audit.record(
                AuditEvent(
                    actor="system", channel=Channel.SYSTEM, action=action, details={"count": count}
                )
            )
