"""File sharing's input checks (carewire.uploads.checks): pure, no event loop."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from carewire.uploads import UploadError, UploadRecord, UploadState
from carewire.uploads.checks import check_content_type, check_filename, check_put, same_type

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SLOT = UploadRecord(
    file_id="f" * 32,
    token_hash="0" * 64,
    owner="alice",
    filename="cw1:x",
    content_type="image/png",
    size=10,
    state=UploadState.SLOT,
    created_at=NOW,
    slot_expires_at=NOW + timedelta(minutes=5),
    expires_at=NOW + timedelta(days=7),
)


def test_names_and_types() -> None:
    assert check_filename("résumé 2.pdf") == "résumé 2.pdf"
    for bad in ("", ".", "..", "a/b", "a\\b", "a\x00b", "a\nb", "a\x7fb", "é" * 128):
        with pytest.raises(UploadError) as err:
            check_filename(bad)
        assert err.value.code == "bad-request"
    assert check_content_type(None) == "application/octet-stream"
    assert check_content_type(" Image/PNG ") == "image/png"
    assert check_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    for bad in ("png", "/png", "image/", "text/html\r\nx: y", "a/" + "b" * 300):
        with pytest.raises(UploadError):
            check_content_type(bad)
    assert same_type("IMAGE/png; q=1", "image/png")
    assert not same_type("image/jpeg", "image/png")


@pytest.mark.parametrize(
    ("changes", "length", "ctype", "code"),
    [
        ({"state": UploadState.RECEIVING}, 10, "image/png", "conflict"),
        ({"state": UploadState.STORED}, 10, "image/png", "conflict"),
        ({"slot_expires_at": NOW}, 10, "image/png", "expired"),
        ({}, None, "image/png", "length-required"),
        ({}, 11, "image/png", "too-large"),
        ({}, 9, "image/png", "size-mismatch"),
        ({}, 10, "text/html", "type-mismatch"),
        ({}, 10, None, "type-mismatch"),
    ],
)
def test_put_refusals(
    changes: dict[str, object], length: int | None, ctype: str | None, code: str
) -> None:
    with pytest.raises(UploadError) as err:
        check_put(replace(SLOT, **changes), NOW, length=length, content_type=ctype)  # type: ignore[arg-type]
    assert err.value.code == code


def test_a_matching_put_passes() -> None:
    check_put(SLOT, NOW, length=10, content_type="image/png; charset=binary")
