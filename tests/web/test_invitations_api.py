"""``/invitations``: invite by e-mail list or CSV (multipart), list, resend, delete, scope."""

from __future__ import annotations

import pytest

from carewire.directory.model import SAMPLE_CSV, LinkGoneError, RegistrationForm
from tests.web.conftest import assert_problem
from tests.web.directory_world import CLIENT_IP, PASSWORD, World, db_url, world

__all__ = ["db_url", "world"]

REGISTER = "/register/"

CSV = (
    "Last Name,EMAIL,First Name,Department,Notes\n"  # any order, any case, unknown ignored
    "Doe,jdoe@gen.example,Jane,Cardiology,x\n"
    "Roe,not-an-address,Rick,,\n"
    f"{'L' * 65},long@gen.example,Lou,,\n"
    ",,,,\n"
    "Ames,AMES@gen.example,Al,Physical Therapy,\n"
    "Dup,JDOE@gen.example,,,\n"
    ",,,,just a note\n"
    "Taken,taken@staff.example,,,\n"
)


async def _registered(world: World, email: str) -> None:
    token = world.link_token(email, REGISTER)
    await world.platform.directory.registration.info(token)
    await world.platform.directory.registration.register(
        token,
        RegistrationForm(
            login=email.partition("@")[0],
            first_name="Reg",
            last_name="Istered",
            cell_number="(555) 123-4567",
            password=PASSWORD,
            password_confirm=PASSWORD,
            pin="2580",
            pin_confirm="2580",
        ),
    )


async def test_invite_a_typed_list(world: World) -> None:
    org = await world.hospital("General")
    admin = await world.client("general", organisation=org)
    emails = ["a@gen.example", "A@GEN.example", "b@gen.example"]
    r = await admin.post("/invitations", json={"emails": emails})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["detail"] == "Invitations have been sent successfully."
    assert [(i["email"], i["status"]) for i in out["invited"]] == [
        ("a@gen.example", "Email Sent"),
        ("b@gen.example", "Email Sent"),
    ]
    assert out["duplicates"] == ["a@gen.example"] and out["problems"] == []
    assert len(world.mailer.to("a@gen.example")) == 1
    (entry,) = await world.audit("directory.invitation.create")
    assert entry.event.actor == "api:general" and entry.event.remote_ip == CLIENT_IP


async def test_one_malformed_typed_address_sends_nothing(world: World) -> None:
    org = await world.hospital("General")
    sent = len(world.mailer.sent)
    body = {"organisation": org, "emails": ["good@gen.example", "bad@@gen.example"]}
    r = await world.system.post("/invitations", json=body)
    assert_problem(
        r,
        422,
        "invalid-email",
        detail="Invalid email address: bad@@gen.example. No invitations were sent.",
    )
    assert len(world.mailer.sent) == sent
    listed = (await world.system.get("/invitations", params={"organisation": org})).json()
    assert [i["email"] for i in listed["invitations"]] == ["admin@general.example"]
    assert_problem(
        await world.system.post("/invitations", json={"organisation": org}), 422, "invalid-field"
    )


async def test_a_csv_upload_reports_bad_rows_by_line_and_invites_the_good_ones(
    world: World,
) -> None:
    org = await world.hospital("General")
    await world.user(org, "taken")
    admin = await world.client("general", organisation=org)
    files = {"file": ("staff.csv", CSV.encode(), "text/csv")}
    r = await admin.post("/invitations/upload", files=files)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(i["email"], i["first_name"], i["department"]) for i in out["invited"]] == [
        ("jdoe@gen.example", "Jane", "Cardiology"),
        ("ames@gen.example", "Al", "Physical Therapy"),
    ]
    assert out["problems"] == [
        {"line": 3, "message": "Invalid email address: not-an-address"},
        {"line": 4, "message": "Last Name is longer than 64 characters."},
        {"line": 8, "message": "The row has neither Email nor Department."},
    ]
    assert out["duplicates"] == ["jdoe@gen.example"]
    assert out["existing_users"] == ["taken@staff.example"]
    assert sorted(out["groups_created"]) == ["Cardiology", "Physical Therapy"]
    groups = (await admin.get("/groups")).json()["groups"]
    assert [g["name"] for g in groups] == ["Cardiology", "Physical Therapy"]


async def test_unreadable_csv_files_are_refused_whole(world: World) -> None:
    org = await world.hospital("General")
    admin = await world.client("general", organisation=org)
    for data, code in (
        (b"jdoe@gen.example,Jane\n", "invalid-csv"),  # no header
        ("Email\njdoé@gen.example\n".encode("latin-1"), "invalid-upload"),
    ):
        r = await admin.post("/invitations/upload", files={"file": ("x.csv", data, "text/csv")})
        assert_problem(r, 422, code)
    r = await admin.post("/invitations", json={"csv": "Name,Phone\nJane,555\n"})
    assert_problem(r, 422, "invalid-csv")
    assert (await admin.get("/invitations")).json()["total"] == 1  # the administrator's


async def test_reinviting_resends_and_kills_the_old_link(world: World) -> None:
    org = await world.hospital("General")
    admin = await world.client("general", organisation=org)
    await admin.post("/invitations", json={"emails": ["jane@gen.example"]})
    old = world.link_token("jane@gen.example", REGISTER)
    r = await admin.post("/invitations", json={"emails": ["Jane@gen.example"]})
    assert r.json()["invited"] == [] and [i["email"] for i in r.json()["resent"]] == [
        "jane@gen.example"
    ]
    with pytest.raises(LinkGoneError):
        await world.platform.directory.registration.info(old)
    await _registered(world, "jane@gen.example")
    r = await admin.post("/invitations", json={"emails": ["jane@gen.example"]})
    assert r.json()["existing_users"] == ["jane@gen.example"] and r.json()["resent"] == []


