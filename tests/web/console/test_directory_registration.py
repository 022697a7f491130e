"""The public pages of mailed links: registration and PIN reset."""

from __future__ import annotations

import pytest

from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import (
    SYSTEM_CALLER,
    InvitationFilter,
    InvitationStatus,
    InviteRequest,
    UnknownUserError,
    WrongPinError,
)
from carewire.security.console_auth import Role
from tests.web.console.conftest import GOOD, sign_in
from tests.web.console.test_directory_support import Env, csrf_of, db_url, env

__all__ = ["db_url", "env"]

FORM = {
    "login": "ann",
    "first_name": "Ann",
    "last_name": "Lee",
    "cell_number": "(555) 669-2750",
    "time_zone": "US/Pacific",
    "staff_type": "Physician",
    "password": GOOD,
    "password_confirm": GOOD,
    "pin": "5822",
    "pin_confirm": "5822",
}


async def _invite(env: Env, org: int, csv: str | None = None) -> str:
    request = InviteRequest(emails="" if csv else "ann@general.example", csv_text=csv)
    await env.directory.invitations.invite(SYSTEM_CALLER, org, request)
    return env.link("ann@general.example", "/register/")


async def _status(env: Env, org: int, email: str) -> InvitationStatus:
    found = await env.directory.invitations.find(SYSTEM_CALLER, org, InvitationFilter(email=email))
    (inv,) = found.items
    return inv.status


async def _nothing_created(env: Env, login: str = "ann") -> None:
    with pytest.raises(UnknownUserError):
        await env.directory.users.get(SYSTEM_CALLER, login)
    assert await env.platform.core.accounts.stores.accounts.get(login) is None
    users = await env.platform.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),), limit=1)
    )
    assert list(users.records) == []


async def _post(browser_page: str, env: Env, data: dict[str, str]) -> tuple[int, str]:
    browser = await env.anonymous()
    shown = await browser.get(browser_page)
    if shown.status_code != 200:
        return shown.status_code, shown.text
    r = await browser.post(browser_page, data={**data, "csrf_token": csrf_of(shown.text)})
    return r.status_code, r.text


async def test_register_through_the_mailed_link(env: Env) -> None:
    general = await env.hospital("General Hospital")
    cardio_csv = (
        "Email,First Name,Last Name,Department\r\nann@general.example,Ann,Lee,Cardiology\r\n"
    )
    link = await _invite(env, general.id, cardio_csv)
    browser = await env.anonymous()
    shown = await browser.get(link)
    assert shown.status_code == 200
    assert "General Hospital has invited you" in shown.text
    assert 'value="ann@general.example" readonly' in shown.text
    assert 'value="ann"' in shown.text  # the suggested login
    assert 'value="Ann"' in shown.text and 'value="Lee"' in shown.text  # from the CSV
    assert "America/New_York" in shown.text
    assert shown.headers["content-security-policy"].startswith("default-src 'self'")
    assert shown.headers["cache-control"] == "no-store"
    assert shown.headers["x-frame-options"] == "DENY"
    assert await _status(env, general.id, "ann@general.example") is InvitationStatus.USER_CLICKED
    r = await browser.post(link, data={**FORM})  # no CSRF token
    assert r.status_code == 403
    await _nothing_created(env)
    r = await browser.post(link, data={**FORM, "csrf_token": csrf_of(shown.text)})
    assert r.status_code == 200, r.text
    assert "You are registered" in r.text and "ann@carewire.test" in r.text
    user = await env.directory.users.get(SYSTEM_CALLER, "ann")
    assert user.profile.cell_number == "(555) 669-2750" and user.profile.time_zone == "US/Pacific"
    assert user.organisation_id == general.id and not user.is_org_admin
    assert [g.name for g in await env.directory.users.groups_of(SYSTEM_CALLER, "ann")] == [
        "Cardiology"
    ]
    assert not (await env.directory.pins.verify("ann", "5822")).must_change
    assert await _status(env, general.id, "ann@general.example") is InvitationStatus.REGISTERED
    again = await browser.get(link)
    assert again.status_code == 410
    assert "This registration link is not valid any more" in again.text
    r = await browser.post(link, data={**FORM, "login": "ann2", "csrf_token": csrf_of(shown.text)})
    assert r.status_code == 410
    await _nothing_created(env, "ann2")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"pin": "1234", "pin_confirm": "1234"}, "pin", "PIN"),
        ({"pin": "1111", "pin_confirm": "1111"}, "pin", "PIN"),
        ({"pin": "1987", "pin_confirm": "1987"}, "pin", "PIN"),
        ({"pin": "58a2", "pin_confirm": "58a2"}, "pin", "PIN"),
        ({"pin": "58222", "pin_confirm": "58222"}, "pin", "PIN"),
        ({"pin_confirm": "5823"}, "pin_confirm", "The two PINs differ."),
        ({"password": "short", "password_confirm": "short"}, "password", "12"),
        ({"password_confirm": "something else"}, "password_confirm", "The two passwords differ."),
        ({"cell_number": ""}, "cell_number", "Cell (Private) is required."),
        ({"first_name": ""}, "first_name", "First Name is required."),
        ({"login": "Bad Login!"}, "login", "login"),
        ({"login": "taken"}, "login", "taken"),
        ({"time_zone": "Mars/Base"}, "time_zone", "is not a known time zone"),
    ],
)
async def test_bad_input_creates_nothing_and_keeps_the_link(
    env: Env, change: dict[str, str], field: str, message: str
) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "taken")
    link = await _invite(env, general.id)
    status, text = await _post(link, env, {**FORM, **change})
    assert status == 400, text[:2000]
    assert message.lower() in text.lower().replace("&#39;", "'"), text[:3000]
    assert f'id="f-{field}"' in text and 'aria-invalid="true"' in text
    await _nothing_created(env)
    assert await _status(env, general.id, "ann@general.example") is InvitationStatus.USER_CLICKED
    status, text = await _post(link, env, FORM)  # the link still works
    assert status == 200 and "You are registered" in text


