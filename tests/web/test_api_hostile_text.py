"""Text that is not Unicode and times past the calendar's ends are a 422, never a 500.

JSON can spell a lone UTF-16 surrogate (``"\\ud800"``) and NUL (``"\\u0000"``);
``9999-12-31T23:59:59-14:00`` and ``0001-01-01T00:00:00+14:00`` are valid ISO
8601 times whose UTC instant lies outside years 1 to 9999. Each is tried in
bodies, filters and query parameters, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import CALLS, Api, add_calls, assert_problem

LONE = ["\\ud800", "x\\udfff", "\\udc00\\ud800"]  # as written in JSON text
LATE = "9999-12-31T23:59:59-14:00"
EARLY = "0001-01-01T00:00:00+14:00"


def raw(template: str, text: str) -> bytes:
    """``template`` with ``@`` replaced by JSON-escaped ``text`` (kept as the client wrote it)."""
    return template.replace("@", text).encode()


BODIES = [
    ("POST", f"/datasets/{CALLS}/records", '{"values": {"call_id": "@", "bed": "A1"}}'),
    ("PUT", f"/datasets/{CALLS}/records", '{"values": {"call_id": "@", "bed": "A1"}}'),
    ("PATCH", f"/datasets/{CALLS}/records/1", '{"values": {"note": "@"}}'),
    ("POST", f"/datasets/{CALLS}/records", '{"values": {"@": "x"}}'),
    ("POST", "/datasets", '{"name": "@", "attributes": []}'),
    ("POST", "/rules/validate", '{"name": "@"}'),
    ("POST", "/adapters", '{"reference_name": "@", "kind": "dataupdate"}'),
]


@pytest.mark.parametrize("text", [*LONE, "a\\u0000b"])
async def test_lone_surrogates_and_nul_in_bodies(api: Api, text: str) -> None:
    await add_calls(api.platform)
    await api.platform.datasets.create(CALLS, {"call_id": "c1", "bed": "A1", "status": "Open"})
    for method, path, template in BODIES:
        r = await api.admin.request(
            method, path, content=raw(template, text), headers={"content-type": "application/json"}
        )
        assert_problem(r, 422, "invalid-text")
    # Nothing was written; a valid pair (an emoji) is ordinary text.
    assert (await api.admin.get(f"/datasets/{CALLS}/records")).json()["total"] == 1
    r = await api.admin.patch(
        f"/datasets/{CALLS}/records/1",
        content=raw('{"values": {"note": "@"}}', "\\ud83d\\ude00"),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["values"]["note"] == "\U0001f600"


async def test_broken_utf8_and_nul_in_query_parameters(api: Api) -> None:
    await add_calls(api.platform)
    for query in (
        "filter=bed:eq:%ED%A0%80",  # a surrogate's UTF-8 form: decoded as U+FFFD
        "rule=%ED%A0%80",
        "sort=%ED%A0%80",
    ):
        path = "/deliveries" if query.startswith("rule") else f"/datasets/{CALLS}/records"
        r = await api.admin.get(f"{path}?{query}")
        assert r.status_code in (200, 422), (query, r.text)
    for path in (f"/datasets/{CALLS}/records?filter=bed:eq:a%00b", "/deliveries?rule=%00"):
        assert_problem(await api.admin.get(path), 422, "invalid-text")


@pytest.mark.parametrize("when", [LATE, EARLY])
async def test_times_past_the_calendar_ends(api: Api, when: str) -> None:
    values = {"status": "Queued", "triggered_at": when}
    r = await api.admin.post("/datasets/DELIVERIES/records", json={"values": values})
    assert_problem(r, 422, "wrong-type", detail="out of range")
    op = "gt" if when == LATE else "lt"
    r = await api.admin.get(
        "/datasets/DELIVERIES/records", params={"filter": f"triggered_at:{op}:{when}"}
    )
    assert_problem(r, 422, "wrong-type", detail="out of range")
    for param in ("since", "until"):
        assert_problem(await api.admin.get("/deliveries", params={param: when}), 422, "wrong-type")
    # The last representable instants are fine.
    for edge in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31T09:59:59-14:00"):
        r = await api.admin.post(
            "/datasets/DELIVERIES/records",
            json={"values": {"status": "Queued", "triggered_at": edge}},
        )
        assert r.status_code == 201, r.text


# -- property: no record value, whatever its text or time, makes a server error ---------


def _json_string(text: str) -> str:
    """``text`` as a JSON string literal, surrogates escaped rather than refused."""
    return json.dumps(text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass"))


TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=20) | st.sampled_from(
    ["\ud800", "a\udfffb", "\x00", "=1+1", "\u2028"]
)
TIMES = st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()) | st.sampled_from(
    [LATE, EARLY, "0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "10000-01-01T00:00:00Z"]
)


@given(call_id=TEXT, note=TEXT, when=TIMES)
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_no_record_value_is_a_server_error(
    sqlite_api: Api, call_id: str, note: str, when: str
) -> None:
    api = sqlite_api
    if CALLS not in {d.name for d in api.platform.registry.all()}:
        await add_calls(api.platform)
    headers = {"content-type": "application/json"}
    body = (
        f'{{"values": {{"call_id": {_json_string(call_id)}, "bed": "A1", '
        f'"note": {_json_string(note)}}}}}'
    )
    r = await api.admin.post(f"/datasets/{CALLS}/records", content=body.encode(), headers=headers)
    assert r.status_code < 500, r.text
    query = "filter=note:eq:" + quote(note, errors="surrogatepass")
    r = await api.admin.get(f"/datasets/{CALLS}/records?{query}")
    assert r.status_code < 500, r.text
    delivery = f'{{"values": {{"status": "Queued", "triggered_at": {json.dumps(when)}}}}}'
    r = await api.admin.post(
        "/datasets/DELIVERIES/records", content=delivery.encode(), headers=headers
    )
    assert r.status_code < 500, r.text
    r = await api.admin.get("/deliveries", params={"since": when})
    assert r.status_code < 500, r.text
