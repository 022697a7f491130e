"""What the kernel does for one client connection: SASL, binding, stanza intake (RFC 6120 §6–§7).

Theory of operation: the network driver owns the socket and a
:class:`~carewire.xmpp.stream.C2SStream`; it hands every stream event to
:meth:`ClientConnection.handle`, in order, and writes what the stream queues.
This class makes the decisions the sans-IO stream cannot: it runs the SASL
mechanism against stored keys under the lockout policy, binds the resource
in the :class:`SessionManager` (replacing a same-resource session, RFC 6120
§7.7.2.2), and routes stanzas of the bound session.

Stream management (XEP-0198) lives here too, because it is about the
connection rather than any stanza: ``<enable/>`` gives the session a
:class:`~carewire.core.sessions.StreamManagement` state (counters and the
queue of unacknowledged stanzas, kept by :meth:`Session.send`); a connection
that breaks without ``</stream>`` leaves a resumable session *detached* (still
bound and available, stanzas queued) until the ``smacks`` feature's sweep ends
it; ``<resume/>`` on a new stream of the same account moves the session to
that stream and retransmits the queue. Client state (XEP-0352) nonzas are
recorded on the session and announced on ``session/client-state``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from carewire.core import hook_names as H
from carewire.core.auth import HARD_LIMIT_TEXT, LOCKED_TEXT, Admission, Authenticator
from carewire.core.events import SessionEvent
from carewire.core.feature import StreamPhase
from carewire.core.kernel import Kernel
from carewire.core.sessions import (
    CSI_SINCE,
    CSI_STATE,
    SM_REQUEST,
    DetachedSink,
    Session,
    StanzaSink,
    StreamManagement,
)
from carewire.core.stores import LoginOutcome
from carewire.xmpp import ns, sasl
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StanzaCondition,
    StanzaError,
    StreamCondition,
)
from carewire.xmpp.jid import JID, InvalidJID, normalize_resource
from carewire.xmpp.parser import ParserLimits
from carewire.xmpp.stream import (
    CSI,
    SM,
    AuthRequested,
    BindRequested,
    C2SStream,
    ClientStateChanged,
    Event,
    Framing,
    PreAuthIq,
    SaslAborted,
    SaslResponse,
    SmAckReceived,
    SmAckRequested,
    SmEnableRequested,
    SmResumeRequested,
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
    post_auth = kernel.stream_features(StreamPhase.POST_AUTH)
    # The stream accepts the nonzas of what is advertised (the smacks and csi features).
    nonzas = frozenset(e.tag[1:].split("}", 1)[0] for e in post_auth if e.tag in _NONZA_FEATURES)
    return StreamConfig(
        domain=kernel.hosts.domain,
        framing=info.framing,
        is_tls_active=info.is_tls_active,
        mechanisms=tuple(mechs),
        pre_auth_features=kernel.stream_features(StreamPhase.PRE_AUTH),
        post_auth_features=post_auth,
        allow_preauth_iq=allow_register,
        limits=limits,
        nonza_namespaces=nonzas,
    )


_NONZA_FEATURES = frozenset({f"{{{SM}}}sm", f"{{{CSI}}}csi"})
# Stream errors after which a session is not kept for resumption: we ended it on
# purpose. A dead connection (no error, or the ping's connection-timeout) is kept.
_RESUMABLE_ENDS = frozenset({None, StreamCondition.CONNECTION_TIMEOUT})


class ClientConnection:
    """Kernel-side state of one client connection."""

    __slots__ = (
        "_mech",
        "auth",
        "fake_secret",
        "info",
        "kernel",
        "on_bound",
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

    async def handle(self, event: Event) -> None:
        """Act on one stream event (events of one connection are handled in order)."""
        if self.session is not None and self.session.sink is not self.sink:
            return  # the session was resumed on another stream: this one is over
        if isinstance(event, StanzaReceived):
            await self._stanza(event)
        elif isinstance(event, SmAckRequested):
            await self._sm_ack_requested()
        elif isinstance(event, SmAckReceived):
            self._sm_ack_received(event.h)
        elif isinstance(event, ClientStateChanged):
            await self._client_state(event.is_active)
        elif isinstance(event, SmEnableRequested):
            self._sm_enable(event)
        elif isinstance(event, SmResumeRequested):
            await self._sm_resume(event)
        elif isinstance(event, AuthRequested):
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

    # -- SASL -----------------------------------------------------------------

    def _mechanism(self, name: str) -> sasl.Mechanism:
        if name == "PLAIN":
            return sasl.PlainServerMechanism(domain=self.kernel.hosts.domain)
        # The binding data goes to the non-PLUS mechanisms too: a client flag 'y'
        # then reveals a downgrade attack (RFC 5802 §6).
        return sasl.ScramServerMechanism(
            name, channel_binding=self.info.channel_binding, fake_secret=self.fake_secret
        )

    async def _sasl_step(self, step: sasl.Step) -> None:
        mech_name = self._mech.name if self._mech is not None else ""
        while isinstance(step, sasl.NeedCredentials):
            login = self.auth.login_of(step.username, self.kernel.hosts.domain)
            if login is None:
                await self._sasl_failed(step.username, "not-authorized", "", counts=False)
                return
            decision, keys = await self.auth.lookup(login, step.mechanism)
            if decision is not Admission.ALLOW:
                await self._refuse(login, decision)
                return
            assert self._mech is not None
            step = self._mech.credentials(keys)
        if isinstance(step, sasl.Challenge):
            self.stream.sasl_challenge(step.data)
        elif isinstance(step, sasl.Success):
            login = self.auth.login_of(step.username, self.kernel.hosts.domain) or step.username
            self._mech = None
            self.stream.sasl_success(login, step.data)
            await self.auth.succeeded(
                login,
                remote_ip=self.info.remote_ip,
                transport=self.info.transport,
                mechanism=mech_name,
            )
            log.info("authenticated %s via %s from %s", login, mech_name, self.info.remote_ip)
        else:
            await self._sasl_failed(step.username, step.condition, step.text, counts=step.counts)

    async def _sasl_failed(
        self, username: str | None, condition: str, text: str, *, counts: bool
    ) -> None:
        mech_name = self._mech.name if self._mech is not None else ""
        self._mech = None
        self.stream.sasl_failure(condition, text)
        login = self.auth.login_of(username, self.kernel.hosts.domain) if username else None
        await self.auth.failed(
            login or (username or "")[:64],
            remote_ip=self.info.remote_ip,
            transport=self.info.transport,
            mechanism=mech_name,
            reason=condition,
            counts=counts and login is not None,
        )
        log.info("authentication failed (%s) from %s", condition, self.info.remote_ip)

    async def _refuse(self, login: str, decision: Admission) -> None:
        mech_name = self._mech.name if self._mech is not None else ""
        self._mech = None
        if decision is Admission.LOCKED:
            self.stream.sasl_failure("account-disabled", LOCKED_TEXT)
            outcome = LoginOutcome.LOCKED
        else:
            self.stream.sasl_failure("temporary-auth-failure", HARD_LIMIT_TEXT)
            outcome = LoginOutcome.DELAYED
        await self.auth.failed(
            login,
            remote_ip=self.info.remote_ip,
            transport=self.info.transport,
            mechanism=mech_name,
            outcome=outcome,
            reason=decision.value,
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
        session = Session(
            jid=jid, sink=self.sink, remote_ip=self.info.remote_ip, transport=self.info.transport
        )
        old = self.kernel.sessions.add(session)
        self.session = session
        self.stream.bind_success(event.iq_id, str(jid))
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
        """The connection is gone: unbind and tell the features, or detach (idempotent).

        XEP-0198 §6: "If the stream is not cleanly closed then the server
        SHOULD consider the stream to be unfinished … and SHOULD maintain the
        session on behalf of the client for a limited amount of time."
        """
        session, self.session = self.session, None
        if session is None or session.is_closed or session.sink is not self.sink:
            return  # already ended, or resumed on another stream
        if self._is_resumable(session):
            self._detach(session)
            return
        session.is_closed = True
        if self.kernel.sessions.remove(session):
            await self.kernel.hooks.fire(H.SESSION_CLOSED, SessionEvent(session=session))

    # -- stream management (XEP-0198) and client state (XEP-0352) -------------

    def _is_resumable(self, session: Session) -> bool:
        sm = session.sm
        if sm is None or sm.resume_id is None or self.stream.is_closed_by_peer:
            return False
        if self.stream.end_condition not in _RESUMABLE_ENDS:
            return False
        return self.kernel.sessions.resumable(sm.resume_id, session.username) is session

    def _detach(self, session: Session) -> None:
        sm = session.sm
        assert sm is not None
        sm.resume_deadline = self.kernel.clock.monotonic() + sm.resume_timeout
        sm.is_ack_requested = False
        session.sink = DetachedSink(sm)
        log.info(
            "connection of %s lost: resumable for %.0fs (%d unacked)",
            session.jid,
            sm.resume_timeout,
            len(sm.unacked),
        )

    def _sm_failed(self, condition: StanzaCondition) -> None:
        """XEP-0198 §3/§5: ``<failed/>`` with a stanza error condition."""
        failed = Element(f"{{{SM}}}failed")
        SubElement(failed, f"{{{ns.STANZAS_ERR}}}{condition.value}")
        self.stream.send_nonza(failed)

    def _sm_enable(self, event: SmEnableRequested) -> None:
        session = self.session
        # XEP-0198 §3: enabling before binding, or twice, is an unexpected request.
        if session is None or session.sm is not None:
            self._sm_failed(StanzaCondition.UNEXPECTED_REQUEST)
            return
        config = self.kernel.config
        sm = session.sm = StreamManagement(max_unacked=config.smacks_max_unacked)
        enabled = Element(f"{{{SM}}}enabled")
        if event.resume and config.smacks_resume_timeout > 0:
            timeout = config.smacks_resume_timeout
            if event.max is not None:
                timeout = min(timeout, float(event.max))  # the client's preference
            sm.resume_timeout = timeout
            enabled.set("id", self.kernel.sessions.make_resumable(session))
            enabled.set("resume", "true")
            enabled.set("max", str(max(1, math.ceil(timeout))))
        self.stream.send_nonza(enabled)
        log.debug("stream management enabled for %s", session.jid)

    def _enabled_sm(self) -> StreamManagement:
        sm = self.session.sm if self.session is not None else None
        if sm is None:
            raise RemoteProtocolError(
                StreamCondition.UNSUPPORTED_STANZA_TYPE, "stream management is not enabled"
            )
        return sm

    async def _sm_ack_requested(self) -> None:
        sm = self._enabled_sm()
        # What we acknowledge must survive a crash: batched writes commit first.
        await self.kernel.ctx.durability.flush()
        self.stream.send_nonza(Element(f"{{{SM}}}a", {"h": str(sm.handled)}))

    def _sm_ack_received(self, h: int | None) -> None:
        sm = self._enabled_sm()
        if h is None:
            raise RemoteProtocolError(StreamCondition.BAD_FORMAT, "'h' must be an unsignedInt")
        if not sm.ack(h):
            self._handled_count_too_high(sm, h)
            return
        sm.is_ack_requested = bool(sm.unacked)
        if sm.unacked:  # stanzas sent after our last <r/> still wait for an ack
            self.sink.send_element(SM_REQUEST)

    def _handled_count_too_high(self, sm: StreamManagement, h: int) -> None:
        """XEP-0198 §4: an ack for more than we sent ends the stream."""
        log.warning("client acknowledged %d stanzas, %d were sent", h, sm.sent_count)
        app = Element(
            f"{{{SM}}}handled-count-too-high", {"h": str(h), "send-count": str(sm.sent_count)}
        )
        self.stream.close(StreamCondition.UNDEFINED_CONDITION, app_condition=app)
        self.sink.close()

    async def _sm_resume(self, event: SmResumeRequested) -> None:
        login = self.stream.authenticated_as
        assert login is not None
        if self.session is not None:
            self._sm_failed(StanzaCondition.UNEXPECTED_REQUEST)  # already bound
            return
        if event.h is None:
            self._sm_failed(StanzaCondition.BAD_REQUEST)
            return
        # Ids are unguessable and only the account that enabled one may use it.
        session = self.kernel.sessions.resumable(event.previd, login)
        if session is None or session.sm is None:
            self._sm_failed(StanzaCondition.ITEM_NOT_FOUND)
            return
        sm = session.sm
        if not sm.ack(event.h):
            self._handled_count_too_high(sm, event.h)
            return
        await self.kernel.ctx.durability.flush()  # <resumed h/> acknowledges too
        previous, session.sink = session.sink, self.sink
        session.remote_ip, session.transport = self.info.remote_ip, self.info.transport
        sm.resume_deadline = None
        self.session = session
        self.stream.sm_resumed(event.previd, sm.handled)
        if not isinstance(previous, DetachedSink):
            # §5: "the old stream SHOULD be terminated".
            previous.close(StreamCondition.CONFLICT, "the session was resumed on another stream")
        for element in list(sm.unacked):  # §5: retransmit what the client did not handle
            self.sink.send_element(element)
        sm.is_ack_requested = bool(sm.unacked)
        if sm.unacked:
            self.sink.send_element(SM_REQUEST)
        log.info("resumed %s (%d stanzas retransmitted)", session.jid, len(sm.unacked))
        if self.on_bound is not None:
            self.on_bound(session)
        # XEP-0352 §4.2: "A stream always begins in 'active' state."
        if session.data.get(CSI_STATE) == "inactive":
            await self._client_state(is_active=True)

    async def _client_state(self, is_active: bool) -> None:
        """XEP-0352: record the client's state and tell the features when it changes."""
        session = self.session
        if session is None:
            return
        state = "active" if is_active else "inactive"
        if session.data.get(CSI_STATE, "active") == state:
            return
        session.data[CSI_STATE] = state
        session.data[CSI_SINCE] = self.kernel.clock.now()
        await self.kernel.hooks.fire(H.SESSION_CLIENT_STATE, SessionEvent(session=session))