async def test_expired_and_deleted_links(env: Env) -> None:
    general = await env.hospital("General Hospital")
    link = await _invite(env, general.id)
    env.clock.advance(15 * 24 * 3600)  # the link works for 14 days
    status, text = await _post(link, env, FORM)
    assert status == 410 and "not valid any more" in text
    await _nothing_created(env)
    fresh = await env.directory.invitations.find(
        SYSTEM_CALLER, general.id, InvitationFilter(email="ann@")
    )
    await env.directory.invitations.resend(SYSTEM_CALLER, general.id, [fresh.items[0].id])
    link = env.link("ann@general.example", "/register/")
    await env.directory.invitations.delete(SYSTEM_CALLER, general.id, [fresh.items[0].id])
    status, text = await _post(link, env, FORM)
    assert status == 410
    await _nothing_created(env)
    browser = await env.anonymous()
    assert (await browser.get("/register/no-such-token")).status_code == 410


async def test_administrators_invitation_gives_a_console_account(env: Env) -> None:
    general = await env.hospital("General Hospital", admin_email="boss@general.example")
    link = env.link("boss@general.example", "/register/")
    status, text = await _post(link, env, {**FORM, "login": "boss"})
    assert status == 200 and "administration console" in text and "boss@general.example" in text
    user = await env.directory.users.get(SYSTEM_CALLER, "boss")
    assert user.is_org_admin
    browser = await env.anonymous()
    r = await sign_in(browser, "Boss@General.example", GOOD)
    assert r.status_code == 303 and r.headers["location"] == "/"
    dashboard = await browser.get("/")
    assert "General Hospital" in dashboard.text and "Organisation administrator" in dashboard.text
    r = await browser.get("/directory")
    assert r.headers["location"] == f"/orgs/{general.id}"
    page = await browser.get(r.headers["location"])
    assert "Update Organization" in page.text and "Min, Ada" not in page.text
    assert "Lee, Ann" in page.text  # the administrators list: the registered administrator
    other = await env.hospital("Other Hospital")
    assert (await browser.get(f"/orgs/{other.id}")).status_code == 404
    assert (await browser.get("/users")).status_code == 403  # console users: system admins


async def test_pin_reset_through_the_mailed_link(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "jdoe")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/user/jdoe"
    shown = await admin.get(page)
    await admin.post(f"{page}/reset-pin", data={"csrf_token": csrf_of(shown.text)})
    link = env.link("jdoe@staff.example", "/pin-reset/")
    browser = await env.anonymous()
    form = await browser.get(link)
    assert form.status_code == 200 and "Choose a new PIN" in form.text and "jdoe" in form.text
    token = csrf_of(form.text)
    r = await browser.post(link, data={"pin": "4321", "pin_confirm": "4321"})
    assert r.status_code == 403  # no CSRF token
    r = await browser.post(link, data={"pin": "4321", "pin_confirm": "4321", "csrf_token": token})
    assert r.status_code == 400 and 'aria-invalid="true"' in r.text
    r = await browser.post(link, data={"pin": "7391", "pin_confirm": "7392", "csrf_token": token})
    assert r.status_code == 400 and "The two PINs differ." in r.text
    with pytest.raises(WrongPinError):
        await env.directory.pins.verify("jdoe", "7391")
    r = await browser.post(link, data={"pin": "7391", "pin_confirm": "7391", "csrf_token": token})
    assert r.status_code == 200 and "Your PIN has been changed" in r.text
    assert not (await env.directory.pins.verify("jdoe", "7391")).must_change
    again = await browser.get(link)
    assert again.status_code == 410 and "This PIN reset link is not valid any more" in again.text
    r = await browser.post(link, data={"pin": "8264", "pin_confirm": "8264", "csrf_token": token})
    assert r.status_code == 410
    await admin.post(f"{page}/reset-pin", data={"csrf_token": csrf_of(shown.text)})
    link = env.link("jdoe@staff.example", "/pin-reset/")
    env.clock.advance(25 * 3600)
    assert (await browser.get(link)).status_code == 410
