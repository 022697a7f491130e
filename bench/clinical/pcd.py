"""``pcd``: device alarms (IHE PCD-04, ORU^R40) over MLLP alert the bed's Primary nurse.

Set-up through the REST API: a bed per logged-in nurse (room, bed and location
of the facility :data:`FACILITY`), the nurse's active ``Primary`` assignment at
it, a PCD Alarms adapter listening on a free port of the server's address, and
the PCD adapter's example alert rule (``pcd-alarm``; not the escalation,
which would fire after the run). A monitor gateway then sends
alarms over **one** MLLP connection at a steady rate, open loop (it does not wait
for an ACK before the next alarm is due), each to the next nurse's bed.

Measured per alarm: from just before its bytes are written (on loopback, when the
server receives it) to the moment the nurse's session receives the alert, and to
the moment the ACK (sent after the alarm's record is committed) arrives. Target:
alert p99 **under 200 ms with 200 clients connected**.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.clinical.alerts import AlertTracker
from bench.clinical.common import (
    MIN_SLEEP,
    Api,
    SetupError,
    _at_least,
    _below,
    _failed,
    _ms,
    _problem,
)
from bench.scenarios import (
    BenchContext,
    _finish_profile,
    _login_report,
    _maybe_profile,
    close_all,
    login_many,
)
from bench.stats import CpuMeter, LoopMonitor, quiet_gc, summary_ms
from carewire.adapters.hl7.ack import AckCode, ack_code
from carewire.adapters.hl7.mllp import MllpFramer, frame
from carewire.adapters.pcd.examples import ALERT_RULE, example_rules
from carewire.rules.model import rule_to_data

TARGET_P99_MS = 200.0
ADAPTER = "Bench Monitors"
XMPP_ADAPTER = "XMPP"
FACILITY = "Bench General"
UNIT = "PCDU"
RULE = ALERT_RULE  # its priority is the alarm's: PM, sent here, maps to Urgent
SET_UP_IN_FLIGHT = 16
ACK_TIMEOUT = 10.0


def _bed(i: int) -> tuple[str, str]:
    """Room number and bed number of nurse ``i``'s bed (two beds a room)."""
    return f"{9000 + i // 2}", "AB"[i % 2]


def _records(i: int, nurse: str) -> list[tuple[str, dict[str, Any]]]:
    """The records (dataset, values) that put ``nurse`` on shift at bed ``i``."""
    room_number, bed_number = _bed(i)
    facility = {"name": FACILITY}
    room = {"room_number": room_number, "facility": facility}
    bed = {"bed_number": bed_number, "room": room}
    location = {"location_id": f"{UNIT}-{room_number}{bed_number}", "facility": facility}
    assignment = {
        "assignment_id": f"pcd-bench-{i}",
        "interface_id": "bench",
        "level": "Primary",
        "state": "active",
        "location": location,
        "usr": {"login": nurse},
    }
    return [
        ("ROOMS", room),
        ("BEDS", bed),
        ("LOCATIONS", {**location, "places": [bed]}),
        ("USERS", {"login": nurse}),
        ("ASSIGNMENTS", assignment),
    ]


async def _upsert(api: Api, dataset: str, values: dict[str, Any]) -> None:
    r = await api.client.put(f"/datasets/{dataset}/records", json={"values": values})
    if r.status_code not in (200, 201):
        raise SetupError(_problem(r))


async def setup_ward(api: Api, nurses: Sequence[str]) -> None:
    """Upsert each nurse's bed and Primary assignment (idempotent)."""
    await _upsert(api, "FACILITIES", {"name": FACILITY})
    gate = asyncio.Semaphore(SET_UP_IN_FLIGHT)

    async def one(i: int, nurse: str) -> None:
        async with gate:
            for dataset, values in _records(i, nurse):
                await _upsert(api, dataset, values)

    async with asyncio.TaskGroup() as tg:
        for i, nurse in enumerate(nurses):
            tg.create_task(one(i, nurse))


