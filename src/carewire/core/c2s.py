"""What the kernel does for one client connection: SASL, binding, stanza intake (RFC 6120 §6–§7).

Theory of operation: the network driver owns the socket and a
:class:`~carewire.xmpp.stream.C2SStream`; it hands every stream event to
:meth:`ClientConnection.handle`, in order, and writes what the stream queues.
This class makes the decisions the sans-IO stream cannot: it runs the SASL
mechanism against stored keys under the lockout policy, binds the resource
in the :class:`SessionManager` (replacing a same-resource session, RFC 6120
§7.7.2.2), and routes stanzas of the bound session.

Nonzas (XEP-0198 stream management, XEP-0352 client state) are the
features': the connection hands them to the handlers registered in
``ctx.nonzas`` (the stream accepts only the namespaces registered there), as
the :class:`~carewire.core.feature.ClientLink` those handlers act through.
When the connection of a bound session ends, ``session/connection-lost`` asks
the features whether to keep the session (XEP-0198 resumption); if none does,
the session ends and ``session/closed`` fires.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from carewire.core import hook_names as H
from carewire.core import sasl2 as sasl2_login
from carewire.core.auth import (
    DISABLED_REASON,
    DISABLED_TEXT,
    EXTERNAL_SCRAM_TEXT,
    EXTERNAL_UNAVAILABLE_TEXT,
    HARD_LIMIT_TEXT,
    LOCKED_TEXT,
    Admission,
    Authenticator,
    ExternalVerdict,
)
from carewire.core.events import SessionEvent
from carewire.core.fast import FastTokens
from carewire.core.feature import ConnectionLost, InlineResume, StreamPhase
from carewire.core.kernel import Kernel
from carewire.core.sessions import Session, StanzaSink
from carewire.core.stores import LoginOutcome
from carewire.xmpp import sasl, sasl2
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import LocalProtocolError, StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID, InvalidJID, normalize_resource
from carewire.xmpp.parser import ParserLimits
from carewire.xmpp.stream import (
    AuthRequested,
    BindRequested,
    C2SStream,
    Event,
    Framing,
    PreAuthIq,
    SaslAborted,
    SaslResponse,
    StanzaReceived,
    StreamConfig,
    StreamEnded,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """Facts about the transport, known to the driver."""

    remote_ip: str
    transport: str  # "c2s" (STARTTLS), "c2s-tls" (XEP-0368) or "websocket"
    framing: Framing = Framing.TCP
    is_tls_active: bool = False
    channel_binding: bytes | None = None  # tls-server-end-point data (RFC 5929)


def stream_config(
    kernel: Kernel, info: ConnectionInfo, *, allow_register: bool, limits: ParserLimits
) -> StreamConfig:
    """The stream's advertised features for one connection."""
    mechs: list[str] = []
    if info.channel_binding is not None:
        mechs += list(sasl.PLUS_MECHANISMS)
    mechs += [*sasl.SCRAM_MECHANISMS, "PLAIN"]
    config = kernel.ctx.config
    offer = None
    if config.sasl2_enabled:
        fast: tuple[str, ...] = ()
        if config.fast_token_lifetime.total_seconds() > 0:
            fast = ((sasl2.HT_ENDP,) if info.channel_binding is not None else ()) + (sasl2.HT_NONE,)
        offer = sasl2.Offer(
            mechanisms=tuple(mechs),
            fast=fast,
            bind_inline=kernel.ctx.bind2.vars,
            is_sm_inline=kernel.ctx.find(InlineResume) is not None,  # type: ignore[type-abstract]
            channel_bindings=("tls-server-end-point",) if info.channel_binding else (),
        )
    return StreamConfig(
        domain=kernel.hosts.domain,
        framing=info.framing,
        is_tls_active=info.is_tls_active,
        mechanisms=tuple(mechs),
        pre_auth_features=kernel.stream_features(StreamPhase.PRE_AUTH),
        post_auth_features=kernel.stream_features(StreamPhase.POST_AUTH),
        allow_preauth_iq=allow_register,
        limits=limits,
        # The stream accepts the nonzas that features handle (smacks, csi).
        nonza_namespaces=kernel.ctx.nonzas.namespaces,
        sasl2_offer=offer,
    )


