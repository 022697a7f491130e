"""Fixtures for the rules tests (databases from the storage suite)."""

from __future__ import annotations

from tests.storage.conftest import db_url  # noqa: F401
