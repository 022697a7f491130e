"""XEP-0077 In-Band Registration: create accounts before login, change passwords, cancel.

Off by default (``register_enabled``): hospital accounts are normally
provisioned by administrators. When it is off nothing is registered — no
stream feature, no pre-authentication handler (the stream refuses pre-auth
IQs) and no post-authentication handler (the router answers
``service-unavailable``).

When it is on:

* before authentication, ``<register xmlns='http://jabber.org/features/iq-register'/>``
  is advertised and ``jabber:iq:register`` get/set create accounts;
* after authentication, a set with ``<username/>`` and ``<password/>``
  changes the user's own password and ``<remove/>`` deletes the account:
  the result is sent first, then the account is removed, which ends all its
  sessions with a ``not-authorized`` stream error (XEP-0077 §3.2).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from xml.etree.ElementTree import Element, SubElement

from carewire.core.accounts import AccountInput, normalize_login
from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget, StreamPhase
from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.security.console_model import MIN_PASSWORD_LENGTH
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.xml import child

log = logging.getLogger(__name__)

QUERY = f"{{{ns.REGISTER}}}query"
USERNAME = f"{{{ns.REGISTER}}}username"
PASSWORD = f"{{{ns.REGISTER}}}password"
REMOVE = f"{{{ns.REGISTER}}}remove"
REGISTERED = f"{{{ns.REGISTER}}}registered"
INSTRUCTIONS = f"{{{ns.REGISTER}}}instructions"
FEATURE = f"{{{ns.REGISTER_FEATURE}}}register"

NEW_ACCOUNT_INSTRUCTIONS = "Choose a username and password to register with this server."
REGISTERED_INSTRUCTIONS = "You are registered. Send a new password to change it."


def _text(query: Element, tag: str) -> str:
    el = child(query, tag)
    return (el.text or "") if el is not None else ""


def _query(payload: Element | None) -> Element:
    if payload is None or payload.tag != QUERY:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "expected a jabber:iq:register query")
    return payload


class Registration:
    """jabber:iq:register before and after authentication."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        # Account removals in flight (strong references keep the tasks alive).
        self._removals: set[asyncio.Task[None]] = set()
        # Recent successful registrations per address (monotonic times), for the limit.
        self._recent: dict[str, deque[float]] = {}

    def _check_rate(self, remote_ip: str) -> None:
        """At most ``register_limit`` new accounts per address per ``register_window``.

        XEP-0077 §3.1 allows a <not-acceptable/> refusal; without a limit an
        open registration would be an account factory for anyone on the network.
        """
        cfg = self.ctx.config
        now = self.ctx.clock.monotonic()
        recent = self._recent.setdefault(remote_ip, deque())
        while recent and now - recent[0] >= cfg.register_window:
            recent.popleft()
        if len(recent) >= cfg.register_limit:
            log.warning("registration refused for %s: too many from this address", remote_ip)
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE,
                "too many registrations from this address; try later",
            )
        if len(self._recent) > 10_000:  # bounded memory: forget idle addresses
            for ip in [ip for ip, q in self._recent.items() if not q]:
                del self._recent[ip]

    # -- before authentication --------------------------------------------------

    async def preauth(self, stanza: Element, remote_ip: str) -> Element | None:
        """A jabber:iq:register IQ on a stream that has not authenticated yet."""
        query = _query(stanza[0] if len(stanza) == 1 else None)
        iq_type = stanza.get("type")
        if iq_type == "get":
            return self._form()
        if iq_type != "set":
            raise StanzaError(StanzaCondition.BAD_REQUEST, "expected get or set")
        if child(query, REMOVE) is not None:
            raise StanzaError(StanzaCondition.NOT_AUTHORIZED, "authenticate before cancelling")
        username = _text(query, USERNAME).strip()
        password = _text(query, PASSWORD)
        if not username or not password:
            # XEP-0077 §3.1: "If the requesting entity does not provide all of the
            # requested information during registration ... then the server or
            # service MUST return a <not-acceptable/> error".
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "username and password are required")
        _check_length(password)
        self._check_rate(remote_ip)
        try:
            account = await self.ctx.accounts.create(
                AccountInput(login=username, password=password)
            )
        except ConflictError:
            # XEP-0077 §3.1: "a username conflict (the desired username is already
            # in use by another entity)" → <conflict/>.
            raise StanzaError(StanzaCondition.CONFLICT, "the username is taken") from None
        except ValidationError as exc:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, exc.message) from None
        self._recent[remote_ip].append(self.ctx.clock.monotonic())
        log.info("in-band registration of %s from %s", account.login, remote_ip or "?")
        return None

    def _form(self) -> Element:
        query = Element(QUERY)
        SubElement(query, INSTRUCTIONS).text = NEW_ACCOUNT_INSTRUCTIONS
        SubElement(query, USERNAME)
        SubElement(query, PASSWORD)
        return query

    # -- after authentication ---------------------------------------------------

    async def account_get(self, req: IqRequest) -> Element | None:
        """XEP-0077 §3.1: an authenticated entity is told it is registered.

        "the IQ result ... MUST contain an empty <registered/> element ... SHOULD
        contain the registration information currently on file for the entity
        (although the <password/> element MAY be empty)".
        """
        query = Element(QUERY)
        SubElement(query, INSTRUCTIONS).text = REGISTERED_INSTRUCTIONS
        SubElement(query, REGISTERED)
        SubElement(query, USERNAME).text = req.sender_login
        SubElement(query, PASSWORD)
        return query

    async def account_set(self, req: IqRequest) -> Element | None:
        """Cancel the registration (<remove/>) or change the password."""
        query = req.payload
        login = req.sender_login
        if child(query, REMOVE) is not None:
            if len(query) != 1:
                # XEP-0077 §3.2: <bad-request/> when "The <remove/> element was not
                # the only child element of the <query/> element."
                raise StanzaError(StanzaCondition.BAD_REQUEST, "remove must be the only child")
            self._remove_after_reply(login)
            return None
        await self._change_password(login, query)
        return None

    async def _change_password(self, login: str, query: Element) -> None:
        username = _text(query, USERNAME).strip()
        password = _text(query, PASSWORD)
        if not username or not password:
            # XEP-0077 §3.3: "If the user provides an empty password element ...,
            # the server or service MUST NOT change the password to a null value,
            # but instead MUST maintain the existing password."
            raise StanzaError(StanzaCondition.BAD_REQUEST, "username and password are required")
        try:
            same = normalize_login(username) == login
        except ValidationError:
            same = False
        if not same:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only your own password can be changed")
        _check_length(password)
        try:
            await self.ctx.accounts.set_password(login, password)
        except ValidationError as exc:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, exc.message) from None
        except NotFoundError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such account") from None

    def _remove_after_reply(self, login: str) -> None:
        """Remove the account once the result has gone out.

        Removal closes every session of the account at once (XEP-0077 §3.2:
        "the server SHOULD then return a <not-authorized/> stream error and
        terminate all active sessions"), so it cannot happen inside the
        handler: the router writes the result right after the handler
        returns, and the task runs after that.
        """
        task = asyncio.create_task(self._remove(login), name=f"unregister-{login}")
        self._removals.add(task)
        task.add_done_callback(self._removals.discard)

    async def _remove(self, login: str) -> None:
        try:
            removed = await self.ctx.accounts.remove(login)
        except Exception:
            log.exception("in-band removal of %s failed", login)
            return
        if removed:
            log.info("account %s cancelled its registration in-band", login)


def setup(ctx: FeatureContext) -> None:
    """Enable in-band registration if ``config.register_enabled``; otherwise do nothing."""
    if not ctx.config.register_enabled:
        return
    registration = Registration(ctx)
    ctx.add_stream_feature(StreamPhase.PRE_AUTH, lambda: Element(FEATURE))
    ctx.iq.register_preauth(QUERY, registration.preauth)
    ctx.disco.add_server_feature(ns.REGISTER)
    # XEP-0077 §3.3 sends password changes to the server; §3.2 removals carry no 'to'.
    targets = (IqTarget.HOST, IqTarget.ACCOUNT)
    ctx.iq.register(QUERY, registration.account_get, types=("get",), targets=targets)
    ctx.iq.register(QUERY, registration.account_set, types=("set",), targets=targets)


def _check_length(password: str) -> None:
    """The console's password policy holds for XMPP passwords too (at least 12 characters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StanzaError(
            StanzaCondition.NOT_ACCEPTABLE,
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
        )
