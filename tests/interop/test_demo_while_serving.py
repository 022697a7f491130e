"""``carewire demo`` while the server runs: the server takes up the new datasets and rules.

The demo used to leave the running server ignorant of NURSE_CALLS: the first nurse call's
alert stayed Queued until a restart called it "interrupted". Now the demo signals the
server, which re-reads the definitions at once, and the call's alert is sent.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from carewire.demo_data import ALERT_RULE, BACKUP_AFTER, BACKUP_RULE
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
    # One token per test: the tests share the module's server, and token names are unique.
    name = f"demo-later-{uuid.uuid4().hex[:8]}"
    r = server.cli("token", "create", name, "--role", "admin")
    assert r.returncode == 0, r.stderr
    return httpx.Client(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    )


def _final_status(api: httpx.Client, rule: str, source: str | None = None) -> str | None:
    got = api.get("/deliveries", params={"limit": 100}).json()["deliveries"]
    found = [
        d["values"]
        for d in got
        if d["values"].get("rule") == rule and source in (None, d["values"].get("source"))
    ]
    if found and found[0]["status"] in FINAL:
        return f"{found[0]['status']}: {found[0].get('status_text')}"
    return None


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

        status = _poll(lambda: _final_status(api, ALERT_RULE))
        assert isinstance(status, str), "the nurse call's alert never left Queued"
        assert status.startswith(("Delivered", "Pending")), status


def test_a_call_nobody_is_assigned_to_escalates_at_once(server: RunningServer) -> None:
    """The level-1 nurse's assignment ended: the alert notifies nobody, the backup goes now."""
    if server.cli("demo").returncode != 0:  # idempotent: the module's first test may have run
        pytest.fail("carewire demo failed")
    bed = "Med-Surg 4-402B"
    with _api(server) as api:
        assert _poll(lambda: api.get("/datasets/ASSIGNMENTS/records").status_code == 200)
        found = api.get(
            "/datasets/ASSIGNMENTS/records", params={"filter": f"assignment_id:eq:{bed}-1"}
        ).json()["records"]
        assert len(found) == 1, found
        r = api.patch(
            f"/datasets/ASSIGNMENTS/records/{found[0]['id']}", json={"values": {"state": "expired"}}
        )
        assert r.status_code == 200, r.text
        started = time.monotonic()
        call = server.cli("demo", "nurse-call", bed)
        assert call.returncode == 0, call.stderr
        record = re.search(r"NURSE_CALLS record (\d+)", call.stdout)
        assert record is not None, call.stdout
        source = f"NURSE_CALLS/{record.group(1)}"

        status = _poll(lambda: _final_status(api, BACKUP_RULE, source), timeout=BACKUP_AFTER / 2)
        assert isinstance(status, str), "the backup waited out its delay"
        assert status.startswith("Delivered"), status
        assert time.monotonic() - started < BACKUP_AFTER
        primary = _final_status(api, ALERT_RULE, source)
        assert primary is not None and "notified 0" in primary, primary