def free_port(host: str) -> int:
    """A port free on ``host`` now (the adapter binds it a moment later)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def setup_adapter(api: Api, host: str) -> int:
    """(Re)create the PCD Alarms instance on a free port and the alert rules; its port."""
    if (await api.get(f"/adapters/{ADAPTER}")).status_code == 200:
        await api.client.delete(f"/adapters/{ADAPTER}")
    port = free_port(host)
    body = {
        "component": "PCD Alarms",
        "reference_name": ADAPTER,
        "enabled": True,
        "settings": {"listen_port": port, "bind_address": host, "rate_limit": 1000},
    }
    r = await api.post("/adapters", body)
    if r.status_code != 201:
        raise SetupError(_problem(r))
    rules = [rule_to_data(x) for x in example_rules(XMPP_ADAPTER) if x.defer_seconds == 0]
    r = await api.post("/rules/import", {"rules": rules})
    if r.status_code not in (200, 201):
        raise SetupError(_problem(r))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        note = (await api.get(f"/adapters/{ADAPTER}")).json()["health"]["note"]
        if note.startswith("listening"):
            return port
        await asyncio.sleep(0.1)
    raise SetupError(f"the PCD adapter did not start listening: {note!r}")


def alarm(seq: int, token: str, bed: tuple[str, str], now: datetime) -> bytes:
    """ORU^R40 of alarm ``seq`` (a low SpO2, PM) at ``bed``; its text is ``token``."""
    ts = now.strftime("%Y%m%d%H%M%S+0000")
    room, bed_number = bed
    segments = (
        f"MSH|^~\\&|BENCH_GW|ICU|CAREWIRE|HOSPITAL|{ts}||ORU^R40^ORU_R40|B{seq}|P|2.6|||AL|NE",
        f"PV1||I|{UNIT}^{room}^{bed_number}^{FACILITY}",
        f"OBR|1|{token}^BENCH_GW|{token}^BENCH_GW|196616^MDC_EVT_ALARM^MDC|||{ts}",
        f"OBX|1|ST|196674^MDC_EVT_LO^MDC|1.1.1.150456.1|{token}|||PM~SP|||F|||{ts}",
        "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.150456|85|262688^MDC_DIM_PERCENT^MDC"
        "|90-100|L|||F",
        "OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.1.1.150456.2|start||||||F",
    )
    return frame(("\r".join(segments) + "\r").encode())


class Gateway:
    """One MLLP connection: alarms written on schedule, ACKs read (in order) as they come."""

    def __init__(self, tracker: AlertTracker, nurses: Sequence[str]) -> None:
        self.tracker = tracker
        self.nurses = nurses
        self.ack_latency = array("d")
        self.not_aa: dict[str, int] = {}
        self.worst_lag = 0.0

    async def send(self, host: str, port: int, *, rate: float, t0: float, total: int) -> None:
        """Alarm ``i`` is due at ``t0 + i / rate``; returns once every ACK arrived."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), ACK_TIMEOUT)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._acks(reader, total))
                for i in range(total):
                    delay = t0 + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(max(delay, MIN_SLEEP))
                    self.worst_lag = max(self.worst_lag, time.perf_counter() - (t0 + i / rate))
                    nurse = i % len(self.nurses)
                    data = alarm(i, self.tracker.token(i), _bed(nurse), datetime.now(UTC))
                    self.tracker.target[i] = self.nurses[nurse]
                    self.tracker.sent_at[i] = time.perf_counter()
                    writer.write(data)
        finally:
            writer.close()

    async def _acks(self, reader: asyncio.StreamReader, total: int) -> None:
        framer, seen = MllpFramer(), 0
        while seen < total:
            data = await asyncio.wait_for(reader.read(65536), ACK_TIMEOUT)
            if not data:
                raise ConnectionError(f"the listener closed the connection after {seen} ACKs")
            now = time.perf_counter()
            for reply in framer.feed(data):
                code = ack_code(reply)
                if code is not AckCode.AA:
                    key = str(code) if code is None else code.value
                    self.not_aa[key] = self.not_aa.get(key, 0) + 1
                self.ack_latency.append(now - self.tracker.sent_at[seen])
                seen += 1


