"""``/affiliations``: invite an existing organisation, accept or decline, permissions, delete."""

from __future__ import annotations

import httpx

from carewire.security.tokens import Role
from tests.web.conftest import assert_problem
from tests.web.directory_world import CLIENT_IP, World, db_url, world

__all__ = ["db_url", "world"]

MARKER = "invite?token="


async def _two(world: World) -> tuple[int, int, httpx.AsyncClient, httpx.AsyncClient]:
    """Hospitals A and B, each with an administrator user, and their tokens."""
    a, b = await world.hospital("Alpha"), await world.hospital("Beta")
    await world.user(a, "alice", admin=True)
    await world.user(b, "bob", admin=True)
    return (
        a,
        b,
        await world.client("alpha", organisation=a),
        await world.client("beta", organisation=b),
    )


async def _invite(inviter: httpx.AsyncClient, invitee: int) -> int:
    r = await inviter.post("/affiliations", json={"invitee": invitee})
    assert r.status_code == 201, r.text
    return int(r.json()["affiliation"]["id"])


async def test_invite_then_accept_for_all_users(world: World) -> None:
    a, b, alpha, beta = await _two(world)
    r = await alpha.post("/affiliations", json={"invitee": b})
    assert r.status_code == 201, r.text
    assert (
        r.json()["detail"] == "Invitations have been sent to the Carewire administrators for Beta."
    )
    aff = r.json()["affiliation"]
    assert (aff["inviter_id"], aff["invitee_id"], aff["status"]) == (a, b, "pending")
    token = world.link_token("bob@staff.example", MARKER)
    assert len(token) == 22
    assert [x["direction"] for x in (await alpha.get("/affiliations")).json()["affiliations"]] == [
        "outgoing"
    ]
    assert (await beta.get("/affiliations", params={"direction": "outgoing"})).json()[
        "affiliations"
    ] == []
    incoming = (await beta.get("/affiliations", params={"direction": "incoming"})).json()[
        "affiliations"
    ]
    assert [(x["other"]["name"], x["label"]) for x in incoming] == [("Alpha", "Alpha (pending)")]

    # the inviter cannot answer its own invitation; a wrong token is a dead link
    assert_problem(
        await alpha.post(f"/affiliations/{aff['id']}/accept", json={"token": token}),
        404,
        "unknown-affiliation",
    )
    assert_problem(
        await beta.post(f"/affiliations/{aff['id']}/accept", json={"token": "x" * 22}),
        410,
        "link-gone",
    )
    r = await beta.post(f"/affiliations/{aff['id']}/accept", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json()["affiliation"]["status"] == "active" and r.json()["group"] is None
    # a used link is gone
    assert_problem(
        await beta.post(f"/affiliations/{aff['id']}/accept", json={"token": token}),
        410,
        "link-gone",
    )
    for c, other in ((alpha, "Beta"), (beta, "Alpha")):
        rows = (await c.get("/affiliations", params={"direction": "active"})).json()["affiliations"]
        assert [(x["other"]["name"], x["permission"]["mode"]) for x in rows] == [
            (other, "organisation")
        ]
    (entry,) = await world.audit("directory.affiliation.accept")
    assert entry.event.actor == "api:beta" and entry.event.remote_ip == CLIENT_IP
    assert world.platform.directory.may_message("alice", "bob")


async def test_accept_for_a_new_group_and_reinvitation_replaces_the_link(world: World) -> None:
    _, b, alpha, beta = await _two(world)
    first = await _invite(alpha, b)
    old = world.link_token("bob@staff.example", MARKER)
    second = await _invite(alpha, b)
    new = world.link_token("bob@staff.example", MARKER)
    assert old != new
    assert_problem(
        await beta.post(f"/affiliations/{first}/accept", json={"token": old}), 410, "link-gone"
    )
    assert_problem(
        await beta.post(f"/affiliations/{second}/accept", json={"token": old}), 410, "link-gone"
    )
    both = {"token": new, "group": 1, "new_group": "Cardiology"}
    assert_problem(
        await beta.post(f"/affiliations/{second}/accept", json=both), 422, "invalid-request"
    )
    r = await beta.post(
        f"/affiliations/{second}/accept", json={"token": new, "new_group": "Cardiology"}
    )
    assert r.status_code == 200, r.text
    group = r.json()["group"]
    assert (
        group["name"] == "Cardiology"
        and group["organisation_id"] == b
        and group["member_count"] == 0
    )
    sides = {p["organisation_id"]: p for p in r.json()["affiliation"]["permissions"]}
    assert sides[b] == {"organisation_id": b, "mode": "groups", "groups": [group["id"]]}
    assert not world.platform.directory.may_message("alice", "bob")  # bob is not in the group


async def test_expired_and_declined_invitations(world: World) -> None:
    _, b, alpha, beta = await _two(world)
    aff = await _invite(alpha, b)
    token = world.link_token("bob@staff.example", MARKER)
    world.clock.advance(7 * 24 * 3600 + 1)
    assert_problem(
        await beta.post(f"/affiliations/{aff}/accept", json={"token": token}), 410, "link-gone"
    )
    aff = await _invite(alpha, b)
    token = world.link_token("bob@staff.example", MARKER)
    r = await beta.post(f"/affiliations/{aff}/decline", json={"token": token})
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert_problem(
        await beta.post(f"/affiliations/{aff}/decline", json={"token": token}), 410, "link-gone"
    )
    assert (await alpha.get("/affiliations")).json()["affiliations"] == []


async def test_refused_invitations(world: World) -> None:
    a, b, alpha, beta = await _two(world)
    assert_problem(
        await alpha.post("/affiliations", json={"invitee": a}), 409, "affiliation-refused"
    )
    assert_problem(
        await alpha.post("/affiliations", json={"invitee": 999}), 404, "unknown-organisation"
    )
    # inviting on behalf of another organisation is "not found"
    assert_problem(
        await alpha.post("/affiliations", json={"organisation": b, "invitee": a}),
        404,
        "unknown-organisation",
    )
    assert_problem(
        await world.system.post("/affiliations", json={"invitee": a}), 422, "organisation-required"
    )
    aff = await _invite(alpha, b)
    await beta.post(
        f"/affiliations/{aff}/accept", json={"token": world.link_token("bob@staff.example", MARKER)}
    )
    assert_problem(
        await beta.post("/affiliations", json={"invitee": a}), 409, "affiliation-refused"
    )
    assert_problem(
        await world.auditor.post("/affiliations", json={"organisation": a, "invitee": b}),
        403,
        "forbidden",
    )


async def _affiliated(world: World) -> tuple[int, int, int, httpx.AsyncClient, httpx.AsyncClient]:
    a, b, alpha, beta = await _two(world)
    aff = await _invite(alpha, b)
    r = await beta.post(
        f"/affiliations/{aff}/accept", json={"token": world.link_token("bob@staff.example", MARKER)}
    )
    assert r.status_code == 200
    return a, b, aff, alpha, beta


async def test_each_side_sets_its_own_permission(world: World) -> None:
    a, b, aff, alpha, beta = await _affiliated(world)
    nurses = await world.group(a, "Nurses", "alice")
    theirs = await world.group(b, "Theirs", "bob")
    r = await alpha.put(f"/affiliations/{aff}/permission", json={"mode": "none"})
    assert r.status_code == 200, r.text
    assert r.json()["detail"] == "Permissions updated successfully"
    assert r.json()["row"]["permission"] == {"mode": "none", "groups": []}
    assert not world.platform.directory.may_message("alice", "bob")
    body = {"mode": "groups", "groups": [nurses.id]}
    r = await alpha.put(f"/affiliations/{aff}/permission", json=body)
    assert r.json()["row"]["permission"] == {"mode": "groups", "groups": [nurses.id]}
    assert world.platform.directory.may_message("alice", "bob")
    # a group of the other side, no group with "groups", groups with "organisation"
    assert_problem(
        await alpha.put(
            f"/affiliations/{aff}/permission", json={"mode": "groups", "groups": [theirs.id]}
        ),
        404,
        "unknown-group",
    )
    assert_problem(
        await alpha.put(f"/affiliations/{aff}/permission", json={"mode": "groups"}),
        422,
        "invalid-field",
    )
    assert_problem(
        await alpha.put(
            f"/affiliations/{aff}/permission", json={"mode": "organisation", "groups": [nurses.id]}
        ),
        422,
        "invalid-field",
    )
    # beta's side is beta's: alpha cannot set it, the system must name the side
    assert_problem(
        await alpha.put(
            f"/affiliations/{aff}/permission", json={"organisation": b, "mode": "none"}
        ),
        404,
        "unknown-organisation",
    )
    assert_problem(
        await world.system.put(f"/affiliations/{aff}/permission", json={"mode": "none"}),
        422,
        "organisation-required",
    )
    r = await world.system.put(
        f"/affiliations/{aff}/permission", json={"organisation": b, "mode": "none"}
    )
    assert r.status_code == 200
    sides = {
        p["organisation_id"]: p["mode"]
        for p in (await beta.get(f"/affiliations/{aff}")).json()["permissions"]
    }
    assert sides == {a: "groups", b: "none"}
    reader = await world.client("beta-reader", role=Role.READ_ONLY, organisation=b)
    assert (await reader.get(f"/affiliations/{aff}")).status_code == 200
    assert_problem(
        await reader.put(f"/affiliations/{aff}/permission", json={"mode": "organisation"}),
        403,
        "forbidden",
    )


async def test_another_organisation_never_sees_an_affiliation(world: World) -> None:
    _, _, aff, _, _ = await _affiliated(world)
    gamma = await world.hospital("Gamma")
    outsider = await world.client("gamma", organisation=gamma)
    assert_problem(await outsider.get(f"/affiliations/{aff}"), 404, "unknown-affiliation")
    assert_problem(
        await outsider.put(f"/affiliations/{aff}/permission", json={"mode": "none"}),
        404,
        "unknown-affiliation",
    )
    assert_problem(await outsider.delete(f"/affiliations/{aff}"), 404, "unknown-affiliation")
    assert (await outsider.get("/affiliations")).json()["affiliations"] == []


async def test_delete_ends_it_on_both_sides(world: World) -> None:
    _, b, aff, alpha, beta = await _affiliated(world)
    r = await beta.delete(f"/affiliations/{aff}")
    assert r.status_code == 204
    for c in (alpha, beta):
        assert (await c.get("/affiliations")).json()["affiliations"] == []
    assert_problem(await alpha.get(f"/affiliations/{aff}"), 404, "unknown-affiliation")
    assert not world.platform.directory.may_message("alice", "bob")
    (entry,) = await world.audit("directory.affiliation.delete")
    assert entry.event.actor == "api:beta" and entry.event.details["organisation"] == b
    # invited again, they may communicate again
    aff = await _invite(alpha, b)
    assert (
        await beta.post(
            f"/affiliations/{aff}/accept",
            json={"token": world.link_token("bob@staff.example", MARKER)},
        )
    ).status_code == 200
    assert world.platform.directory.may_message("alice", "bob")
