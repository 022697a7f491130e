"""FAST token verification and rotation, pure (carewire.core.fast)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from carewire.core.fast import Slot, Verdict, check, derive_token, rotated
from carewire.core.stores import FastRecord
from carewire.xmpp.sasl2 import HT_ENDP, HT_NONE, ht_initiator

SECRET = b"k" * 32
NOW = datetime(2026, 12, 6, tzinfo=UTC)
DAY = timedelta(days=1)
LIFE = timedelta(days=14)


def proof(seed: bytes, cb: bytes = b"") -> bytes:
    return ht_initiator(derive_token(SECRET, seed).encode(), cb)


def record(**values: object) -> FastRecord:
    base: dict[str, object] = {
        "owner": "alice",
        "agent_id": "ua",
        "mechanism": HT_NONE,
        "current_seed": b"c" * 32,
        "current_expires_at": NOW + LIFE,
        "new_seed": b"n" * 32,
        "new_expires_at": NOW + LIFE,
        "retired_seed": b"r" * 32,
        "updated_at": NOW,
    }
    base.update(values)
    return FastRecord(**base)  # type: ignore[arg-type]


def verdict(rec: FastRecord | None, p: bytes, **kw: object) -> tuple[Verdict, Slot | None]:
    args: dict[str, object] = {"mechanism": HT_NONE, "cb_data": b"", "count": None, "now": NOW}
    args.update(kw)
    return check(rec, secret=SECRET, proof=p, **args)  # type: ignore[arg-type]


def test_each_slot_and_each_failure() -> None:
    rec = record()
    assert verdict(rec, proof(b"n" * 32)) == (Verdict.VALID, Slot.NEW)
    assert verdict(rec, proof(b"c" * 32)) == (Verdict.VALID, Slot.CURRENT)
    assert verdict(rec, proof(b"r" * 32)) == (Verdict.REPLAYED, None)
    assert verdict(rec, proof(b"x" * 32)) == (Verdict.WRONG, None)
    assert verdict(None, proof(b"n" * 32)) == (Verdict.NO_TOKEN, None)
    assert verdict(rec, proof(b"n" * 32), mechanism=HT_ENDP)[0] is Verdict.WRONG_MECHANISM
    assert verdict(rec, proof(b"n" * 32), now=NOW + LIFE)[0] is Verdict.EXPIRED
    assert verdict(rec, proof(b"n" * 32, b"cb"))[0] is Verdict.WRONG  # bound to other cb data
    counted = record(current_count=5)
    assert verdict(counted, proof(b"c" * 32), count=5)[0] is Verdict.STALE_COUNT
    assert verdict(counted, proof(b"c" * 32), count=6)[0] is Verdict.VALID


def test_tokens_depend_on_the_server_secret() -> None:
    assert derive_token(SECRET, b"s" * 32) != derive_token(b"other" * 8, b"s" * 32)
    assert len(derive_token(SECRET, b"s" * 32)) == 43


@given(
    slot=st.sampled_from(list(Slot)),
    age=st.integers(min_value=0, max_value=13),
    count=st.none() | st.integers(min_value=0, max_value=2**31),
)
def test_rotation_keeps_the_invariants(slot: Slot, age: int, count: int | None) -> None:
    issued = NOW - timedelta(days=age)
    rec = record(current_expires_at=issued + LIFE)
    after, seed = rotated(rec, slot, count=count, now=NOW, lifetime=LIFE, rotate_after=DAY)
    used = rec.new_seed if slot is Slot.NEW else rec.current_seed
    assert after.current_seed == used  # the token used is 'current' afterwards
    if slot is Slot.NEW:
        assert after.retired_seed == rec.current_seed
        assert after.current_count == (count or 0)
    elif count is not None:
        assert after.current_count == count
    due = (after.current_expires_at is not None) and (
        NOW - (after.current_expires_at - LIFE) >= DAY
    )
    assert (seed is not None) == due
    if seed is not None:
        assert after.new_seed == seed and seed not in (rec.new_seed, rec.current_seed)
    elif slot is Slot.NEW:
        assert after.new_seed is None
