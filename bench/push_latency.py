"""Alert raised → push request at the local APNs endpoint, with N unreachable devices.

``python -m bench.push_latency [--devices 200] [--rounds 5] [--workers 16] [--mode both]``
assembles the whole server in process (the feature test harness) with push
configured against the local HTTP/2 APNs server of the tests
(``tests/push/pushserver.py``, real TLS and HTTP/2 on 127.0.0.1), run in its
own process as APNs is not in the server's. N users each register a device
token with ``push.DOMAIN`` and enable XEP-0357, then go offline (or stay
detached, ``--mode``). Each round raises one Urgent alert to all of them
through the XMPP adapter's gateway (the path a rule's Send Alert takes) and
measures, per device, the time from the call until the endpoint has read the
bytes that complete the request (``p*_ms``; the time the endpoint then spends
parsing them, HPACK and frames in Python, is the stand-in's own and reported
apart as ``parsed_p*_ms``), and apart from that the time from the moment the device's
own copy of the alert was stored or handed to its session (negative when the
push left before the copy was stored, as it does since pushes are raised
with the alert).
Target: **p99 < 100 ms with 200 offline devices**.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.features.harness import Harness
from tests.push.pushserver import PushServer
from tests.push.test_feature import push_harness

from carewire.adapters.xmpp.gateway import AlertRequest, ChatGateway
from carewire.core import hook_names as H
from carewire.core.events import DeliveryEvent, StanzaEvent
from carewire.core.sessions import StreamManagement
from carewire.features.tracking import MessageTracker
from carewire.process import settle_heap
from carewire.push.settings import TOKEN, ApnsSettings, PushSettings
from carewire.xmpp.alert import ALERT

TARGET_P99_MS = 100.0
SETTLE_SECONDS = 1.0
KEY_ID = "BENCHKEY01"


def _endpoint(folder: str, public_pem: bytes, orders: Queue[str], out: Queue[object]) -> None:
    """The local APNs endpoint in its own process (as APNs is not in the server's process).

    Answers ``out`` with (port, certificate path) once listening; then, for each
    ``records`` order, the (path, arrival time, parsed time) of every push so far; ``stop`` ends it.
    CLOCK_MONOTONIC is system-wide, so its times compare with the server's.
    """

    async def serve() -> None:
        key = serialization.load_pem_public_key(public_pem)
        assert isinstance(key, ec.EllipticCurvePublicKey)
        server = PushServer(folder=Path(folder), apns_key=key, apns_key_id=KEY_ID)
        await server.start()
        out.put((server.port, str(server.cert_file)))
        loop = asyncio.get_running_loop()
        try:
            while (order := await loop.run_in_executor(None, orders.get)) != "stop":
                assert order == "records"
                out.put([(r.path, r.at, r.parsed_at) for r in server.pushes()])
        finally:
            await server.close()

    asyncio.run(serve())


async def _records(orders: Queue[str], out: Queue[object]) -> list[tuple[str, float, float]]:
    orders.put("records")
    got = await asyncio.to_thread(out.get, True, 30)
    assert isinstance(got, list)
    return got


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _devices(h: Harness, n: int, *, detached: bool) -> list[str]:
    """``n`` users, each with a registered, enabled and then unreachable device.

    Unreachable: offline (no session: the alert goes to offline storage), or
    ``detached`` (XEP-0198: the phone's connection broke, the session waits
    for resumption, as in the first minutes after the OS suspended the app).
    """
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
        if detached:
            await h.send(session, "<presence/>")
            session.sm = StreamManagement(max_unacked=100_000, resume_deadline=1e12)
        else:
            await h.unbind(session)
    return logins


async def _settle(h: Harness) -> None:
    """Let the set-up's writes (tracking, presence records) finish before the first alert.

    Otherwise the first alert's own commit waits behind 200 logins' worth of them.
    """
    assert h.platform is not None and h.platform.push is not None
    tracker = h.kernel.ctx.find(MessageTracker)
    if tracker is not None:
        await tracker.flush()
    await h.platform.push.drain()
    await asyncio.sleep(SETTLE_SECONDS)


async def run(devices: int, rounds: int, workers: int, *, detached: bool) -> dict[str, float | str]:
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
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        spawn = multiprocessing.get_context("spawn")
        orders: Queue[str] = spawn.Queue()
        out: Queue[object] = spawn.Queue()
        endpoint = spawn.Process(target=_endpoint, args=(tmp, public, orders, out), daemon=True)
        endpoint.start()
        ready = out.get(timeout=60)
        assert isinstance(ready, tuple)
        port, cert_file = int(ready[0]), str(ready[1])
        apns = ApnsSettings(
            endpoint=f"https://127.0.0.1:{port}",
            topic="org.carewire.bench",
            auth=TOKEN,
            key_file=folder / "AuthKey.p8",
            key_id=KEY_ID,
            team_id="BENCHTEAM1",
        )
        settings = PushSettings(apns=apns, ca_file=Path(cert_file), workers=workers)
        h = await push_harness(folder, settings)
        settle_heap()  # as `carewire serve` does once started
        try:
            assert h.platform is not None
            logins = await _devices(h, devices, detached=detached)
            await _settle(h)
            gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
            assert gateway is not None
            latencies: list[float] = []
            parsed: list[float] = []  # the same, until the stand-in endpoint had parsed them
            round_max: list[float] = []
            own: list[float] = []  # from the device's own message stored to its push received
            raise_ms: list[float] = []
            stored: dict[str, float] = {}

            def on_stored(event: StanzaEvent) -> None:
                # The alert's copy only (not the room's invitation, stored after it).
                to = event.to_jid
                is_alert = event.stanza.find(ALERT) is not None
                if is_alert and to is not None and to.localpart is not None:
                    stored[to.localpart] = time.monotonic()

            def on_deliver(event: DeliveryEvent) -> bool:
                if event.stanza.find(ALERT) is not None:
                    stored[event.session.username] = time.monotonic()
                return False

            h.kernel.hooks.on(H.MESSAGE_STORED, on_stored, priority=100)
            h.kernel.hooks.on(H.SESSION_DELIVER, on_deliver, priority=10_000)
            for n in range(rounds):
                delivery = await h.platform.datasets.create(
                    "DELIVERIES", {"status": "Processing", "triggered_at": h.clock.now()}
                )
                before = len(await _records(orders, out))
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
                await h.platform.push.drain()  # type: ignore[union-attr]
                got = (await _records(orders, out))[before:]
                assert len(got) == devices, f"{len(got)} of {devices} pushes arrived"
                latencies += [(at - t0) * 1000 for _, at, _ in got]
                parsed += [(done - t0) * 1000 for _, _, done in got]
                round_max.append(max((at - t0) * 1000 for _, at, _ in got))
                for path, at, _ in got:
                    own.append((at - stored[logins[int(path.rsplit("/", 1)[1], 16)]]) * 1000)
            return {
                "mode": "detached" if detached else "offline",
                "devices": devices,
                "pushes": len(latencies),
                "send_alert_ms_mean": statistics.fmean(raise_ms),
                "p50_ms": _percentile(latencies, 50),
                "p90_ms": _percentile(latencies, 90),
                "p99_ms": _percentile(latencies, 99),
                "max_ms": max(latencies),
                "round_max_ms": " / ".join(f"{m:.0f}" for m in round_max),
                "parsed_p50_ms": _percentile(parsed, 50),
                "parsed_p99_ms": _percentile(parsed, 99),
                "handed_to_push_p50_ms": _percentile(own, 50),
                "handed_to_push_p99_ms": _percentile(own, 99),
            }
        finally:
            await h.close()
            orders.put("stop")
            await asyncio.to_thread(endpoint.join, 10)


def main() -> None:
    """Parse arguments, run, print the figures and PASS/FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument(
        "--mode",
        choices=("offline", "detached", "both"),
        default="both",
        help="offline: no session; detached: an XEP-0198 session waiting for resumption",
    )
    args = parser.parse_args()
    modes = ("offline", "detached") if args.mode == "both" else (args.mode,)
    for mode in modes:
        figures = asyncio.run(
            run(args.devices, args.rounds, args.workers, detached=mode == "detached")
        )
        _report(figures)


def _report(figures: dict[str, float | str]) -> None:
    print()
    for name, value in figures.items():
        print(f"{name:>20}: {value:.1f}" if isinstance(value, float) else f"{name:>20}: {value}")
    p99 = figures["p99_ms"]
    verdict = "PASS" if isinstance(p99, float) and p99 < TARGET_P99_MS else "FAIL"
    print(f"alert → APNs request p99 < {TARGET_P99_MS:.0f} ms ({figures['mode']}): {verdict}")


if __name__ == "__main__":
    main()
