"""Key-encryption key sources: the key file (modes, format) and the environment variable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from carewire.security.envelope import EncryptionError, generate_key
from carewire.security.keys import (
    KEK_ENV,
    ConfiguredKek,
    ProcessKek,
    create_key_file,
    encode_key,
    parse_keys,
    write_key_file,
)


def test_created_key_file_is_private_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "data-keys" / "kek"
    assert create_key_file(path) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    keks = ConfiguredKek(key_file=path, env={}).load()
    assert len(keks) == 1
    assert create_key_file(path) is False  # never overwritten
    assert ConfiguredKek(key_file=path, env={}).load()[0].kek_id == keks[0].kek_id


def test_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    write_key_file(path, [generate_key()])
    os.chmod(path, 0o644)
    with pytest.raises(EncryptionError) as exc:
        ConfiguredKek(key_file=path, env={}).load()
    assert exc.value.code == "insecure-key-file" and "chmod 600" in exc.value.message


def test_missing_key_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(EncryptionError) as exc:
        ConfiguredKek(key_file=tmp_path / "nope", env={}).load()
    assert exc.value.code == "no-key" and KEK_ENV in exc.value.message


def test_environment_wins_and_lists_current_first(tmp_path: Path) -> None:
    new, old = generate_key(), generate_key()
    source = ConfiguredKek(
        key_file=tmp_path / "absent", env={KEK_ENV: f"{encode_key(new)}, {encode_key(old)}"}
    )
    assert source.is_env and source.name == f"${KEK_ENV}"
    keks = source.load()
    assert [k.kek_id for k in keks] == [
        parse_keys(encode_key(new), "x")[0].kek_id,
        parse_keys(encode_key(old), "x")[0].kek_id,
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("not base64!", "key 1"),
        (encode_key(b"short"), "32 bytes"),
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(text: str, fragment: str) -> None:
    with pytest.raises(EncryptionError) as exc:
        parse_keys(text, "the file")
    assert fragment in exc.value.message and exc.value.code == "malformed"
    if text.strip() and not text.startswith("#"):
        assert text.strip() not in exc.value.message


def test_key_file_comments_and_several_keys(tmp_path: Path) -> None:
    a, b = generate_key(), generate_key()
    path = tmp_path / "kek"
    write_key_file(path, [a, b])
    text = path.read_text()
    assert text.startswith("#") and encode_key(a) in text and encode_key(b) in text
    assert len(ConfiguredKek(key_file=path, env={}).load()) == 2


def test_process_kek_is_stable_within_the_process() -> None:
    assert ProcessKek().load()[0].kek_id == ProcessKek().load()[0].kek_id
