"""Numbers beyond 64 bits are refused with 404/422, never a server error (found by fuzzing)."""

from __future__ import annotations

from tests.web.conftest import Api

BIG = 2**63  # one past the largest 64-bit signed number


async def test_record_ids_beyond_64_bits_are_not_found(api: Api) -> None:
    for method, path in (
        ("GET", f"/deliveries/{BIG}"),
        ("GET", f"/deliveries/-{BIG + 1}"),
        ("GET", f"/datasets/FACILITIES/records/{BIG}"),
        ("PATCH", f"/datasets/FACILITIES/records/{BIG}"),
        ("DELETE", f"/datasets/FACILITIES/records/{BIG}"),
    ):
        body: dict[str, object] | None = {"values": {}} if method == "PATCH" else None
        r = await api.admin.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_values_offsets_and_filters_beyond_64_bits_are_invalid(api: Api) -> None:
    r = await api.admin.post(
        "/datasets/CONVERSATIONS/records",
        json={"values": {"jid1": "a@x", "jid2": "b@x", "ttl": BIG}},
    )
    assert r.status_code == 422 and "out of range" in r.text
    r = await api.admin.get("/datasets/CONVERSATIONS/records", params={"offset": BIG})
    assert r.status_code == 422
    r = await api.admin.get("/datasets/CONVERSATIONS/records", params={"filter": f"ttl:eq:{BIG}"})
    assert r.status_code == 422 and "out of range" in r.text
    r = await api.admin.get("/deliveries", params={"offset": BIG})
    assert r.status_code == 422
