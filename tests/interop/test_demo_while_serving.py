"""``carewire demo`` while the server runs: the server takes up the new datasets and rules.

The demo used to leave the running server ignorant of NURSE_CALLS: the first nurse call's
alert stayed Queued until a restart called it "interrupted". Now the demo signals the
server, which re-reads the definitions at once, and the call's alert is sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from carewire.demo_data import ALERT_RULE
from tests.serverproc import RunningServer, init_data_dir, server_env, serving

pytestmark = pytest.mark.interop
FINAL = {"Delivered", "Pending", "Error", "Cancelled"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("demo-later")
    env = server_env()
    init_data_dir(data_dir, accounts=0, env=env)  # no demo yet
    with serving(data_dir, accounts=0, env=env) as s:
        yield s


def _api(server: RunningServer) -> httpx.Client:
    r = server.cli("token", "create", "demo-later", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return httpx.Client(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    )


def _poll(check: object, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_demo_loaded_while_serving_is_taken_up_and_its_alerts_sent(server: RunningServer) -> None:
    with _api(server) as api:
        assert api.get("/datasets/NURSE_CALLS/records").status_code == 404
        r = server.cli("demo")
        assert r.returncode == 0, r.stderr
        assert "the running server (pid" in r.stdout, r.stdout

        def known() -> bool:
            return api.get("/datasets/NURSE_CALLS/records").status_code == 200

        assert _poll(known), "the server never learnt of NURSE_CALLS"

        r = server.cli("demo", "nurse-call", "ICU-101A")
        assert r.returncode == 0, r.stderr

        def alert_status() -> str | None:
            got = api.get("/deliveries", params={"limit": 100}).json()["deliveries"]
            found = [d["values"] for d in got if d["values"].get("rule") == ALERT_RULE]
            if found and found[0]["status"] in FINAL:
                return f"{found[0]['status']}: {found[0].get('status_text')}"
            return None

        status = _poll(alert_status)
        assert isinstance(status, str), "the nurse call's alert never left Queued"
        assert status.startswith(("Delivered", "Pending")), status
