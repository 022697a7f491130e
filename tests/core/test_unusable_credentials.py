"""``unusable_credentials``: keys of the right shape that no password opens, without stretching."""

from __future__ import annotations

from carewire.core.accounts import derive_credentials, unusable_credentials
from carewire.xmpp.sasl import StoredKeys, check_password


def test_no_password_opens_them_and_they_look_like_derived_keys() -> None:
    derived = {c.mechanism: c for c in derive_credentials("a password", 4096)}
    made = unusable_credentials(4096)
    assert [c.mechanism for c in made] == list(derived)
    for cred in made:
        like = derived[cred.mechanism]
        assert len(cred.stored_key) == len(like.stored_key)
        assert len(cred.server_key) == len(like.server_key)
        assert cred.iterations == 4096 and len(cred.salt) == 16
        keys = StoredKeys(
            salt=cred.salt,
            iterations=cred.iterations,
            stored_key=cred.stored_key,
            server_key=cred.server_key,
        )
        for guess in ("", "a password", "correct horse battery"):
            assert not check_password(guess, cred.mechanism, keys)
    again = unusable_credentials(4096)
    assert {c.stored_key for c in again}.isdisjoint(c.stored_key for c in made)
