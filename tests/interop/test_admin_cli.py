"""Administrator commands against a running server take effect on live sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.helpers import own_server, raw_login
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"CAREWIRE_XMPP_ACCOUNT_CHECK_INTERVAL": "1s"}
    with own_server(tmp_path_factory, "admin", env, accounts=4) as server:
        yield server


async def test_removing_an_online_user_ends_the_session(admin_server: RunningServer) -> None:
    """`carewire user remove` while the user is connected: the stream ends with not-authorized."""
    leaving = await raw_login(admin_server)
    staying = await raw_login(admin_server)
    try:
        login = leaving.jid.split("@", 1)[0]
        r = admin_server.cli("user", "remove", login)
        assert r.returncode == 0, r.stderr
        text = await leaving.read_until_closed(timeout=10)
        assert "<not-authorized" in text and "account removed" in text
        await staying.ping()  # everyone else is untouched
    finally:
        await leaving.aclose()
        await staying.aclose()
