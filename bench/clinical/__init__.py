"""Clinical messaging scenarios: rule-driven ``alerts``, room ``fanout``, ``chat-tracking``.

Like :mod:`bench.scenarios`, each scenario is an ``async`` function taking a
:class:`~bench.scenarios.BenchContext` and returning a JSON-serialisable
result (``metrics`` + ``targets``) against one running server; the runner
(:mod:`bench.run`) starts and stops it. These scenarios also use the server's
REST API (``/api/v1`` on its HTTPS port, an admin token made with ``carewire
token create``; the certificate is self-signed and not verified: loopback
only) to set up datasets and rules and to write records.

- ``alerts``: a record written through the API fires a Send Alert rule whose
  recipient is the record's ``nurse``; latency runs from just before the POST
  to the moment that nurse's session receives the alert message.
- ``fanout``: one room on ``chat.DOMAIN`` with N occupants; one of them posts
  groupchat messages, every other occupant must receive each one.
- ``chat-tracking``: the 1:1 ``chat`` scenario on a server with and one
  without message tracking; :func:`scenario_chat_tracked` adds how far the
  tracking writer (MESSAGES rows) lagged behind.
- ``pcd``: device alarms (ORU^R40) over MLLP fire the PCD adapter's example
  alert rule; latency runs from just before the alarm is written to the
  moment the bed's Primary nurse's session receives the alert.
- ``group``: a directory group's address on ``groups.DOMAIN`` with N member
  sessions (directory users the runner prepares through the API); one member
  writes to it, every other member must receive each message.
"""

from __future__ import annotations

from typing import Any

from bench.clinical.alerts import ALERT_DATASET, ALERT_RULE, scenario_alerts
from bench.clinical.chat_tracking import (
    _row_text,
    is_sustained,
    ramp_line,
    scenario_chat_tracked,
    tracking_comparison,
    untracked_features,
)
from bench.clinical.common import Api, SetupError, _ms, _tracking_text
from bench.clinical.fanout import scenario_fanout
from bench.clinical.group import scenario_group
from bench.clinical.pcd import scenario_pcd
from bench.clinical.pcd import summary as pcd_summary

__all__ = [
    "ALERT_DATASET",
    "ALERT_RULE",
    "CLINICAL_SCENARIOS",
    "DEFAULT_DURATIONS",
    "DEFAULT_RAMP",
    "DEFAULT_RATES",
    "RAMP_DURATION",
    "Api",
    "SetupError",
    "is_sustained",
    "ramp_line",
    "scenario_alerts",
    "scenario_chat_tracked",
    "scenario_fanout",
    "scenario_group",
    "scenario_pcd",
    "summary_lines",
    "tracking_comparison",
    "untracked_features",
]

CLINICAL_SCENARIOS = ("alerts", "fanout", "chat-tracking", "group", "pcd")
DEFAULT_RATES = {"alerts": 20.0, "fanout": 10.0, "group": 10.0, "pcd": 20.0}
DEFAULT_DURATIONS = {
    "alerts": 30.0,
    "fanout": 20.0,
    "chat-tracking": 20.0,
    "group": 20.0,
    "pcd": 30.0,
}
DEFAULT_RAMP = (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
RAMP_DURATION = 10.0  # measured seconds of each ramp step


def summary_lines(name: str, result: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows of the human summary of a clinical scenario."""
    m = result.get("metrics") or {}
    cpu = (
        f"server {m.get('server_cpu_pct')}% (kernel {m.get('server_sys_cpu_pct')}%)  "
        f"generator {m.get('client_cpu_pct')}%  other processes {m.get('other_cpu_pct')}%"
    )
    if name == "alerts" and "alerts_received" in m:
        return [
            ("clients", f"{m['clients']} logged in ({m['login']['wall_s']:.1f} s)"),
            ("records", f"{m['records_posted']} posted, failures {m['post_failures'] or 0}, "
                        f"{m['records_in_window']} in the {m['measured_window_s']:g} s window"),
            ("alerts", f"{m['alerts_received']} received, {m['alerts_per_s']}/s in the window"),
            ("alert latency", _ms(m["latency_ms"])),
            ("POST latency", _ms(m["post_ms"])),
            ("lost", f"{m['lost']} (duplicates {m['duplicates']}, wrong recipient "
                     f"{m['wrong_recipient']}, other messages {m['other_messages']})"),
            ("deliveries", f"{m['deliveries_by_status']} {m['delivery_error_samples'][:1]}"),
            ("CPU", cpu),
        ]  # fmt: skip
    if name == "pcd" and "alerts_received" in m:
        return pcd_summary(m)
    if name == "fanout" and "deliveries" in m:
        return [
            ("room", f"{m['room']}: {m['occupants']} occupants joined in {m['join_wall_s']} s "
                     f"(join {_ms(m['join_ms'])}), failures {m['join_failures'] or 0}"),
            ("messages", f"{m['messages_sent']} sent ({m['messages_in_window']} in the window)"),
            ("deliveries", f"{m['deliveries']}/{m['deliveries_expected']}, "
                           f"{m['deliveries_per_s']}/s in the window"),
            ("latency", _ms(m["latency_ms"])),
            ("lost", f"{m['lost']} (errors {m['error_bounces']}, duplicates {m['duplicates']}, "
                     f"incomplete messages {m['incomplete_messages']})"),
            ("tracking", _tracking_text(m.get("tracking")).lstrip("; ") or "no rows (not tracked)"),
            ("CPU", cpu),
        ]  # fmt: skip
    if name == "group" and "deliveries" in m:
        return [
            ("group", f"{m['group']}: {m['members_online']}/{m['members']} members online "
                      f"(login {m['login']['wall_s']:.1f} s)"),
            ("messages", f"{m['messages_sent']} sent ({m['messages_in_window']} in the window), "
                         f"sender lag max {m['sender_lag_max_ms']} ms"),
            ("deliveries", f"{m['deliveries']}/{m['deliveries_expected']}, "
                           f"{m['deliveries_per_s']}/s in the window"),
            ("latency", _ms(m["latency_ms"])),
            ("lost", f"{m['lost']} (errors {m['error_bounces']}, refused to the sender "
                     f"{m['sender_error_bounces']} {m['sender_error_samples'][:1]}, duplicates "
                     f"{m['duplicates']}, incomplete messages {m['incomplete_messages']})"),
            ("tracking", _tracking_text(m.get("tracking")).lstrip("; ") or "no rows (not tracked)"),
            ("CPU", cpu),
        ]  # fmt: skip
    if name == "chat-tracking" and "with_tracking" in m:
        rows = []
        for r in m["ramp"]:
            rows.append(
                (
                    "ramp, tracked",
                    _row_text(r) + ("  SUSTAINED" if r["sustained"] else "  not sustained"),
                )
            )
        rows.append(("untracked", _row_text(m["without_tracking"])))
        rows.append(("tracked", _row_text(m["with_tracking"])))
        o = m["overhead"]
        rows.append(("overhead", f"p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms, "
                                 f"server CPU {o['server_cpu_pct']} points"))  # fmt: skip
        bad = {k: v for k, v in m.get("server_log_problems", {}).items() if any(v.values())}
        if bad:
            rows.append(("server logs", str(bad)))
        return rows
    return []
