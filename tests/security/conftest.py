"""Fixtures for the security tests: the parametrized database of the storage tests."""

from __future__ import annotations

from tests.storage.conftest import db_url

__all__ = ["db_url"]
