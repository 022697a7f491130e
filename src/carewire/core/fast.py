"""XEP-0484 FAST tokens: issue, verify, rotate, invalidate (docs/sasl2.md).

Theory of operation
-------------------
The HT-* mechanisms (draft-schmaus-kitten-sasl-ht) prove possession of a
token with ``HMAC(token, "Initiator" || channel-binding data)``: the server
must be able to recompute the token, so a one-way hash of it (argon2, or a
keyed hash) cannot be what is stored. What is stored is a 256-bit random
*seed* per token; the token is ``HMAC-SHA-256(server secret, seed)``, and
the server secret lives in the data directory, not in the database. A copy
of the database alone therefore yields no usable token, and checking one is
three HMACs — no argon2, which would cost more than the SCRAM login FAST is
meant to beat.

Each account's client (the SASL2 ``<user-agent id>``) has one record with
the two slots of XEP-0484 §7.1, ``current`` and ``new``, and the last token
rotated out (``retired``). Tokens are bound to the FAST mechanism they were
requested for. A successful FAST login rotates when the token is due
(XEP-0484 §token-rotation; ``rotate_after`` since it was issued, zero: at
every use) or was 'new': the token used becomes ``current`` and a fresh
token goes to ``new`` (sent in the success); the previous ``current``, once
the client used ``new``, is retired. Logins between rotations write nothing,
which is what makes them cheaper than SCRAM logins. Presenting
the retired token again is a replay — a stolen token used after its owner
moved on, or the other way round — and invalidates every token of that
client. A ``count`` (XEP-0484 0-RTT replay counter) must grow per token.

The verification functions are pure (records, secrets and ``now`` in,
verdicts out); :class:`FastTokens` adds the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from carewire.core.stores import FastRecord, FastTokenStore
from carewire.xmpp.sasl2 import ht_initiator, ht_responder

#: XEP-0484 leaves the lifetime to the deployment; 14 days unless configured.
DEFAULT_LIFETIME = timedelta(days=14)
#: A token used this long after it was issued is replaced by a fresh one.
DEFAULT_ROTATE_AFTER = timedelta(days=1)
SEED_BYTES = 32


class Verdict(StrEnum):
    """The outcome of checking a FAST proof against a client's record."""

    VALID = "valid"
    NO_TOKEN = "no-token"  # nothing issued to this account's client
    WRONG = "wrong"  # matches no token of the client
    WRONG_MECHANISM = "wrong-mechanism"  # XEP-0484: tokens are bound to their mechanism
    EXPIRED = "expired"
    REPLAYED = "replayed"  # the rotated-out token: every token of the client is invalidated
    STALE_COUNT = "stale-count"  # a count not above the last one seen for the token


class Slot(StrEnum):
    """Which of the two XEP-0484 slots a valid proof used."""

    CURRENT = "current"
    NEW = "new"


@dataclass(frozen=True, slots=True, kw_only=True)
class Issued:
    """A token sent to the client, with its expiry."""

    token: str
    expires_at: datetime


