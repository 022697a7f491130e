"""The deliveries and audit pages over HTTP: filters, paging, details, CSV exports and roles."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import httpx

from carewire.security.audit import EXPORT_COLUMNS, AuditEvent, Channel
from carewire.security.console_auth import Role
from tests.web.console.test_data_pages import Full, full

__all__ = ["full"]


async def deliveries(full: Full) -> list[int]:
    """Three deliveries (oldest first) and the history of the first."""
    ids: list[int] = []
    for day, status, rule, adapter in (
        (1, "Delivered", "Seen", "Data"),
        (2, "Error", "Seen", "XMPP"),
        (3, "Queued", "Alert", "XMPP"),
    ):
        rec = await full.platform.datasets.create(
            "DELIVERIES",
            {
                "status": status,
                "triggered_at": datetime(2026, 3, day, 9, 0, tzinfo=UTC),
                "rule": rule,
                "interface_name": adapter,
                "status_text": "no route" if status == "Error" else "",
                "source": f"DEVICES/{day}",
            },
        )
        ids.append(rec.id)
    for status in ("Queued", "Processing", "Delivered"):
        await full.platform.datasets.create(
            "DELIVERY_HISTORY", {"status": status, "processing_time": 5, "delivery": ids[0]}
        )
    return ids


def rows_of(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_deliveries_filter_page_and_detail(full: Full) -> None:
    first, second, third = await deliveries(full)
    viewer = await full.user("olga", Role.ORG_ADMIN)
    r = await viewer.get("/deliveries")
    assert r.status_code == 200 and "1–3 of 3" in r.text
    assert r.text.index(f'href="/deliveries/{third}"') < r.text.index(f'href="/deliveries/{first}"')
    assert '<label for="status">Status</label>' in r.text
    r = await viewer.get("/deliveries", params={"status": "Error"})
    assert "1–1 of 1" in r.text and "no route" in r.text
    r = await viewer.get("/deliveries", params={"adapter": "XMPP", "rule": "Seen"})
    assert "1–1 of 1" in r.text and f'href="/deliveries/{second}"' in r.text
    r = await viewer.get("/deliveries", params={"since": "2026-03-02", "until": "2026-03-02"})
    assert "1–1 of 1" in r.text
    r = await viewer.get("/deliveries", params={"limit": "2", "offset": "2"})
    assert "3–3 of 3" in r.text and f'href="/deliveries/{first}"' in r.text
    r = await viewer.get("/deliveries", params={"since": "March"})
    assert r.status_code == 400 and "is not a date" in r.text
    r = await viewer.get(f"/deliveries/{first}")
    assert r.status_code == 200 and "History of states" in r.text
    assert r.text.count("<td>5</td>") == 3 and "DEVICES/1" in r.text
    assert (await viewer.get("/deliveries/999")).status_code == 404


async def notified_delivery(full: Full) -> int:
    """A delivery whose message reached two people: one acknowledged it, one only got it sent."""
    ds = full.platform.datasets
    at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    message = await ds.create("MESSAGES", {"uuid": "m-1", "received_at": at, "sent_at": at})
    adams = await ds.create("IDENTITIES", {"name": "nurse.adams@h.example"})
    baker = await ds.create("IDENTITIES", {"name": "nurse.baker@h.example"})
    await ds.create(
        "MESSAGE_DELIVERIES",
        {
            "message": message.id,
            "recipient": adams.id,
            "sent_at": at,
            "received_at": at,
            "acknowledged": datetime(2026, 3, 4, 9, 1, tzinfo=UTC),
        },
    )
    await ds.create(
        "MESSAGE_DELIVERIES", {"message": message.id, "recipient": baker.id, "sent_at": at}
    )
    rec = await ds.create(
        "DELIVERIES",
        {
            "status": "Delivered",
            "triggered_at": at,
            "rule": "Nurse call",
            "interface_name": "XMPP",
            "message": message.id,
        },
    )
    return rec.id


async def test_deliveries_say_who_was_notified(full: Full) -> None:
    first, *_ = await deliveries(full)
    notified = await notified_delivery(full)
    viewer = await full.user("olga", Role.ORG_ADMIN)
    r = await viewer.get("/deliveries")
    assert '<th scope="col">Notified</th>' in r.text
    assert "nurse.adams@h.example (Acknowledged), nurse.baker@h.example (Sent)" in r.text, r.text
    r = await viewer.get(f"/deliveries/{notified}")
    assert r.status_code == 200 and '<h2 id="notified">Notified</h2>' in r.text
    row = r.text[r.text.index("nurse.adams@h.example") :]
    assert "Acknowledged" in row[: row.index("</tr>")]
    assert 'datetime="2026-03-04T09:01:00+00:00"' in row[: row.index("</tr>")]
    r = await viewer.get(f"/deliveries/{first}")
    assert "Nobody: this delivery sent no message" in r.text
    rows = rows_of(await viewer.get("/deliveries.csv", params={"rule": "Nurse call"}))
    assert rows[0]["notified"] == (
        "nurse.adams@h.example (Acknowledged), nurse.baker@h.example (Sent)"
    )


async def test_deliveries_csv(full: Full) -> None:
    await deliveries(full)
    auditor = await full.user("audrey", Role.AUDITOR)
    page = await auditor.get("/deliveries", params={"adapter": "XMPP"})
    assert 'href="/deliveries.csv?adapter=XMPP"' in page.text
    rows = rows_of(await auditor.get("/deliveries.csv", params={"adapter": "XMPP"}))
    assert [r["status"] for r in rows] == ["Queued", "Error"]
    assert rows[1]["status_text"] == "no route" and rows[1]["rule"] == "Seen"
    assert len(rows_of(await auditor.get("/deliveries.csv"))) == 3
    exports = rows_of(await auditor.get("/audit.csv", params={"action": "deliveries.export"}))
    assert [(e["actor"], e["action"]) for e in exports] == [
        ("console:audrey", "deliveries.export"),
        ("console:audrey", "deliveries.export"),
    ]


async def test_audit_page_filters_and_roles(full: Full) -> None:
    admin = await full.user("admin")
    auditor = await full.user("audrey", Role.AUDITOR)
    org = await full.user("olga", Role.ORG_ADMIN)
    for path in ("/audit", "/audit.csv"):
        r = await org.get(path)
        assert r.status_code == 403 and "Not allowed for your role" in r.text, path
    r = await auditor.get("/audit")
    assert r.status_code == 200 and "console:audrey" in r.text and "Export CSV" in r.text
    r = await admin.get("/audit", params={"actor": "console:olga"})
    assert "console:olga" in r.text and "console:audrey" not in r.text
    r = await admin.get("/audit", params={"outcome": "failure"})
    assert "No entries match." in r.text
    r = await admin.get("/audit", params={"action": "login", "limit": "1"})
    assert "1–1 of 3" in r.text and 'href="?action=login&amp;offset=1&amp;limit=1"' in r.text
    today = datetime.now(UTC).date().isoformat()
    r = await admin.get("/audit", params={"since": today, "until": today})
    assert "1–" in r.text and "of 0" not in r.text
    r = await admin.get("/audit", params={"since": "2000-01-01", "until": "2000-01-01"})
    assert "0 of 0" in r.text


async def test_audit_page_times_and_long_details(full: Full) -> None:
    """Times carry ISO UTC for the browser and read in UTC without script; long details fold."""
    admin = await full.user("admin")
    await full.platform.audit.record(
        AuditEvent(
            actor="cli",
            channel=Channel.CLI,
            action="rule.update",
            target="r",
            details={"why": "x" * 200},
        )
    )
    r = await admin.get("/audit", params={"action": "rule.update"})
    [stamp] = re.findall(
        r'<time datetime="([^"]+)" title="([^"]+)" data-local-time>([^<]+)</time>', r.text
    )
    iso, title, text = stamp
    shown = datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert datetime.fromisoformat(iso).tzinfo is not None and title == text == shown
    assert (
        "<details><summary><code>{&#34;why&#34;: &#34;xxx" in r.text
        and "…</code></summary>" in r.text
    )
    assert "x" * 200 in r.text  # the whole text, behind the summary


async def test_audit_csv_is_recorded(full: Full) -> None:
    auditor = await full.user("audrey", Role.AUDITOR)
    r = await auditor.get("/audit.csv", params={"action": "login"})
    rows = rows_of(r)
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [row["actor"] for row in rows] == ["console:audrey"]
    assert len(rows[0]["hash"]) == 64
    entries, _ = await full.platform.audit.store.entries(action="audit.export")
    [export] = entries
    assert export.event.actor == "console:audrey"
    assert export.event.details["entries"] == 1
    assert export.event.details["filters"]["action"] == "login"  # type: ignore[index]
    everything = rows_of(await auditor.get("/audit.csv"))
    assert [row["action"] for row in everything][-1] == "audit.export"
    assert int(everything[0]["id"]) < int(everything[-1]["id"])


async def test_csv_exports_neutralise_formulas(full: Full) -> None:
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    for n, text in enumerate(hostile, start=1):
        await full.platform.datasets.create(
            "DELIVERIES",
            {
                "status": "Error",
                "triggered_at": datetime(2026, 3, n, 9, 0, tzinfo=UTC),
                "rule": text,
                "interface_name": "XMPP",
                "status_text": text,
                "source": f"DEVICES/{n}",
            },
        )
    auditor = await full.user("audrey", Role.AUDITOR)
    rows = rows_of(await auditor.get("/deliveries.csv"))
    assert sorted(r["status_text"] for r in rows) == sorted("'" + t for t in hostile)
    assert all(r["rule"] == r["status_text"] for r in rows)
    assert all(r["source"].startswith("DEVICES/") for r in rows)  # ordinary text unchanged