async def test_list_filters_and_pages(world: World) -> None:
    org = await world.hospital("General")
    admin = await world.client("general", organisation=org)
    csv = (
        "Email,First Name,Last Name\n"
        "astafford@gen.example,Amy,Stafford\n"
        "kmaster@gen.example,Kim,Master\n"
        "zed@gen.example,Zoe,Zed\n"
    )
    world.mailer.refuse.add("zed@gen.example")
    await admin.post("/invitations", json={"csv": csv})

    async def emails(**params: str | int) -> list[str]:
        r = await admin.get("/invitations", params=params)
        assert r.status_code == 200, r.text
        return [i["email"] for i in r.json()["invitations"]]

    assert sorted(await emails(email="AST")) == ["astafford@gen.example", "kmaster@gen.example"]
    assert await emails(first_name="kI") == ["kmaster@gen.example"]
    assert await emails(last_name="staff") == ["astafford@gen.example"]
    assert await emails(status="Failure") == ["zed@gen.example"]
    assert await emails(sort="email", order="asc", limit=2) == [
        "admin@general.example",
        "astafford@gen.example",
    ]
    page = (
        await admin.get(
            "/invitations", params={"limit": 2, "offset": 3, "sort": "email", "order": "asc"}
        )
    ).json()
    assert page["total"] == 4 and [i["email"] for i in page["invitations"]] == ["zed@gen.example"]
    assert_problem(
        await admin.get("/invitations", params={"status": "Lost"}), 422, "invalid-request"
    )
    r = await admin.get("/invitations/sample.csv")
    assert r.status_code == 200 and r.text == SAMPLE_CSV
    assert r.headers["content-type"].startswith("text/csv")


async def test_resend_and_delete(world: World) -> None:
    org = await world.hospital("General")
    admin = await world.client("general", organisation=org)
    world.mailer.refuse.add("jane@gen.example")
    out = (
        await admin.post("/invitations", json={"emails": ["jane@gen.example", "bob@gen.example"]})
    ).json()
    jane, bob = (i["id"] for i in out["invited"])
    assert (await admin.get(f"/invitations/{jane}")).json()["status"] == "Failure"
    world.mailer.refuse.clear()
    r = await admin.post(f"/invitations/{jane}/resend")
    assert r.status_code == 200 and r.json()["status"] == "Email Sent"
    await _registered(world, "jane@gen.example")
    assert (await admin.get(f"/invitations/{jane}")).json()["status"] == "Registered"
    assert_problem(await admin.post(f"/invitations/{jane}/resend"), 409, "registered")
    r = await admin.post("/invitations/resend", json={"ids": [jane, bob, 9999]})
    assert r.json()["done"] == [bob] and sorted(r.json()["skipped"]) == sorted([jane, 9999])
    link = world.link_token("bob@gen.example", REGISTER)
    assert (await admin.delete(f"/invitations/{bob}")).status_code == 204
    assert_problem(await admin.get(f"/invitations/{bob}"), 404, "unknown-invitation")
    with pytest.raises(LinkGoneError):
        await world.platform.directory.registration.info(link)
    r = await admin.post("/invitations/delete", json={"ids": [jane]})
    assert r.json() == {"done": [jane], "skipped": []}
    assert (await world.system.get("/users/jane")).status_code == 200  # only hidden
    assert len(await world.audit("directory.invitation.delete")) == 2


async def test_another_organisations_invitations_are_not_found(world: World) -> None:
    mine, theirs = await world.hospital("Mine"), await world.hospital("Theirs")
    out = (
        await world.system.post(
            "/invitations", json={"organisation": theirs, "emails": ["t@theirs.example"]}
        )
    ).json()
    inv = out["invited"][0]["id"]
    admin = await world.client("mine", organisation=mine)
    assert_problem(await admin.get(f"/invitations/{inv}"), 404, "unknown-invitation")
    assert_problem(await admin.post(f"/invitations/{inv}/resend"), 404, "unknown-invitation")
    assert_problem(await admin.delete(f"/invitations/{inv}"), 404, "unknown-invitation")
    assert_problem(
        await admin.get("/invitations", params={"organisation": theirs}),
        404,
        "unknown-organisation",
    )
    assert_problem(
        await admin.post("/invitations", json={"organisation": theirs, "emails": ["x@y.example"]}),
        404,
        "unknown-organisation",
    )
    r = await admin.post("/invitations/delete", json={"ids": [inv]})
    assert r.json() == {"done": [], "skipped": [inv]}
    assert (await world.system.get(f"/invitations/{inv}")).json()["status"] == "Email Sent"
    assert_problem(
        await world.auditor.post(
            "/invitations", json={"organisation": theirs, "emails": ["x@y.example"]}
        ),
        403,
        "forbidden",
    )
    files = {"file": ("x.csv", b"Email\nx@y.example\n", "text/csv")}
    assert_problem(
        await world.auditor.post(
            "/invitations/upload", data={"organisation": str(theirs)}, files=files
        ),
        403,
        "forbidden",
    )
