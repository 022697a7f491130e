"""Envelope encryption: the ciphertext format, associated data, blind indexes (no I/O)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from carewire.security.envelope import (
    TEXT_PREFIX,
    EncryptionError,
    KeyInfo,
    Keyring,
    LocalKek,
    Purpose,
    ephemeral_keyring,
    generate_key,
    is_sealed_text,
    sealed_key_ids,
    wrap_aad,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_round_trip_and_format() -> None:
    ring = ephemeral_keyring()
    blob = ring.encrypt(b"BP 120/80", aad=b"t.c|1")
    assert blob[0] == 1 and Keyring.key_id_of(blob) == 1
    assert b"BP 120/80" not in blob
    assert len(blob) == 1 + 4 + 12 + len(b"BP 120/80") + 16
    assert ring.decrypt(blob, aad=b"t.c|1") == b"BP 120/80"
    # a fresh nonce each time: equal plaintexts give different ciphertexts
    assert ring.encrypt(b"BP 120/80", aad=b"t.c|1") != blob


@pytest.mark.parametrize("aad", [b"t.c|2", b"t.d|1", b""])
def test_other_associated_data_does_not_decrypt(aad: bytes) -> None:
    ring = ephemeral_keyring()
    blob = ring.encrypt(b"secret", aad=b"t.c|1")
    with pytest.raises(EncryptionError) as exc:
        ring.decrypt(blob, aad=aad)
    assert exc.value.code == "tampered"


def test_altered_header_or_body_does_not_decrypt() -> None:
    ring = ephemeral_keyring()
    blob = bytearray(ring.encrypt(b"secret", aad=b"a"))
    for i in (5, 20, len(blob) - 1):  # nonce, body, tag
        bad = bytearray(blob)
        bad[i] ^= 1
        with pytest.raises(EncryptionError) as exc:
            ring.decrypt(bytes(bad), aad=b"a")
        assert exc.value.code == "tampered"
    bad = bytearray(blob)
    bad[4] ^= 1  # the key id: no such key
    with pytest.raises(EncryptionError) as exc:
        ring.decrypt(bytes(bad), aad=b"a")
    assert exc.value.code == "unknown-key"
    for junk in (b"", b"\x02" + bytes(40), bytes(10)):
        with pytest.raises(EncryptionError) as exc:
            ring.decrypt(junk, aad=b"a")
        assert exc.value.code == "malformed"


def test_another_keyring_cannot_read() -> None:
    blob = ephemeral_keyring().encrypt(b"x", aad=b"a")
    with pytest.raises(EncryptionError) as exc:
        ephemeral_keyring().decrypt(blob, aad=b"a")
    assert exc.value.code == "tampered"


def test_text_sealing_and_legacy_plaintext() -> None:
    ring = ephemeral_keyring()
    sealed = ring.seal_text("Bed 12: Müller", aad=b"x")
    assert is_sealed_text(sealed) and sealed.startswith(TEXT_PREFIX)
    assert "Müller" not in sealed
    assert ring.open_text(sealed, aad=b"x") == "Bed 12: Müller"
    assert ring.open_text("<message>old plaintext</message>", aad=b"x") == (
        "<message>old plaintext</message>"
    )
    assert sealed_key_ids([sealed, "plain"]) == {1}
    with pytest.raises(EncryptionError) as exc:
        ring.open_text(TEXT_PREFIX + "%%%", aad=b"x")
    assert exc.value.code == "malformed"


def test_encrypt_new_off_writes_plaintext_but_reads_ciphertext() -> None:
    ring = ephemeral_keyring()
    sealed = ring.seal_text("a", aad=b"x")
    ring.encrypt_new = False
    assert ring.seal_text("b", aad=b"x") == "b"
    assert ring.seal(b"b", aad=b"x") == b"b"
    assert ring.open_text(sealed, aad=b"x") == "a"


def test_no_key_is_an_error() -> None:
    ring = Keyring()
    with pytest.raises(EncryptionError) as exc:
        ring.encrypt(b"x", aad=b"")
    assert exc.value.code == "no-key"
    with pytest.raises(EncryptionError) as exc:
        ring.blind_index("x", context="PATIENTS.mrn")
    assert exc.value.code == "no-key"
    with pytest.raises(EncryptionError):
        ring.add(KeyInfo(key_id=1, purpose=Purpose.DATA, active_from=T0), b"short")


def test_activation_picks_newest_ready_key_and_old_keys_still_read() -> None:
    ring = Keyring()
    ring.add(KeyInfo(key_id=1, purpose=Purpose.DATA, active_from=T0), generate_key())
    ring.add(
        KeyInfo(key_id=2, purpose=Purpose.DATA, active_from=T0 + timedelta(minutes=1)),
        generate_key(),
    )
    assert ring.activate(T0) == 1
    old = ring.encrypt(b"old", aad=b"")
    assert ring.activate(T0 + timedelta(minutes=1)) == 2
    assert Keyring.key_id_of(ring.encrypt(b"new", aad=b"")) == 2
    assert ring.decrypt(old, aad=b"") == b"old"


def test_blind_index_is_keyed_deterministic_and_per_context() -> None:
    ring = ephemeral_keyring()
    a = ring.blind_index("MRN-0042", context="PATIENTS.mrn")
    assert a == ring.blind_index("MRN-0042", context="PATIENTS.mrn")
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != ring.blind_index("MRN-0043", context="PATIENTS.mrn")
    assert a != ring.blind_index("MRN-0042", context="VISITS.mrn")
    assert a != ephemeral_keyring().blind_index("MRN-0042", context="PATIENTS.mrn")


def test_oldest_index_key_wins_in_any_order() -> None:
    k1, k2 = generate_key(), generate_key()
    forward, backward = Keyring(), Keyring()
    i1 = KeyInfo(key_id=1, purpose=Purpose.INDEX, active_from=T0)
    i2 = KeyInfo(key_id=2, purpose=Purpose.INDEX, active_from=T0)
    forward.add(i1, k1)
    forward.add(i2, k2)
    backward.add(i2, k2)
    backward.add(i1, k1)
    assert forward.blind_index("v", context="c") == backward.blind_index("v", context="c")


def test_local_kek_wraps_and_names_itself_without_revealing_the_key() -> None:
    key = generate_key()
    kek = LocalKek(key)
    assert kek.kek_id == LocalKek(key).kek_id != LocalKek(generate_key()).kek_id
    assert base64.b64encode(key).decode() not in kek.kek_id and key.hex()[:16] not in kek.kek_id
    dek = generate_key()
    wrapped = kek.wrap(dek, aad=wrap_aad(Purpose.DATA))
    assert dek not in wrapped
    assert kek.unwrap(wrapped, aad=wrap_aad(Purpose.DATA)) == dek
    with pytest.raises(EncryptionError) as exc:
        kek.unwrap(wrapped, aad=wrap_aad(Purpose.INDEX))
    assert exc.value.code == "tampered"
    with pytest.raises(EncryptionError):
        LocalKek(generate_key()).unwrap(wrapped, aad=wrap_aad(Purpose.DATA))
    with pytest.raises(EncryptionError):
        LocalKek(b"0" * 16)


def test_a_clock_behind_the_keys_still_has_an_active_key() -> None:
    ring = Keyring()
    later = T0 + timedelta(days=1)
    ring.add(KeyInfo(key_id=3, purpose=Purpose.DATA, active_from=later), generate_key())
    ring.add(
        KeyInfo(key_id=4, purpose=Purpose.DATA, active_from=later + timedelta(1)), generate_key()
    )
    assert ring.activate(T0) == 3
    assert ring.activate(later + timedelta(days=2)) == 4