def derive_token(secret: bytes, seed: bytes) -> str:
    """The token of ``seed``: base64url of HMAC-SHA-256(server secret, seed), no padding."""
    mac = hmac.new(secret, b"carewire-fast\x00" + seed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _proves(secret: bytes, seed: bytes | None, proof: bytes, cb_data: bytes) -> bool:
    if seed is None:
        return False
    token = derive_token(secret, seed).encode("ascii")
    return hmac.compare_digest(ht_initiator(token, cb_data), proof)


def check(
    record: FastRecord | None,
    *,
    secret: bytes,
    mechanism: str,
    proof: bytes,
    cb_data: bytes,
    count: int | None,
    now: datetime,
) -> tuple[Verdict, Slot | None]:
    """Which token (if any) ``proof`` proves, XEP-0484 §7.1: 'new' first, then 'current'."""
    if record is None:
        return Verdict.NO_TOKEN, None
    if record.mechanism != mechanism:
        return Verdict.WRONG_MECHANISM, None
    for slot, seed, expires in (
        (Slot.NEW, record.new_seed, record.new_expires_at),
        (Slot.CURRENT, record.current_seed, record.current_expires_at),
    ):
        if not _proves(secret, seed, proof, cb_data):
            continue
        if expires is None or expires <= now:
            return Verdict.EXPIRED, slot
        if slot is Slot.CURRENT and count is not None and count <= record.current_count:
            return Verdict.STALE_COUNT, slot
        return Verdict.VALID, slot
    if _proves(secret, record.retired_seed, proof, cb_data):
        return Verdict.REPLAYED, None
    return Verdict.WRONG, None


def is_due(
    record: FastRecord, *, now: datetime, lifetime: timedelta, rotate_after: timedelta
) -> bool:
    """Whether the 'current' token was issued ``rotate_after`` ago or more (zero: always)."""
    expires = record.current_expires_at
    return expires is None or now - (expires - lifetime) >= rotate_after


def rotated(
    record: FastRecord,
    slot: Slot,
    *,
    count: int | None,
    now: datetime,
    lifetime: timedelta,
    rotate_after: timedelta,
) -> tuple[FastRecord, bytes | None]:
    """The record after a successful use of ``slot``, and the seed of a fresh token if due.

    The first use of the 'new' token makes it 'current' and retires the
    former one; a 'current' token that is due gets a fresh 'new' one.
    """
    if slot is Slot.NEW:
        record = replace(
            record,
            retired_seed=record.current_seed,
            current_seed=record.new_seed,
            current_expires_at=record.new_expires_at,
            current_count=count or 0,
            new_seed=None,
            new_expires_at=None,
        )
    elif count is not None:
        record = replace(record, current_count=count)
    seed = None
    if is_due(record, now=now, lifetime=lifetime, rotate_after=rotate_after):
        # XEP-0484: "upon providing a new token to the client, the server SHOULD
        # invalidate any tokens previously generated that have not been used".
        seed = secrets.token_bytes(SEED_BYTES)
        record = replace(record, new_seed=seed, new_expires_at=now + lifetime)
    return replace(record, updated_at=now), seed


def server_proof(secret: bytes, seed: bytes, cb_data: bytes) -> bytes:
    """The additional data of a FAST success: HMAC(token, "Responder" || binding data)."""
    return ht_responder(derive_token(secret, seed).encode("ascii"), cb_data)


class FastTokens:
    """FAST tokens of every account's clients, on a :class:`FastTokenStore`."""

    def __init__(
        self,
        store: FastTokenStore,
        secret: bytes,
        lifetime: timedelta = DEFAULT_LIFETIME,
        rotate_after: timedelta = DEFAULT_ROTATE_AFTER,
    ) -> None:
        self.store = store
        self._secret = secret
        self.lifetime = lifetime
        self.rotate_after = rotate_after

    async def verify(
        self,
        login: str,
        agent_id: str,
        *,
        mechanism: str,
        proof: bytes,
        cb_data: bytes,
        count: int | None,
        now: datetime,
    ) -> tuple[Verdict, FastRecord | None, Slot | None]:
        """Check a proof; a replay invalidates every token of the client at once."""
        record = await self.store.get(login, agent_id)
        verdict, slot = check(
            record,
            secret=self._secret,
            mechanism=mechanism,
            proof=proof,
            cb_data=cb_data,
            count=count,
            now=now,
        )
        if verdict is Verdict.REPLAYED:
            await self.store.delete(login, agent_id)
        return verdict, record, slot

    def responder(self, record: FastRecord, slot: Slot, cb_data: bytes) -> bytes:
        """The server's proof for the token in ``slot`` (the success's additional data)."""
        seed = record.new_seed if slot is Slot.NEW else record.current_seed
        assert seed is not None
        return server_proof(self._secret, seed, cb_data)

    async def consume(
        self, record: FastRecord, slot: Slot, *, count: int | None, now: datetime
    ) -> Issued | None:
        """After a successful login: promote, rotate if due; the next token, or None.

        A use of a 'current' token that is not due, without a count, writes nothing.
        """
        lifetime, rotate_after = self.lifetime, self.rotate_after
        due = is_due(record, now=now, lifetime=lifetime, rotate_after=rotate_after)
        if slot is Slot.CURRENT and count is None and not due:
            return None
        record, seed = rotated(
            record, slot, count=count, now=now, lifetime=lifetime, rotate_after=rotate_after
        )
        await self.store.put(record)
        if seed is None:
            return None
        assert record.new_expires_at is not None
        return Issued(token=derive_token(self._secret, seed), expires_at=record.new_expires_at)

    async def issue(self, login: str, agent_id: str, mechanism: str, now: datetime) -> Issued:
        """A token for ``mechanism`` (``<request-token/>``); earlier unused ones are replaced."""
        record = await self.store.get(login, agent_id)
        if record is None or record.mechanism != mechanism:
            record = FastRecord(owner=login, agent_id=agent_id, mechanism=mechanism, updated_at=now)
        seed = secrets.token_bytes(SEED_BYTES)
        expires = now + self.lifetime
        await self.store.put(replace(record, new_seed=seed, new_expires_at=expires, updated_at=now))
        return Issued(token=derive_token(self._secret, seed), expires_at=expires)

    async def invalidate(self, login: str, agent_id: str) -> None:
        """Forget every token of one client (``<fast invalidate='true'/>``, a replay)."""
        await self.store.delete(login, agent_id)
