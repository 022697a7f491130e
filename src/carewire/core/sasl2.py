"""The kernel's side of SASL2 logins: FAST, the PIN, Bind2 and tokens (XEP-0388/0386/0484).

Theory of operation
-------------------
:class:`~carewire.core.c2s.ClientConnection` runs SCRAM and PLAIN the same
way for both SASL profiles; what only SASL2 has is decided here:

- :func:`admissible` refuses requests the exchange cannot start with (a
  token requested without a user-agent id);
- :func:`fast_login` checks an HT-* proof (XEP-0484) against the client's
  tokens under the same lockout policy as passwords, then — when the user has
  a directory PIN — the PIN sent with it. The PIN only unlocks a valid token:
  it is never looked at otherwise, and a wrong one is a failed login that
  counts toward the lockout;
- :func:`succeed` audits the login, issues or rotates the token, binds the
  resource inline (XEP-0386: ``tag/stable-id``, with the inline features the
  features registered in ``ctx.bind2``) and sends ``<success/>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Protocol
from xml.etree.ElementTree import Element

from carewire.core.auth import LOCKED_TEXT, Admission, Authenticator
from carewire.core.fast import FastTokens, Issued, Verdict
from carewire.core.feature import ClientLink, InlineResume, PinGate
from carewire.core.kernel import Kernel
from carewire.core.sessions import Session
from carewire.xmpp import sasl2
from carewire.xmpp.jid import JID, InvalidJID, normalize_resource
from carewire.xmpp.stream import StreamConfig

log = logging.getLogger(__name__)


class Transport(Protocol):
    """What this module reads of the connection's transport facts (``ConnectionInfo``)."""

    @property
    def remote_ip(self) -> str:
        """The client's address."""

    @property
    def transport(self) -> str:
        """``c2s``, ``c2s-tls`` or ``websocket``."""

    @property
    def channel_binding(self) -> bytes | None:
        """tls-server-end-point data, if any."""


class ClientConnection(ClientLink, Protocol):
    """The connection a SASL2 login runs on (:class:`carewire.core.c2s.ClientConnection`)."""

    kernel: Kernel
    auth: Authenticator
    fake_secret: bytes
    fast: FastTokens | None
    mech_name: str
    request: sasl2.Authenticate | None

    @property
    def info(self) -> Transport:
        """The transport facts."""

    async def sasl_failed(
        self, username: str | None, condition: str, text: str, *, counts: bool, reason: str = ""
    ) -> None:
        """Answer and audit a failure."""

    async def refuse(self, login: str, decision: Admission) -> None:
        """Answer and audit an attempt the lockout policy refuses."""

    def new_session(self, jid: JID) -> tuple[Session, Session | None]:
        """Bind ``jid`` to the connection."""

    async def after_bind(self, session: Session, old: Session | None) -> None:
        """End the replaced session, announce the new one."""


#: The answer to each failed FAST verdict: (condition, text, counts toward the lockout).
FAST_FAILURES: dict[Verdict, tuple[str, str, bool]] = {
    Verdict.NO_TOKEN: ("not-authorized", "", True),
    Verdict.WRONG: ("not-authorized", "", True),
    Verdict.WRONG_MECHANISM: ("not-authorized", "the token is bound to another mechanism", True),
    # XEP-0484: "If the server no longer trusts a token, it MUST instead fail the
    # authentication (returning the SASL 'credentials-expired' error condition)".
    Verdict.EXPIRED: ("credentials-expired", "the token has expired", False),
    Verdict.REPLAYED: (
        "credentials-expired",
        "token replayed: this device's tokens are revoked",
        True,
    ),
    Verdict.STALE_COUNT: ("not-authorized", "replayed count", True),
}
PIN_REQUIRED = "this account needs its PIN with a FAST token"
WRONG_PIN = "The PIN is not correct."
BIND_FAILED = "the requested resource binding is not possible"


def ssdp_of(config: StreamConfig, mechanism: str) -> str | None:
    """XEP-0474 'h' for a SCRAM mechanism offered over SASL2 (None without SASL2)."""
    offer = config.sasl2_offer
    if offer is None:
        return None
    hf = "sha1" if mechanism.startswith("SCRAM-SHA-1") else "sha256"
    return sasl2.ssdp_hash(offer.mechanisms, offer.channel_bindings or None, hf)


async def admissible(conn: ClientConnection, request: sasl2.Authenticate) -> bool:
    """Whether the exchange may start (False: answered with a failure)."""
    wants_fast = request.request_token is not None or request.fast is not None
    if wants_fast and (conn.fast is None or request.agent_id is None):
        # XEP-0484: clients "MUST also provide a SASL2 <user-agent> element with an 'id'".
        text = "FAST needs a user-agent id" if conn.fast else "FAST is not offered"
        await conn.sasl_failed(None, "malformed-request", text, counts=False)
        return False
    return True