async def _delivery_statuses(api: Api, since: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for status in ("Delivered", "Pending", "Error", "Queued", "Processing"):
        r = await api.get("/deliveries", rule=RULE, status=status, since=since, limit=1)
        out[status] = int(r.json()["total"]) if r.status_code == 200 else None
    return out


async def _measure(
    ctx: BenchContext, gateway: Gateway, port: int, args: dict[str, float]
) -> dict[str, Any]:
    """Send, then wait for stragglers; CPU, loop samples and the profile of the window."""
    rate, duration, warmup = args["rate"], args["duration"], args["warmup"]
    total = round((warmup + duration) * rate)
    t0 = time.perf_counter() + 0.05
    with quiet_gc():
        monitor = LoopMonitor(ctx.server_pid).start()
        sender = asyncio.get_running_loop().create_task(
            gateway.send(ctx.client.host, port, rate=rate, t0=t0, total=total)
        )
        await asyncio.sleep(max(0.0, t0 + warmup - time.perf_counter()))
        meter = CpuMeter(ctx.server_pid).start()
        prof = await _maybe_profile(ctx, duration)
        await sender
        cpu = meter.stop()
        tracker, deadline = gateway.tracker, time.perf_counter() + args["drain"]
        while len(tracker.arrived) < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        samples = await monitor.stop()
    return {"total": total, "cpu": cpu, "monitor": samples, "prof": prof}


async def scenario_pcd(
    ctx: BenchContext,
    *,
    api: Api,
    clients: int,
    rate: float,
    duration: float,
    warmup: float,
    drain: float,
) -> dict[str, Any]:
    """ORU^R40 over MLLP at ``rate``/s; each alerts the Primary nurse of its bed."""
    users = list(ctx.accounts[:clients])
    await setup_ward(api, users)
    port = await setup_adapter(api, ctx.client.host)
    ctx.say(f"pcd: {len(users)} beds with a Primary nurse; adapter {ADAPTER!r} on port {port}")
    batch = await login_many(ctx, users, presence=True, sync=True)
    sessions = {s.bare.split("@", 1)[0]: s for s in batch.sessions}
    nurses = [u for u in users if u in sessions]
    if len(nurses) < len(users):
        await close_all(batch.sessions)
        return _failed("not every nurse logged in", _login_report(batch))
    tracker = AlertTracker(secrets.token_hex(3))
    for login, s in sessions.items():
        s.on_message = tracker.callback(login)
    gateway = Gateway(tracker, nurses)
    since = datetime.now(UTC).isoformat(timespec="seconds")
    await asyncio.sleep(1.0)
    args = {"rate": rate, "duration": duration, "warmup": warmup, "drain": drain}
    run = await _measure(ctx, gateway, port, args)
    profile = await _finish_profile(ctx, run["prof"])
    metrics = _metrics(gateway, run, warmup=warmup, duration=duration, rate=rate)
    metrics["login"] = _login_report(batch)
    metrics["clients"] = len(nurses)
    metrics["deliveries_by_status"] = await _delivery_statuses(api, since)
    metrics["sessions_alive_at_end"] = sum(1 for s in batch.sessions if s.alive)
    await close_all(batch.sessions, settle=1.0)
    lost = metrics["lost"]
    return {
        "params": {**args, "clients": clients, "adapter": ADAPTER, "rule": RULE},
        "metrics": metrics,
        "profile": profile,
        "targets": {
            "alerts_per_s": _at_least(metrics["alerts_per_s"], rate * 0.99),
            "p99_ms": _below(metrics["latency_ms"]["p99"], TARGET_P99_MS),
            "lost": {"target": "0", "value": lost, "pass": lost == 0 and not gateway.not_aa},
        },
    }


def _metrics(
    gateway: Gateway, run: dict[str, Any], *, warmup: float, duration: float, rate: float
) -> dict[str, Any]:
    tracker = gateway.tracker
    measured = [seq for seq in tracker.sent_at if seq >= round(warmup * rate)]
    latencies = [tracker.arrived[s] for s in measured if s in tracker.arrived]
    first = round(warmup * rate)
    acks = [v for i, v in enumerate(gateway.ack_latency) if i >= first]
    metrics: dict[str, Any] = {
        "alarms_sent": run["total"],
        "not_aa": gateway.not_aa,
        "alerts_received": len(tracker.arrived),
        "lost": run["total"] - len(tracker.arrived),
        "duplicates": tracker.duplicates,
        "wrong_recipient": tracker.wrong_recipient,
        "other_messages": tracker.other_messages,
        "measured_window_s": duration,
        "alarms_in_window": len(measured),
        "alerts_per_s": round(len(latencies) / duration, 1),
        "latency_ms": summary_ms(latencies),
        "ack_ms": summary_ms(acks),
        "sender_lag_max_ms": round(gateway.worst_lag * 1000, 1),
    }
    metrics.update(run["cpu"])
    metrics["monitor"] = run["monitor"]
    return metrics


def summary(m: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows of the human summary."""
    cpu = (
        f"server {m.get('server_cpu_pct')}% (kernel {m.get('server_sys_cpu_pct')}%)  "
        f"generator {m.get('client_cpu_pct')}%  other processes {m.get('other_cpu_pct')}%"
    )
    return [
        ("clients", f"{m['clients']} logged in ({m['login']['wall_s']:.1f} s)"),
        ("alarms", f"{m['alarms_sent']} sent over MLLP, not AA {m['not_aa'] or 0}, "
                   f"{m['alarms_in_window']} in the {m['measured_window_s']:g} s window"),
        ("alerts", f"{m['alerts_received']} received, {m['alerts_per_s']}/s in the window"),
        ("alarm → alert", _ms(m["latency_ms"])),
        ("alarm → ACK", _ms(m["ack_ms"])),
        ("lost", f"{m['lost']} (duplicates {m['duplicates']}, wrong recipient "
                 f"{m['wrong_recipient']}, other messages {m['other_messages']})"),
        ("deliveries", str(m["deliveries_by_status"])),
        ("CPU", cpu),
    ]  # fmt: skip
