"""The key service: loads, creates and rotates the wrapped data keys of one installation.

Theory of operation:

- :meth:`KeyService.load` reads every stored key (``data_keys``), unwraps
  each with the KEK (:class:`~carewire.security.keys.KekSource`) into the
  :class:`~carewire.security.envelope.Keyring`, and on a new installation
  stores a first data key and the index key. It fails at start when the KEK
  is missing or wrong, so a server never writes data it cannot read back.
- :meth:`KeyService.refresh` (run every ``encryption.refresh_interval`` by the
  server) loads keys other processes stored since, re-reading the KEK source
  when a key names a KEK it does not hold (after ``carewire keys rotate``):
  a running server follows a rotation without a restart.
- A new data key made by a rotation becomes active ``activation_delay``
  after it is stored (two refresh intervals), so every running process has
  loaded it before any process encrypts with it; until then the previous
  key keeps encrypting.
- :meth:`KeyService.rotate` re-wraps every stored key under a new KEK in one
  transaction (old data stays readable: the data keys themselves do not
  change) and optionally stores a new data key for new writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from carewire.clock import Clock
from carewire.security.envelope import (
    EncryptionError,
    Kek,
    KeyInfo,
    Keyring,
    LocalKek,
    Purpose,
    generate_key,
    wrap_aad,
)
from carewire.security.keys import KekSource

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredKey:
    """One row of ``data_keys``: a key as the KEK wrapped it.

    Attributes:
        key_id: Its id (named in every ciphertext it made).
        purpose: :attr:`Purpose.DATA` or :attr:`Purpose.INDEX`.
        kek_id: The KEK that wrapped it.
        wrapped: The wrapped key.
        created_at: When it was made.
        active_from: When it starts encrypting new values (data keys).
    """

    key_id: int
    purpose: str
    kek_id: str
    wrapped: bytes
    created_at: datetime
    active_from: datetime


class DataKeyStore(Protocol):
    """Where wrapped keys are kept (the database)."""

    async def list(self) -> list[StoredKey]:
        """Every stored key, oldest first."""
        ...

    async def add(
        self, *, purpose: str, kek_id: str, wrapped: bytes, now: datetime, active_from: datetime
    ) -> int:
        """Store one wrapped key; returns its id."""
        ...

    async def rewrap(self, changes: Sequence[tuple[StoredKey, str, bytes]]) -> int:
        """Replace wrapped keys in one transaction; returns how many changed."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    """What :meth:`KeyService.rotate` did.

    Attributes:
        old_kek_ids: The KEKs the keys were wrapped with before.
        new_kek_id: The KEK they are wrapped with now.
        rewrapped: How many stored keys were re-wrapped.
        new_data_key: The id of the new data key, if one was made.
        active_from: When the new data key starts encrypting.
    """

    old_kek_ids: tuple[str, ...]
    new_kek_id: str
    rewrapped: int
    new_data_key: int | None
    active_from: datetime | None


class KeyService:
    """Loads the wrapped keys into a :class:`Keyring`, keeps it current, rotates.

    Attributes:
        keyring: The keys in memory; stores encrypt and decrypt through it.
    """

    def __init__(
        self,
        store: DataKeyStore,
        source: KekSource,
        clock: Clock,
        *,
        encrypt_new: bool = True,
        refresh_interval: float = 30.0,
    ) -> None:
        """Prepare (nothing is read until :meth:`load`).

        Args:
            store: The wrapped keys.
            source: Where the KEK is read.
            clock: The clock (activation times).
            encrypt_new: False only to measure the cost of encryption: new
                values are written in plaintext (old ones still read).
            refresh_interval: Seconds between :meth:`refresh` runs in :meth:`run`.
        """
        self._store = store
        self._source = source
        self._clock = clock
        self._keks: dict[str, LocalKek] = {}
        self.refresh_interval = refresh_interval
        self.keyring = Keyring(encrypt_new=encrypt_new)

    @property
    def source(self) -> KekSource:
        """Where the KEK is read."""
        return self._source

    @property
    def activation_delay(self) -> timedelta:
        """How long a rotation's new data key waits before it encrypts (two refreshes)."""
        return timedelta(seconds=2 * self.refresh_interval)

    def _read_keks(self) -> None:
        self._keks = {k.kek_id: k for k in self._source.load()}

    def _current_kek(self) -> LocalKek:
        if not self._keks:
            self._read_keks()
        return next(iter(self._keks.values()))

    def _unwrap(self, row: StoredKey) -> bytes:
        kek: Kek | None = self._keks.get(row.kek_id)
        if kek is None:  # a rotation since we last read the source
            self._read_keks()
            kek = self._keks.get(row.kek_id)
        if kek is None:
            raise EncryptionError(
                f"stored key {row.key_id} is wrapped by key-encryption key {row.kek_id},"
                f" which {self._source.name} does not hold",
                code="unknown-key",
            )
        return kek.unwrap(row.wrapped, aad=wrap_aad(row.purpose))

    async def load(self) -> Keyring:
        """Load every stored key; on a new installation make the first data key and index key.

        A new installation (no stored key) without a KEK gets one made by the
        source (the key file is created); once keys are stored, a missing
        KEK is an error, never replaced: the data would be lost.

        Raises:
            EncryptionError: The KEK is missing, unreadable, or does not open the stored keys.
        """
        if not await self._store.list() and self._source.ensure():
            log.warning(
                "created a new key-encryption key in %s: back it up apart from the data",
                self._source.name,
            )
        self._read_keks()
        await self.refresh()
        purposes = {i.purpose for i in self.keyring.keys}
        now = self._clock.now()
        made = False
        for purpose in (Purpose.DATA, Purpose.INDEX):
            if purpose not in purposes:
                # The first key has nothing to wait for: active from the start of time.
                await self._add(purpose, now=now, active_from=_EPOCH)
                made = True
        if made:
            await self.refresh()
        return self.keyring

    async def _add(self, purpose: str, *, now: datetime, active_from: datetime) -> int:
        kek = self._current_kek()
        key_id = await self._store.add(
            purpose=purpose,
            kek_id=kek.kek_id,
            wrapped=kek.wrap(generate_key(), aad=wrap_aad(purpose)),
            now=now,
            active_from=active_from,
        )
        log.info("stored new %s key %d (wrapped by %s)", purpose, key_id, kek.kek_id)
        return key_id

    async def refresh(self) -> None:
        """Load keys stored since the last call, then choose the active data key.

        Raises:
            EncryptionError: A new key cannot be unwrapped.
        """
        for row in await self._store.list():
            if not self.keyring.has(row.key_id):
                info = KeyInfo(key_id=row.key_id, purpose=row.purpose, active_from=row.active_from)
                self.keyring.add(info, self._unwrap(row))
        before = self.keyring.active_id
        after = self.keyring.activate(self._clock.now())
        if after != before and before is not None:
            log.info("data key %s now encrypts new values (was %s)", after, before)

    async def run(self) -> None:
        """Refresh every ``refresh_interval`` until cancelled (owned by the server)."""
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except EncryptionError as exc:
                # Keep the keys already loaded: old and current data stay readable.
                log.error("encryption keys not refreshed: %s", exc.message)

    async def stored(self) -> list[StoredKey]:
        """Every stored key (for ``carewire keys status``)."""
        return await self._store.list()

    async def rotate(self, new_kek: LocalKek, *, new_data_key: bool = False) -> Rotation:
        """Re-wrap every stored key under ``new_kek``; optionally add a data key for new writes.

        The KEK source must still hold the old KEK (a key file lists the new
        key first and the old one after it until this returns).

        Raises:
            EncryptionError: A stored key does not open with the KEKs the source holds.
        """
        rows = await self._store.list()
        changes = []
        for row in rows:
            if row.kek_id != new_kek.kek_id:
                key = self._unwrap(row)
                changes.append((row, new_kek.kek_id, new_kek.wrap(key, aad=wrap_aad(row.purpose))))
        rewrapped = await self._store.rewrap(changes)
        self._keks = {new_kek.kek_id: new_kek, **self._keks}
        made: int | None = None
        active_from: datetime | None = None
        if new_data_key:
            now = self._clock.now()
            active_from = now + self.activation_delay
            made = await self._add(Purpose.DATA, now=now, active_from=active_from)
        log.info("re-wrapped %d stored keys under %s", rewrapped, new_kek.kek_id)
        return Rotation(
            old_kek_ids=tuple(sorted({r.kek_id for r in rows} - {new_kek.kek_id})),
            new_kek_id=new_kek.kek_id,
            rewrapped=rewrapped,
            new_data_key=made,
            active_from=active_from,
        )
