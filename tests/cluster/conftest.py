"""The Redis switch for the cluster tests, and a key prefix per test.

Cluster tests run only when ``CAREWIRE_TEST_REDIS_URL`` is set (``.ci/run`` sets
it and starts Redis if it is down); without it they are skipped, and the run
says so loudly (tests/conftest.py). Each test gets its own key prefix, so tests
sharing one Redis never see each other's keys, and the keys are deleted after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

REDIS_URL_ENV = "CAREWIRE_TEST_REDIS_URL"


def redis_base_url() -> str | None:
    """The Redis URL for tests, or None when not configured."""
    return os.environ.get(REDIS_URL_ENV) or None


@pytest.fixture
def redis_url() -> str:
    url = redis_base_url()
    if url is None:
        pytest.skip(f"Redis tests SKIPPED: set {REDIS_URL_ENV}=redis://127.0.0.1:6379/0")
    return url


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A fresh ``cw-test-<hex>:`` key prefix; its keys are deleted after the test."""
    import redis.asyncio as aioredis

    prefix = f"cw-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
