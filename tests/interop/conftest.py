"""A shared server per test worker; every test uses its own fresh accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.interop.federated import federated_servers
from tests.interop.rawclient import close_leftover_clients
from tests.interop.slix import SlixClient, clients
from tests.serverproc import (
    DEMO_ACCOUNTS,
    RunningServer,
    init_data_dir,
    running_server,
    server_env,
    serving,
)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("server"), accounts=400) as s:
        yield s


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with ``carewire demo`` loaded (the hospital, its staff and nurse-call rules).

    Shared by the alert tests of several modules (test_alert_loop, test_profanity): each uses
    staff and beds of its own, and reads room names from what it created.
    """
    data_dir = tmp_path_factory.mktemp("demo")
    env = server_env()
    init_data_dir(data_dir, accounts=DEMO_ACCOUNTS, env=env, demo=True)
    with serving(data_dir, accounts=DEMO_ACCOUNTS, env=env) as s:
        yield s


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three federating servers (tests/interop/federated.py), started once per worker.

    The modules using it share an xdist group (tests/conftest.py ``_SHARED_GROUPS``).
    """
    with federated_servers(tmp_path_factory.mktemp) as servers:
        yield servers


@pytest.fixture(autouse=True)
async def _close_raw_clients() -> AsyncIterator[None]:
    """Abort the raw connections a test left open, so a failure does not leak sockets."""
    yield
    await close_leftover_clients()


@pytest.fixture
async def slix() -> AsyncIterator[Callable[..., Awaitable[SlixClient]]]:
    """slixmpp clients: ``await slix(server, login, password, ...)``; all end disconnected."""
    async with clients() as make:
        yield make
