"""``/metrics`` of a real server: the token on the HTTPS port, the loopback port, real logins
over TLS, and an alert raised through the REST API and received by a real client landing in
the alert latency histogram (docs/monitoring.md)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.interop.rawclient import RawClient, close_leftover_clients
from tests.interop.wsclient import WsXmpp
from tests.monitoring.alerting import RULE, raise_and_receive
from tests.serverproc import RunningServer, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"CAREWIRE_METRICS_LISTEN": "127.0.0.1:0", "CAREWIRE_LOG_FORMAT": "json"}
    with running_server(tmp_path_factory.mktemp("metrics"), accounts=8, env=env) as s:
        yield s


@pytest.fixture(autouse=True)
async def _close_raw_clients() -> AsyncIterator[None]:
    yield
    await close_leftover_clients()


def token_of(server: RunningServer) -> str:
    return (server.data_dir / "keys" / "metrics.token").read_text().strip()


async def scrape(server: RunningServer, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(verify=False, timeout=10) as client:
        return await client.get(
            f"https://127.0.0.1:{server.ports['https']}/metrics", headers=headers
        )


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)$", line)
        if m is None or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return 0.0


async def metrics(server: RunningServer) -> str:
    r = await scrape(server, token_of(server))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


async def test_without_the_token_or_with_another_it_is_401(server: RunningServer) -> None:
    r = await scrape(server)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "carewire_" not in r.text
    wrong = await scrape(server, "x" * len(token_of(server)))
    assert wrong.status_code == 401
    assert (await scrape(server, token_of(server))).status_code == 200


async def test_the_loopback_port_answers_without_a_token_and_only_at_metrics(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"http://127.0.0.1:{server.ports['metrics']}/metrics")
        other = await client.get(f"http://127.0.0.1:{server.ports['metrics']}/")
    assert r.status_code == 200 and "carewire_build_info" in r.text
    assert other.status_code == 404


async def test_a_login_over_tls_and_a_wrong_password_are_counted(server: RunningServer) -> None:
    before = await metrics(server)
    (login, password), (other, _) = server.account(), server.account()
    client = await RawClient.login(server.ports["c2s"], login, password, domain=server.domain)
    assert client.ssl_object is not None  # STARTTLS before the password
    bad = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await bad.open_stream()
    await bad.starttls()
    assert "not-authorized" in await bad.authenticate(other, "wrong password")
    after = await metrics(server)
    logins = ("carewire_logins_total", {"mechanism": "PLAIN"})
    failures = ("carewire_login_failures_total", {"mechanism": "PLAIN", "reason": "not-authorized"})
    assert sample(after, logins[0], **logins[1]) == sample(before, logins[0], **logins[1]) + 1
    assert (
        sample(after, failures[0], **failures[1]) == sample(before, failures[0], **failures[1]) + 1
    )
    assert sample(after, "carewire_connections", kind="c2s") >= 1
    await client.send(
        f"<iq type='get' id='p1' to='{server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    await client.read_iq_reply("p1")
    later = await metrics(server)
    assert sample(later, "carewire_stanzas_in_total", kind="iq", via="c2s") >= 1
    assert sample(later, "carewire_stanzas_out_total", kind="iq", via="c2s") >= 1
    assert sample(later, "carewire_db_latency_seconds_count", kind="transaction") > 0


async def _eventually_metric(server: RunningServer, name: str, at_least: float) -> str:
    deadline = time.monotonic() + 20
    while True:
        text = await metrics(server)
        if sample(text, name) >= at_least:
            return text
        assert time.monotonic() < deadline, f"{name} stayed below {at_least}:\n{text}"
        await asyncio.sleep(0.1)


async def test_an_alert_received_by_a_client_lands_in_the_latency_histogram(
    server: RunningServer,
) -> None:
    login, password = server.account()
    nurse = await RawClient.login(server.ports["c2s"], login, password, domain=server.domain)
    await nurse.send("<presence/>")
    before = await metrics(server)
    await raise_and_receive(server, nurse, login)
    count = sample(before, "carewire_alert_latency_seconds_count")
    after = await _eventually_metric(server, "carewire_alert_latency_seconds_count", count + 1)
    assert sample(after, "carewire_alert_latency_seconds_sum") > 0
    assert sample(after, "carewire_alert_latency_seconds_bucket", le="+Inf") == count + 1
    assert sample(after, "carewire_rule_firings_total", rule=RULE) == 1
    assert sample(after, "carewire_message_deliveries_total", state="received") >= 1
    assert sample(after, "carewire_alerts_open") >= 1  # received, not acknowledged
    assert 'carewire_queue_depth{queue="offline_users"}' in after


def test_json_log_lines_parse_and_carry_no_passwords(server: RunningServer) -> None:
    lines = [x for x in (server.data_dir / "serve.log").read_text().splitlines() if x.strip()]
    records = [json.loads(x) for x in lines if x.startswith("{")]
    assert records, lines[:5]
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    assert any(r["logger"] == "carewire.server" for r in records)
    assert not any("pw-user" in line for line in lines)


async def test_a_websocket_session_is_counted_while_it_lasts(server: RunningServer) -> None:
    login, password = server.account()
    async with WsXmpp.connect(server) as ws:
        await ws.login(login, password)
        during = await metrics(server)
        assert sample(during, "carewire_connections", kind="websocket") == 1
        assert sample(during, "carewire_logins_total", mechanism="PLAIN") >= 1
        await ws.close()
    deadline = time.monotonic() + 10
    while sample(await metrics(server), "carewire_connections", kind="websocket") != 0:
        assert time.monotonic() < deadline, "the WebSocket connection stayed counted"
        await asyncio.sleep(0.05)
