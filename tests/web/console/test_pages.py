"""The console over HTTP: every route, redirects, roles, CSRF, headers, inactivity and resets."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from carewire.mail import OutboxMailer, SmtpMailer
from carewire.security.audit import AuditTrail
from carewire.security.console_auth import ConsoleAccounts, Role
from carewire.security.console_model import GENERIC_FAILURE
from carewire.storage.audit import SqlAuditStore
from carewire.storage.console import SqlConsoleStore
from carewire.web.console import create_console
from tests.web.console.conftest import (
    GOOD,
    Console,
    SmtpServer,
    client_for,
    csrf_of,
    read_mails,
    reset_path,
    services,
    sign_in,
    text_of,
)

HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "strict-transport-security": "max-age=31536000",
    "x-frame-options": "DENY",
}


def assert_secure(response: httpx.Response, *, page: bool = True) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (name, response.request.url)
    if page:
        assert response.headers.get("cache-control") == "no-store"


def cookie_header(response: httpx.Response, name: str) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


async def test_anonymous_pages_redirect_to_sign_in(console: Console) -> None:
    for path in ("/", "/account/password", "/users"):
        r = await console.client.get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/signin"), path
        assert_secure(r)


async def test_sign_in_page(console: Console) -> None:
    r = await console.client.get("/signin")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert_secure(r)
    html = r.text
    assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html
    assert '<label for="username">' in html and '<label for="password">' in html
    assert 'href="/forgot"' in html and "20 minutes without activity" in html
    csrf = cookie_header(r, "cw_csrf").lower()
    assert all(flag in csrf for flag in ("httponly", "secure", "samesite=strict", "path=/"))
    assert csrf_of(html) == r.cookies["cw_csrf"]
    static = await console.client.get("/static/console.css")
    assert static.status_code == 200 and "skip-link" in static.text
    assert_secure(static, page=False)
    assert "no-store" not in static.headers.get("cache-control", "")
    js = await console.client.get("/static/console.js")
    assert "/signout?reason=inactivity" in js.text


async def test_sign_in_and_dashboard(console: Console) -> None:
    await console.add_user("alice", email="alice@h.example")
    r = await sign_in(console.client, "alice@h.example")
    assert (r.status_code, r.headers["location"]) == (303, "/")
    session = cookie_header(r, "cw_session").lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/"):
        assert flag in session
    assert "max-age" not in session and "expires" not in session  # gone with the browser
    r = await console.client.get("/")
    assert r.status_code == 200
    assert_secure(r)
    expected = [
        "alice",
        "System administrator",
        'data-session-timeout="1200"',
        'src="/static/console.js"',
        'aria-label="Main"',
        *(f'href="/{s}"' for s in ("adapters", "xmpp", "certificates", "datasets", "rules")),
        *(f'href="/{s}"' for s in ("deliveries", "audit", "users")),
    ]
    for text in expected:
        assert text in r.text, text
    # Signed in, the sign-in page goes to the dashboard.
    assert (await console.client.get("/signin")).headers["location"] == "/"


async def test_sections_answer_a_friendly_404(console: Console) -> None:
    await console.add_user("alice")
    await sign_in(console.client, "alice")
    for path in ("/no/such/page", "/adapters/nothing-here"):
        r = await console.client.get(path)
        assert r.status_code == 404 and "Page not found" in r.text
        assert_secure(r)
    r = await console.client.put("/signin")
    assert r.status_code == 405 and "Not allowed" in r.text


async def test_wrong_credentials_are_generic(console: Console) -> None:
    await console.add_user("bob")
    answers = []
    for login, password in (("bob", "wrong password!"), ("nobody", GOOD)):
        r = await sign_in(console.client, login, password)
        assert r.status_code == 401 and "cw_session" not in r.cookies
        answers.append(r.text.replace(login, "LOGIN"))
        assert GENERIC_FAILURE in r.text
    assert answers[0] == answers[1]
    for _ in range(9):
        await sign_in(console.client, "bob", "wrong password!")
        console.clock.advance(180)
    r = await sign_in(console.client, "bob", GOOD)  # locked now
    assert r.status_code == 401 and GENERIC_FAILURE in r.text
    reasons = [
        e["details"]["reason"] for e in await console.opened.audit() if e["outcome"] == "failure"
    ]
    assert reasons[:2] == ["wrong-password", "unknown-user"] and reasons[-1] == "locked"


async def test_first_admin_must_change_the_password(console: Console) -> None:
    password = await console.accounts.ensure_first_admin("carewire.test")
    assert password is not None
    r = await sign_in(console.client, "admin", password)
    assert r.headers["location"] == "/account/password"
    for path in ("/", "/users"):
        assert (await console.client.get(path)).headers["location"] == "/account/password"
    page = await console.client.get("/account/password")
    assert "Choose a new password before you continue" in page.text
    assert 'aria-label="Main"' not in page.text  # no way around it
    token = csrf_of(page.text)
    r = await console.client.post(
        "/account/password",
        data={"current": password, "password": "short", "confirm": "short", "csrf_token": token},
    )
    assert r.status_code == 400 and "at least 12 characters" in r.text
    r = await console.client.post(
        "/account/password",
        data={"current": password, "password": GOOD, "confirm": GOOD + "x", "csrf_token": token},
    )
    assert r.status_code == 400 and "not the same" in r.text
    r = await console.client.post(
        "/account/password",
        data={"current": password, "password": GOOD, "confirm": GOOD, "csrf_token": token},
    )
    assert (r.status_code, r.headers["location"]) == (303, "/?m=password-changed")
    r = await console.client.get("/?m=password-changed")
    assert r.status_code == 200 and "Your password has been changed." in r.text


@pytest.mark.parametrize(
    ("role", "users_status", "text"),
    [
        (Role.SYSTEM_ADMIN, 200, "System administrator"),
        (Role.ORG_ADMIN, 403, "Organisation administrator"),
        (Role.AUDITOR, 403, "can view every section but change nothing"),
    ],
)
async def test_roles(console: Console, role: Role, users_status: int, text: str) -> None:
    await console.add_user("someone", role)
    await sign_in(console.client, "someone")
    r = await console.client.get("/")
    assert r.status_code == 200 and text in r.text
    assert ('href="/users"' in r.text) is (role is Role.SYSTEM_ADMIN)
    r = await console.client.get("/users")
    assert r.status_code == users_status
    if users_status == 403:
        assert "Not allowed for your role" in r.text
        assert_secure(r)
    else:
        assert "<caption>" in r.text and "someone" in r.text
    assert (await console.client.get("/account/password")).status_code == 200


async def test_posts_without_csrf_are_refused(console: Console) -> None:
    await console.add_user("carol", email="carol@h.example")
    anon = console.new_client()
    await anon.get("/signin")  # has the cw_csrf cookie, but sends no field
    for path, data in (
        ("/signin", {"username": "carol", "password": GOOD}),
        ("/forgot", {"login": "carol"}),
        ("/reset/whatever", {"password": GOOD, "confirm": GOOD}),
        ("/signout", {}),
    ):
        r = await anon.post(path, data=data)
        assert r.status_code == 403 and "This form has expired" in r.text, path
        assert_secure(r)
        r = await anon.post(path, data={**data, "csrf_token": "forged-value-of-some-length"})
        assert r.status_code == 403, path
    assert read_mails(console.outbox) == []
    await sign_in(console.client, "carol")
    for path, data in (
        ("/account/password", {"current": GOOD, "password": GOOD + "!", "confirm": GOOD + "!"}),
        ("/signout", {}),
    ):
        r = await console.client.post(path, data=data)
        assert r.status_code == 403 and "This form has expired" in r.text, path
    assert (await console.client.get("/")).status_code == 200  # still signed in
    page = await console.client.get("/")
    r = await console.client.post("/signout", headers={"X-CSRF-Token": csrf_of(page.text)})
    assert (r.status_code, r.headers["location"]) == (303, "/signout")


async def test_sign_out(console: Console) -> None:
    await console.add_user("dave")
    await sign_in(console.client, "dave")
    page = await console.client.get("/signout")
    assert "Do you want to sign out" in page.text  # GET alone ends nothing
    r = await console.client.post("/signout", data={"csrf_token": csrf_of(page.text)})
    assert r.headers["location"] == "/signout"
    assert (await console.client.get("/")).headers["location"] == "/signin"
    r = await console.client.get("/signout")
    assert r.status_code == 200 and "You are signed out." in r.text
    assert [e["action"] for e in await console.opened.audit()][-1] == "logout"


async def test_inactivity_ends_the_session(console: Console) -> None:
    await console.add_user("erin")
    await sign_in(console.client, "erin")
    console.clock.advance(19 * 60)
    assert (await console.client.get("/")).status_code == 200
    console.clock.advance(20 * 60 + 1)
    r = await console.client.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/signin?m=inactive")
    r = await console.client.get("/signin?m=inactive")
    assert "You were signed out after 20 minutes without activity" in r.text
    [logout] = [e for e in await console.opened.audit() if e["action"] == "logout"]
    assert logout["details"]["reason"] == "inactivity"


async def test_the_inactivity_timer_page(console: Console) -> None:
    await console.add_user("fay")
    await sign_in(console.client, "fay")
    console.clock.advance(20 * 60 + 2)
    r = await console.client.get("/signout?reason=inactivity")
    assert r.status_code == 200 and "20 minutes without activity" in r.text
    assert (await console.client.get("/")).headers["location"] == "/signin"


async def test_forgot_password_end_to_end(console: Console) -> None:
    await console.add_user("gina", Role.ORG_ADMIN, email="gina@h.example")
    old = console.new_client()
    await sign_in(old, "gina")
    page = await console.client.get("/forgot")
    assert '<label for="login">' in page.text
    answers = []
    for login in ("nobody@h.example", "gina@h.example"):
        r = await console.client.post(
            "/forgot", data={"login": login, "csrf_token": csrf_of(page.text)}
        )
        assert r.status_code == 200
        answers.append(r.text)
    assert answers[0] == answers[1] and "If the account exists, a message has been sent" in r.text
    [mail] = read_mails(console.outbox)
    assert mail["To"] == "gina@h.example" and mail["From"] == "carewire@carewire.test"
    body = text_of(mail)
    assert "within 30 minutes" in body
    path = reset_path(body)
    form = await console.client.get(path)
    assert form.status_code == 200 and '<label for="confirm">' in form.text
    token = csrf_of(form.text)
    short = {"password": "short", "confirm": "short", "csrf_token": token}
    r = await console.client.post(path, data=short)
    assert r.status_code == 400 and "at least 12 characters" in r.text
    new = "a completely new password"
    r = await console.client.post(path, data={"password": new, "confirm": new, "csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, "/signin?m=changed")
    assert "Your password has been changed" in (await console.client.get("/signin?m=changed")).text
    assert (await old.get("/")).headers["location"] == "/signin"  # every session ended
    again = await console.client.get(path)
    assert again.status_code == 410 and "not valid any more" in again.text
    r = await console.client.post(path, data={"password": new, "confirm": new, "csrf_token": token})
    assert r.status_code == 410
    assert (await sign_in(console.client, "gina", GOOD)).status_code == 401
    assert (await sign_in(console.client, "gina", new)).headers["location"] == "/"
    confirmation = read_mails(console.outbox)[1]
    assert "was changed" in confirmation["Subject"] and confirmation["To"] == "gina@h.example"
    await old.aclose()


async def test_reset_link_expires(console: Console) -> None:
    await console.add_user("hank", email="hank@h.example")
    page = await console.client.get("/forgot")
    await console.client.post("/forgot", data={"login": "hank", "csrf_token": csrf_of(page.text)})
    [mail] = read_mails(console.outbox)
    console.clock.advance(31 * 60)
    r = await console.client.get(reset_path(text_of(mail)))
    assert r.status_code == 410 and 'href="/forgot"' in r.text


async def test_server_errors_show_no_internals(console: Console) -> None:
    class Broken(ConsoleAccounts):
        async def request_reset(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
            raise RuntimeError("secret internals: db password hunter2")

    o = console.opened
    broken = Broken(SqlConsoleStore(o.db), o.clock, AuditTrail(SqlAuditStore(o.db), o.clock))
    svc = services(console.opened, OutboxMailer(console.outbox))
    app = create_console(replace(svc, accounts=broken))
    async with client_for(httpx.ASGITransport(app=app, raise_app_exceptions=False)) as client:
        page = await client.get("/forgot")
        r = await client.post("/forgot", data={"login": "x", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 500 and "Something went wrong" in r.text
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert_secure(r)


async def test_reset_mail_through_smtp(console: Console, smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(
        smtp_server.host, smtp_server.port, starttls=False, sender="carewire@carewire.test"
    )
    svc = services(console.opened, mailer)
    app = create_console(svc)
    await console.add_user("ivy", email="ivy@h.example")
    async with client_for(httpx.ASGITransport(app=app)) as client:
        page = await client.get("/forgot")
        await client.post("/forgot", data={"login": "ivy", "csrf_token": csrf_of(page.text)})
        assert smtp_server.inbox.received.wait(10)
        [msg] = smtp_server.inbox.messages
        assert msg["To"] == "ivy@h.example" and "Reset your" in msg["Subject"]
        assert smtp_server.inbox.envelopes == [("carewire@carewire.test", ["ivy@h.example"])]
        form = await client.get(reset_path(text_of(msg)))
        assert form.status_code == 200


async def test_mounted_at_the_root_after_the_other_routes(console: Console) -> None:
    """As the HTTPS app mounts it: after /healthz, /xmpp-websocket and /api/v1."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    api = Starlette(routes=[Route("/things", healthz)])
    outer = Starlette(
        routes=[
            Route("/healthz", healthz),
            Mount("/api/v1", app=api),
            Mount("/", app=create_console(console.services)),
        ]
    )
    await console.add_user("zoe")
    async with client_for(httpx.ASGITransport(app=outer)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/api/v1/things")).status_code == 200
        assert (await client.get("/api/v1/nothing")).status_code == 404
        assert (await client.get("/")).headers["location"] == "/signin"
        assert (await sign_in(client, "zoe")).headers["location"] == "/"
        r = await client.get("/")
        assert r.status_code == 200 and "zoe" in r.text
        assert_secure(r)
        static = await client.get("/static/console.js")
        assert static.status_code == 200 and "no-store" not in static.headers.get(
            "cache-control", ""
        )
        assert (await client.get("/adapters")).status_code == 404