class ClientConnection:
    """Kernel-side state of one client connection."""

    __slots__ = (
        "_mech",
        "auth",
        "fake_secret",
        "fast",
        "info",
        "kernel",
        "mech_name",
        "on_bound",
        "request",
        "session",
        "sink",
        "stream",
    )

    def __init__(
        self,
        *,
        kernel: Kernel,
        auth: Authenticator,
        stream: C2SStream,
        sink: StanzaSink,
        info: ConnectionInfo,
        fake_secret: bytes,
        on_bound: Callable[[Session], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.auth = auth
        self.stream = stream
        self.sink = sink
        self.info = info
        self.fake_secret = fake_secret
        self.on_bound = on_bound
        self.session: Session | None = None
        self._mech: sasl.Mechanism | None = None
        self.mech_name = ""
        # The SASL2 request of the exchange in progress (None: legacy SASL, RFC 6120).
        self.request: sasl2.Authenticate | None = None
        config = kernel.ctx.config
        self.fast = (
            FastTokens(
                kernel.stores.fast,
                fake_secret,
                config.fast_token_lifetime,
                config.fast_rotate_after,
            )
            if config.sasl2_enabled and config.fast_token_lifetime.total_seconds() > 0
            else None
        )

    async def handle(self, event: Event) -> None:
        """Act on one stream event (events of one connection are handled in order)."""
        if self.session is not None and self.session.sink is not self.sink:
            return  # the session was resumed on another stream: this one is over
        if isinstance(event, StanzaReceived):
            await self._stanza(event)
        elif isinstance(event, AuthRequested):
            self.request = event.sasl2
            self.mech_name = event.mechanism
            if event.sasl2 is not None and not await sasl2_login.admissible(self, event.sasl2):
                return
            if event.mechanism in sasl2.HT_BINDINGS and event.sasl2 is not None:
                await sasl2_login.fast_login(self, event.sasl2)
                return
            self._mech = self._mechanism(event.mechanism)
            await self._sasl_step(self._mech.start(event.initial_response))
        elif isinstance(event, SaslResponse):
            if self._mech is not None:
                await self._sasl_step(self._mech.respond(event.data))
        elif isinstance(event, SaslAborted):
            self._mech = None
        elif isinstance(event, BindRequested):
            await self._bind(event)
        elif isinstance(event, PreAuthIq):
            await self._preauth_iq(event)
        elif isinstance(event, StreamEnded):
            await self.closed()
        else:  # nonzas go to the features that registered them
            await self.kernel.ctx.nonzas.dispatch(self, event)

    # -- SASL -----------------------------------------------------------------

    def _mechanism(self, name: str) -> sasl.Mechanism:
        if name == "PLAIN":
            return sasl.PlainServerMechanism(
                domain=self.kernel.hosts.domain,
                fake_secret=self.fake_secret,
                fake_iterations=self.kernel.accounts.iterations,
            )
        # The binding data goes to the non-PLUS mechanisms too: a client flag 'y'
        # then reveals a downgrade attack (RFC 5802 §6).
        return sasl.ScramServerMechanism(
            name,
            channel_binding=self.info.channel_binding,
            fake_secret=self.fake_secret,
            fake_iterations=self.kernel.accounts.iterations,
            ssdp=sasl2_login.ssdp_of(self.stream.config, name) if self.request else None,
        )

    async def _sasl_step(self, step: sasl.Step) -> None:
        mech_name = self.mech_name
        while isinstance(step, sasl.NeedCredentials):
            login = self.auth.login_of(step.username, self.kernel.hosts.domain)
            if login is None:
                await self.sasl_failed(step.username, "not-authorized", "", counts=False)
                return
            decision, keys = await self.auth.lookup(
                login, step.mechanism, remote_ip=self.info.remote_ip
            )
            if decision is not Admission.ALLOW:
                await self.refuse(login, decision)
                return
            assert self._mech is not None
            external = self.auth.external
            if keys is None and external is not None and await external.is_external(login):
                step = await self._external(login, step)
                break
            step = self._mech.credentials(keys)
        if isinstance(step, sasl.Challenge):
            self.stream.sasl_challenge(step.data)
        elif isinstance(step, sasl.Success):
            login = self.auth.login_of(step.username, self.kernel.hosts.domain) or step.username
            self._mech = None
            if self.request is not None:
                await sasl2_login.succeed(self, login, step.data, issued=None)
                return
            self.stream.sasl_success(login, step.data)
            await self.auth.succeeded(
                login,
                remote_ip=self.info.remote_ip,
                transport=self.info.transport,
                mechanism=mech_name,
            )
            log.info("authenticated %s via %s from %s", login, mech_name, self.info.remote_ip)
        else:
            await self.sasl_failed(step.username, step.condition, step.text, counts=step.counts)

    async def _external(
        self, login: str, need: sasl.NeedCredentials
    ) -> sasl.Success | sasl.Failure:
        """The password of an account checked elsewhere (LDAP sign-in, docs/ldap.md).

        Only PLAIN carries a password; SCRAM cannot work without keys here.
        An unreachable directory is a temporary failure, not a wrong password.
        """
        if not isinstance(self._mech, sasl.PlainServerMechanism):
            return sasl.Failure("invalid-mechanism", EXTERNAL_SCRAM_TEXT, need.username, False)
        assert self.auth.external is not None
        password = self._mech.take_password()
        verdict = await self.auth.external.check_password(login, password)
        if verdict is ExternalVerdict.OK:
            return sasl.Success(need.username, None)
        if verdict is ExternalVerdict.UNAVAILABLE:
            return sasl.Failure(
                "temporary-auth-failure", EXTERNAL_UNAVAILABLE_TEXT, need.username, False
            )
        return sasl.Failure("not-authorized", "", need.username)

    async def sasl_failed(
        self, username: str | None, condition: str, text: str, *, counts: bool, reason: str = ""
    ) -> None:
        """Answer a failed attempt, audit it, and count it toward the lockout when ``counts``."""
        mech_name = self.mech_name
        self._mech = None
        self.request = None
        self.stream.sasl_failure(condition, text)
        login = self.auth.login_of(username, self.kernel.hosts.domain) if username else None
        await self.auth.failed(
            login or (username or "")[:64],
            remote_ip=self.info.remote_ip,
            transport=self.info.transport,
            mechanism=mech_name,
            reason=reason or condition,
            counts=counts and login is not None,
        )
        log.info("authentication failed (%s) from %s", reason or condition, self.info.remote_ip)

    async def refuse(self, login: str, decision: Admission) -> None:
        """Refuse an attempt the lockout policy does not admit (answered and audited)."""
        mech_name = self.mech_name
        self._mech = None
        self.request = None
        reason = decision.value
        if decision is Admission.THROTTLED:
            # The answer of an account inside its delay: nothing to tell the two apart.
            self.stream.sasl_failure("temporary-auth-failure", HARD_LIMIT_TEXT)
            await self.auth.throttled(
                login,
                remote_ip=self.info.remote_ip,
                transport=self.info.transport,
                mechanism=mech_name,
            )
            return
        if decision is Admission.LOCKED:
            self.stream.sasl_failure("account-disabled", LOCKED_TEXT)
            outcome = LoginOutcome.LOCKED
        elif decision is Admission.DISABLED:
            self.stream.sasl_failure("account-disabled", DISABLED_TEXT)
            outcome, reason = LoginOutcome.DISABLED, DISABLED_REASON
        else:
            self.stream.sasl_failure("temporary-auth-failure", HARD_LIMIT_TEXT)
            outcome = LoginOutcome.DELAYED
        await self.auth.failed(
            login,
            remote_ip=self.info.remote_ip,
            transport=self.info.transport,
            mechanism=mech_name,
            outcome=outcome,
            reason=reason,
            counts=False,
        )

    # -- binding and stanzas --------------------------------------------------

    async def _bind(self, event: BindRequested) -> None:
        if self.session is not None:
            # A second bind on a bound stream (RFC 6120 §7.7.2.3 leaves it to policy).
            self.stream.bind_failure(event.iq_id, "not-allowed")
            return
        login = self.stream.authenticated_as
        assert login is not None
        try:
            resource = (
                normalize_resource(event.resource)
                if event.resource
                else self.kernel.sessions.generate_resource()
            )
            jid = JID.make(login, self.kernel.hosts.domain, resource)
        except InvalidJID:
            # RFC 6120 §7.7.2.1: a resourcepart that violates the format is bad-request.
            self.stream.bind_failure(event.iq_id, "bad-request", "modify")
            return
        session, old = self.new_session(jid)
        self.stream.bind_success(event.iq_id, str(jid))
        await self.after_bind(session, old)

    def new_session(self, jid: JID) -> tuple[Session, Session | None]:
        """Bind ``jid`` to this connection; returns the session and the one it replaces."""
        session = Session(
            jid=jid, sink=self.sink, remote_ip=self.info.remote_ip, transport=self.info.transport
        )
        old = self.kernel.sessions.add(session)
        self.session = session
        return session, old

    async def after_bind(self, session: Session, old: Session | None) -> None:
        """Once the client was told: end the replaced session, announce the new one."""
        jid = session.jid
        if old is not None:
            log.info("resource conflict: replacing %s", jid)
            old.sink.close(
                StreamCondition.CONFLICT, "Replaced by a new session with the same resource"
            )
            if not old.is_closed:
                old.is_closed = True
                await self.kernel.hooks.fire(H.SESSION_CLOSED, SessionEvent(session=old))
        if self.on_bound is not None:
            self.on_bound(session)
        await self.kernel.hooks.fire(H.SESSION_BOUND, SessionEvent(session=session))

    async def _stanza(self, event: StanzaReceived) -> None:
        if self.session is None:
            # RFC 6120 §7.1: stanzas before binding → <not-authorized/> stream error.
            self.sink.close(StreamCondition.NOT_AUTHORIZED, "bind a resource first")
            return
        await self.kernel.router.route_from_session(self.session, event.element)
        if self.session is not None and self.session.sm is not None:
            self.session.sm.count_handled()

    async def _preauth_iq(self, event: PreAuthIq) -> None:
        iq = event.element
        try:
            st.validate_iq(iq)
            if iq.get("type") not in ("get", "set"):
                return
            handler = self.kernel.iq.lookup_preauth(iq[0].tag)
            if handler is None:
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            payload = await handler(iq, self.info.remote_ip)
            reply = st.iq_result(iq, payload)
        except StanzaError as err:
            if not st.can_reply_with_error(iq):
                return
            reply = st.error_reply(iq, err)
        reply.attrib.pop("to", None)
        with contextlib.suppress(LocalProtocolError):
            self.stream.send_preauth(reply)

    async def closed(self) -> None:
        """The connection is gone: end the session unless a feature keeps it (idempotent)."""
        session, self.session = self.session, None
        if session is None or session.is_closed or session.sink is not self.sink:
            return  # already ended, or resumed on another stream
        lost = ConnectionLost(session=session, stream=self.stream)
        if await self.kernel.hooks.fire(H.SESSION_CONNECTION_LOST, lost):
            return  # kept, e.g. detached for XEP-0198 resumption
        session.is_closed = True
        if self.kernel.sessions.remove(session):
            await self.kernel.hooks.fire(H.SESSION_CLOSED, SessionEvent(session=session))

    def adopt(self, session: Session) -> StanzaSink:
        """Serve ``session`` on this connection from now on (XEP-0198 resumption).

        Returns:
            The sink the session had: a placeholder while detached, or the
            connection it was resumed from.
        """
        previous, session.sink = session.sink, self.sink
        session.remote_ip, session.transport = self.info.remote_ip, self.info.transport
        self.session = session
        if self.on_bound is not None:
            self.on_bound(session)
        return previous