async def fast_login(conn: ClientConnection, request: sasl2.Authenticate) -> None:
    """An HT-* ``<authenticate/>``: token, then PIN, then success (one round trip)."""
    fast = conn.fast
    try:
        authcid, proof = sasl2.split_ht_response(request.initial_response)
        if request.fast is None or request.agent_id is None or fast is None:
            raise sasl2.MalformedAuthenticate(
                "malformed-request", "a FAST login needs <fast/> and a user-agent id"
            )
    except sasl2.MalformedAuthenticate as exc:
        await conn.sasl_failed(None, exc.condition, exc.text, counts=False)
        return
    domain = conn.kernel.hosts.domain
    login = conn.auth.login_of(authcid, domain)
    if login is None:
        await conn.sasl_failed(authcid, "not-authorized", "", counts=False)
        return
    decision, _ = await conn.auth.lookup(login, "SCRAM-SHA-256", remote_ip=conn.info.remote_ip)
    if decision is not Admission.ALLOW:
        await conn.refuse(login, decision)
        return
    cb = conn.info.channel_binding or b"" if request.mechanism == sasl2.HT_ENDP else b""
    now = conn.kernel.clock.now()
    verdict, record, slot = await fast.verify(
        login,
        request.agent_id,
        mechanism=request.mechanism,
        proof=proof,
        cb_data=cb,
        count=request.fast.count,
        now=now,
    )
    if verdict is not Verdict.VALID:
        condition, text, counts = FAST_FAILURES[verdict]
        if verdict is Verdict.REPLAYED:
            log.warning("replayed FAST token of %s from %s", login, conn.info.remote_ip)
        await conn.sasl_failed(login, condition, text, counts=counts, reason=f"fast {verdict}")
        return
    assert record is not None and slot is not None
    if not await _pin_unlocks(conn, login, request):
        return
    additional = fast.responder(record, slot, cb)
    issued: Issued | None = None
    if request.fast.is_invalidate:
        await fast.invalidate(login, request.agent_id)
    else:
        issued = await fast.consume(record, slot, count=request.fast.count, now=now)
    await succeed(conn, login, additional, issued=issued)


async def _pin_unlocks(conn: ClientConnection, login: str, request: sasl2.Authenticate) -> bool:
    """The directory PIN check of a FAST login whose token is valid (False: answered)."""
    gate = conn.kernel.ctx.find(PinGate)  # type: ignore[type-abstract]
    if gate is None or not conn.kernel.ctx.config.fast_require_pin:
        return True
    if not await gate.is_required(login):
        return True
    if request.pin is None:
        await conn.sasl_failed(login, "not-authorized", PIN_REQUIRED, counts=False, reason="no pin")
        return False
    if not await gate.matches(login, request.pin, remote_ip=conn.info.remote_ip):
        await conn.sasl_failed(login, "not-authorized", WRONG_PIN, counts=True, reason="wrong-pin")
        account = await conn.kernel.stores.accounts.get(login)
        if account is not None and account.is_locked:
            # As the PIN IQ does (docs/pin.md): a lock by wrong PINs ends the user's sessions.
            log.info("account %s locked after repeated wrong PINs: ending its sessions", login)
            conn.kernel.ctx.accounts.end_sessions(login, text=LOCKED_TEXT)
        return False
    return True


async def succeed(
    conn: ClientConnection, login: str, additional: bytes | None, *, issued: Issued | None
) -> None:
    """Audit, issue the token asked for, bind inline, and send ``<success/>``."""
    request = conn.request
    assert request is not None
    conn.request = None
    now = conn.kernel.clock.now()
    await conn.auth.succeeded(
        login,
        remote_ip=conn.info.remote_ip,
        transport=conn.info.transport,
        mechanism=conn.mech_name,
    )
    if request.request_token is not None and issued is None and conn.fast is not None:
        assert request.agent_id is not None
        issued = await conn.fast.issue(login, request.agent_id, request.request_token, now)
    extra: list[Element] = []
    session = old = resumed = None
    resumer = conn.kernel.ctx.find(InlineResume)  # type: ignore[type-abstract]
    if request.resume is not None and resumer is not None:
        # XEP-0386: "If the client included a <resume/> element ... that MUST be
        # processed first"; if it fails, the <failed/> is included and binding goes on.
        resumed, answer = await resumer.prepare(login, request.resume)
        extra.append(answer)
    if request.bind is not None and resumed is None:
        session, old = conn.new_session(_bind_jid(conn, login, request))
        extra.append(await _inline(conn, session, request.bind))
    if issued is not None:
        expiry = issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # XEP-0082 DateTime
        extra.append(sasl2.token_element(issued.token, expiry))
    bound = session or resumed
    identifier = str(bound.jid) if bound else f"{login}@{conn.kernel.hosts.domain}"
    success = sasl2.success_element(identifier, additional, extra)
    conn.stream.sasl2_success(login, success, is_bound=bound is not None)
    log.info("authenticated %s via %s (SASL2) from %s", login, conn.mech_name, conn.info.remote_ip)
    if resumed is not None and resumer is not None:
        await resumer.complete(conn, resumed)
    elif session is not None:
        await conn.after_bind(session, old)


def _bind_jid(conn: ClientConnection, login: str, request: sasl2.Authenticate) -> JID:
    """XEP-0386 §identifiers: ``tag/id``, stable per tag and user-agent id (never exposing it)."""
    assert request.bind is not None
    domain = conn.kernel.hosts.domain
    if request.agent_id is not None:
        key = f"{login}\x00{request.agent_id}\x00{request.bind.tag}".encode()
        mac = hmac.new(conn.fake_secret, b"bind2\x00" + key, hashlib.sha256).digest()
        suffix = base64.b32encode(mac[:10]).decode("ascii").lower()
    else:
        suffix = conn.kernel.sessions.generate_resource()
    for resource in (f"{request.bind.tag}/{suffix}", suffix):
        try:
            return JID.make(login, domain, normalize_resource(resource))
        except InvalidJID:
            continue  # a tag PRECIS refuses: the server-generated part alone
    return JID.make(login, domain, conn.kernel.sessions.generate_resource())


async def _inline(conn: ClientConnection, session: Session, bind: sasl2.BindRequest) -> Element:
    """Enable the inline features asked for; ``<bound/>`` with what they answered."""
    bound = Element(f"{{{sasl2.BIND2}}}bound")
    for child in bind.inline:
        handler = conn.kernel.ctx.bind2.lookup(child.tag)
        if handler is None:
            continue  # not advertised: ignored
        answer = await handler(session, child)
        if answer is not None:
            bound.append(answer)
    return bound
