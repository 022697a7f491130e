"""Alert raised → push request at the local APNs endpoint, with N offline devices.

``python -m bench.push_latency [--devices 200] [--rounds 5] [--workers 16]``
assembles the whole server in process (the feature test harness) with push
configured against the local HTTP/2 APNs server of the tests
(``tests/push/pushserver.py``, real TLS and HTTP/2 on 127.0.0.1). N users
each register a device token with ``push.DOMAIN`` and enable XEP-0357, then
go offline. Each round raises one Urgent alert to all of them through the
XMPP adapter's gateway (the path a rule's Send Alert takes) and measures, per
device, the time from the call until the APNs endpoint holds the complete
request. Target: **p99 < 100 ms with 200 offline devices**.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.features.harness import Harness
from tests.push.pushserver import PushServer
from tests.push.test_feature import push_harness

from carewire.adapters.xmpp.gateway import AlertRequest, ChatGateway
from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent
from carewire.push.settings import TOKEN, ApnsSettings, PushSettings

TARGET_P99_MS = 100.0


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _devices(h: Harness, n: int) -> list[str]:
    """``n`` users, each with a registered, enabled and then offline device."""
    assert h.platform is not None and h.platform.push is not None
    app = h.platform.push
    logins = [f"bench{i:04d}" for i in range(n)]
    for i, login in enumerate(logins):
        await h.account(login)
        reg, secret = await app.register(login, "phone", service="apns", token=f"{i:064x}")
        session, sink = await h.bind(login, "phone")
        await h.send(
            session,
            f"<iq type='set' id='e'><enable xmlns='urn:xmpp:push:0' jid='push.{h.domain}'"
            f" node='{reg.node}'><x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options"
            f"</value></field><field var='secret'><value>{secret}</value></field></x>"
            "</enable></iq>",
        )
        (reply,) = sink.take()
        assert reply.get("type") == "result"
        await h.unbind(session)
    return logins


async def run(devices: int, rounds: int, workers: int) -> dict[str, float]:
    """Raise ``rounds`` Urgent alerts to ``devices`` offline devices; latency figures (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        key = ec.generate_private_key(ec.SECP256R1())
        (folder / "AuthKey.p8").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        server = PushServer(folder=folder, apns_key=key.public_key(), apns_key_id="BENCHKEY01")
        await server.start()
        apns = ApnsSettings(
            endpoint=server.url,
            topic="org.carewire.bench",
            auth=TOKEN,
            key_file=folder / "AuthKey.p8",
            key_id="BENCHKEY01",
            team_id="BENCHTEAM1",
        )
        settings = PushSettings(apns=apns, ca_file=server.cert_file, workers=workers)
        h = await push_harness(folder, settings)
        try:
            assert h.platform is not None
            logins = await _devices(h, devices)
            gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
            assert gateway is not None
            latencies: list[float] = []
            own: list[float] = []  # from the device's own message stored to its push received
            raise_ms: list[float] = []
            stored: dict[str, float] = {}

            def on_stored(event: StanzaEvent) -> None:
                if event.to_jid is not None and event.to_jid.localpart is not None:
                    stored[event.to_jid.localpart] = time.monotonic()

            h.kernel.hooks.on(H.MESSAGE_STORED, on_stored, priority=100)
            for n in range(rounds):
                delivery = await h.platform.datasets.create(
                    "DELIVERIES", {"status": "Processing", "triggered_at": h.clock.now()}
                )
                before = len(server.pushes())
                t0 = time.monotonic()
                await gateway.send_alert(
                    AlertRequest(
                        recipients=tuple(f"{u}@{h.domain}" for u in logins),
                        source=f"NURSE_CALLS/{n}",
                        delivery_id=delivery.id,
                        subject="Call",
                        message="Bed 4",
                        ttl=10,
                        priority="Urgent",
                        accept=True,
                    )
                )
                raise_ms.append((time.monotonic() - t0) * 1000)
                got = await server.wait_for(before + devices, timeout=60)
                latencies += [(r.at - t0) * 1000 for r in got[before:]]
                for r in got[before:]:
                    login = logins[int(r.path.rsplit("/", 1)[1], 16)]
                    own.append((r.at - stored[login]) * 1000)
                await h.platform.push.drain()  # type: ignore[union-attr]
            return {
                "devices": devices,
                "pushes": len(latencies),
                "send_alert_ms_mean": statistics.fmean(raise_ms),
                "p50_ms": _percentile(latencies, 50),
                "p90_ms": _percentile(latencies, 90),
                "p99_ms": _percentile(latencies, 99),
                "max_ms": max(latencies),
                "stored_to_push_p50_ms": _percentile(own, 50),
                "stored_to_push_p99_ms": _percentile(own, 99),
            }
        finally:
            await h.close()
            await server.close()


def main() -> None:
    """Parse arguments, run, print the figures and PASS/FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    figures = asyncio.run(run(args.devices, args.rounds, args.workers))
    for name, value in figures.items():
        print(f"{name:>20}: {value:.1f}" if isinstance(value, float) else f"{name:>20}: {value}")
    verdict = "PASS" if figures["p99_ms"] < TARGET_P99_MS else "FAIL"
    print(f"alert → APNs request p99 < {TARGET_P99_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
