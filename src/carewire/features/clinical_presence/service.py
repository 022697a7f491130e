"""The clinical presence service: aggregation, devices, virtual sessions, reverts, timeouts.

Theory of operation: the feature observes what clients send (``pre-presence``
at a priority above the presence feature's, returning without handling), and
keeps each resource's last broadcast presence in ``session.data``. After
every change it aggregates the user's resources (:func:`model.aggregate`);
when the aggregate's show or status differs from the last one recorded, a
write is queued (:class:`PresenceRecords`). RFC 6121 routing is left to the
presence feature: for virtual sessions this service routes a ``<presence/>``
as if the session had sent it, so contacts receive it exactly as from a
client.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final
from xml.etree.ElementTree import Element

from carewire.adapters.xmpp.gateway import ChatSettingsSource
from carewire.core import hook_names as H
from carewire.core.events import IqRequest, SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.errors import NotFoundError, ValidationError
from carewire.features.clinical_presence.model import (
    MAX_STATUS,
    OFFLINE,
    Aggregate,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    PresenceKind,
    ResourcePresence,
    aggregate,
    parse_register,
    show_for,
)
from carewire.features.clinical_presence.records import (
    ActiveChange,
    DeviceEvent,
    PresenceChange,
    PresenceRecords,
)
from carewire.features.clinical_presence.sessions import (
    DEVICE_KEY,
    STATE_KEY,
    VIRTUAL,
    SessionState,
    VirtualSink,
    device_of,
    is_virtual,
)
from carewire.features.ping import LAST_ACTIVE
from carewire.features.presence import parse_priority
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.stanza import IQ, PRESENCE
from carewire.xmpp.xml import make, text_of

log = logging.getLogger(__name__)

SHOW: Final = f"{{{ns.CLIENT}}}show"
STATUS: Final = f"{{{ns.CLIENT}}}status"
PRIORITY: Final = f"{{{ns.CLIENT}}}priority"
ALL_RESOURCES: Final = "*"  # PRESENCE_HISTORY.resource of a change made for the whole user
TIMEOUT_TEXT: Final = "Session timed out"
#: DEVICES.last_active_at is written at most this often per device (activity is frequent).
ACTIVE_RECORD_INTERVAL: Final = timedelta(minutes=1)
OFFLINE_TEXT: Final = "Presence set to Offline"


class ClinicalPresence:
    """Aggregated presence per user, and presence set by administrators and rules."""

    def __init__(
        self, ctx: FeatureContext, records: PresenceRecords, settings: ChatSettingsSource
    ) -> None:
        self.ctx = ctx
        self.records = records
        self.settings = settings
        self._seq = itertools.count(1)
        self._last: dict[str, Aggregate] = {}
        # login → (when, status): revert to Available once a timed presence state ends.
        self._reverts: dict[str, tuple[datetime, str]] = {}

    # -- the service ----------------------------------------------------------------

    async def set_presence(
        self, login: str, kind: str, status: str = "", *, changed_by: str = "system"
    ) -> None:
        """Set a user's presence (the rule action "Update Presence", administrators).

        Available and Unavailable for a user without a session create a virtual
        session whose presence contacts receive; with a virtual session they
        change its presence; with client sessions they only set the recorded
        presence (the clients' own presence stays theirs). Offline ends every
        session of the user.

        Raises:
            ValidationError: ``kind`` is not Available, Unavailable or Offline, or
                ``login`` is not a valid login.
            NotFoundError: There is no such account.
        """
        try:
            presence_kind = PresenceKind(kind)
            login = JID.make(login, self.ctx.hosts.domain).localpart or ""
        except (ValueError, InvalidJID):
            raise ValidationError(f"cannot set presence {kind!r} for {login!r}") from None
        sessions = [s for s in self.ctx.sessions.of_user(login) if not self._is_ending(s)]
        if not sessions and not await self.ctx.stores.accounts.exists(login):
            raise NotFoundError(f"no account {login!r}")
        status = status[:MAX_STATUS]
        if presence_kind is PresenceKind.OFFLINE:
            await self._offline(login, changed_by)
            return
        if any(not is_virtual(s) for s in sessions):
            agg = Aggregate(kind=presence_kind, show=show_for(presence_kind), status=status)
            self._record(login, agg, resource=ALL_RESOURCES, changed_by=changed_by)
            return
        virtual = sessions[0] if sessions else self._new_virtual(login)
        await self._virtual_presence(virtual, presence_kind, status, changed_by)

    def aggregate_of(self, login: str) -> Aggregate | None:
        """The user's presence as last recorded (None: not recorded since the start)."""
        return self._last.get(login)

    async def drain(self) -> None:
        """Return once the records of every change so far are written."""
        await self.records.drain()

    # -- observing clients --------------------------------------------------------------

    def on_presence(self, event: StanzaEvent) -> None:
        """Hook ``pre-presence``: remember a client's broadcast presence (never handles it)."""
        session = event.origin
        if session is None or is_virtual(session):
            return
        self._touch(session)
        ptype = event.stanza.get("type")
        if event.to_jid is not None or ptype not in (None, "unavailable"):
            return
        if ptype is None:
            try:
                parse_priority(event.stanza)
            except StanzaError:
                return  # the presence feature refuses it: nothing changes
        state = self._state(session)
        state.presence = ResourcePresence(
            resource=session.resource,
            device=device_of(session).kind,
            is_available=ptype is None,
            show=(text_of(event.stanza, SHOW) or "").strip() if ptype is None else "",
            status=text_of(event.stanza, STATUS) or "",
            seq=next(self._seq),
        )
        self._recompute(session.username, resource=session.resource, changed_by="user")

    def on_activity(self, event: StanzaEvent) -> None:
        """Hooks ``pre-message``/``pre-iq``: the client did something (IQ answers do not count)."""
        if event.origin is None:
            return
        if event.stanza.tag == IQ and event.stanza.get("type") in ("result", "error"):
            return
        self._touch(event.origin)

    def on_bound(self, event: SessionEvent) -> None:
        """Hook ``session/bound``: a client's device is registered."""
        session = event.session
        if is_virtual(session):
            return
        session.data.setdefault(DEVICE_KEY, DeviceInfo())
        self._state(session)
        self._device(session, DeviceStatus.REGISTERED)

    async def on_closed(self, event: SessionEvent) -> None:
        """Hook ``session/closed``: the device disconnected; the aggregate may change."""
        session = event.session
        state = self._state(session)
        self._device(session, DeviceStatus.DISCONNECTED, keep_status=state.is_unregistered)
        self._recompute(
            session.username, resource=session.resource, changed_by=state.closed_by or "user"
        )

    async def on_initial_presence(self, event: SessionEvent) -> bool:
        """Hook ``session/initial-presence``: a virtual session is nobody's client.

        Returns True for a virtual session so that features greeting a new
        client (offline messages, pending pushes) do not hand their stanzas
        to it. A client's initial presence ends the user's virtual session.
        """
        session = event.session
        if is_virtual(session):
            return True
        for other in self.ctx.sessions.of_user(session.username):
            if is_virtual(other):
                self._state(other).closed_by = "system"
                await self._end_virtual(other)
        return False

    # -- device registration -------------------------------------------------------------

    async def on_register(self, req: IqRequest) -> Element | None:
        """IQ set ``<register xmlns='urn:carewire:device:0'/>``."""
        session = self._client(req)
        info = parse_register(req.payload)
        session.data[DEVICE_KEY] = info
        state = self._state(session)
        state.is_unregistered = False
        state.presence = replace(state.presence, device=info.kind)
        self._device(session, DeviceStatus.REGISTERED)
        self._recompute(session.username, resource=session.resource, changed_by="user")
        return None

    async def on_unregister(self, req: IqRequest) -> Element | None:
        """IQ set ``<unregister xmlns='urn:carewire:device:0'/>``: forget the push token."""
        session = self._client(req)
        session.data[DEVICE_KEY] = replace(device_of(session), push_token="")
        self._state(session).is_unregistered = True
        self._device(session, DeviceStatus.UNREGISTERED)
        return None

    @staticmethod
    def _client(req: IqRequest) -> Session:
        if req.origin is None or is_virtual(req.origin):
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only a client registers its device")
        return req.origin

    # -- messages to virtual sessions -------------------------------------------------------

    async def on_message_full(self, event: StanzaEvent) -> bool:
        """Hook ``message/full``: a message to a virtual session goes to offline storage."""
        assert event.to_jid is not None
        target = self.ctx.sessions.get(event.to_jid)
        if target is None or not is_virtual(target):
            return False
        msg_type = event.stanza.get("type", "normal")
        if msg_type == "groupchat":
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        if msg_type not in ("chat", "normal"):
            return True  # headline and error: nobody could read them
        clients = self.ctx.sessions.top_priority(target.username)
        for session in clients:
            self.ctx.router.deliver(session, event.stanza)
        if clients:
            return True
        bare = StanzaEvent(
            stanza=event.stanza,
            from_jid=event.from_jid,
            to_jid=event.to_jid.bare,
            origin=event.origin,
        )
        if await self.ctx.hooks.fire(H.MESSAGE_OFFLINE, bare):
            return True
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    # -- periodic jobs ---------------------------------------------------------------------

    async def revert_states(self) -> None:
        """Return users whose timed presence state ran out to Available, without status."""
        now = self.ctx.clock.now()
        for login, (deadline, status) in list(self._reverts.items()):
            if deadline > now:
                continue
            del self._reverts[login]
            last = self._last.get(login)
            if last is None or last.status != status or not self.ctx.sessions.is_online(login):
                continue
            log.info("presence state of %s ran out: back to Available", login)
            await self.set_presence(login, PresenceKind.AVAILABLE.value, changed_by="system")

    async def expire_sessions(self) -> None:
        """End mobile sessions inactive, and desktop sessions idle, past the adapter's timeouts."""
        settings = self.settings.current()
        mobile, desktop = settings.mobile_session_timeout, settings.desktop_session_timeout
        if mobile is None and desktop is None:
            return
        now = self.ctx.clock.now()
        for session in list(self.ctx.sessions):
            if is_virtual(session) or self._is_ending(session):
                continue
            kind = device_of(session).kind
            if kind is DeviceKind.DESKTOP:
                since: object = self._state(session).last_activity
                limit = desktop
            elif session.data.get("csi") == "inactive":
                since, limit = session.data.get("csi_since"), mobile
            else:
                continue
            if limit is None or not isinstance(since, datetime) or now - since < limit:
                continue
            log.info("session %d of %s timed out (%s)", session.id, session.username, kind)
            self._state(session).closed_by = "system"
            session.sink.close(StreamCondition.POLICY_VIOLATION, TIMEOUT_TEXT)
            self._recompute(session.username, resource=session.resource, changed_by="system")

    # -- start-up ---------------------------------------------------------------------------

    async def restore(self, _payload: object = None) -> None:
        """Hook ``server/started``: queue :meth:`_restore` (after a restart nobody is online)."""
        self.records.submit(self._restore)

    async def _restore(self) -> None:
        """Recreate virtual sessions and pending reverts; record everyone else as offline."""
        for login in await self.records.present_users():
            if self.ctx.sessions.is_online(login):
                continue
            row = await self.records.last_change(login)
            values = row.values if row is not None else {}
            show, status = str(values.get("show") or ""), str(values.get("status") or "")
            at = values.get("sent_at")
            if values.get("resource") != VIRTUAL or show == "offline":
                self._record(
                    login, OFFLINE, resource=ALL_RESOURCES, changed_by="system", force=True
                )
                continue
            kind = PresenceKind.AVAILABLE if show == "chat" else PresenceKind.UNAVAILABLE
            self._last[login] = Aggregate(kind=kind, show=show, status=status, resource=VIRTUAL)
            await self._virtual_presence(self._new_virtual(login), kind, status, "system")
            duration = await self.records.state_duration(status)
            if duration and isinstance(at, datetime):
                self._reverts[login] = (at + timedelta(minutes=duration), status)

    # -- internals ----------------------------------------------------------------------------

    def _state(self, session: Session) -> SessionState:
        state = session.data.get(STATE_KEY)
        if not isinstance(state, SessionState):
            presence = ResourcePresence(
                resource=session.resource, device=device_of(session).kind, is_available=False
            )
            state = SessionState(presence=presence, last_activity=self.ctx.clock.now())
            session.data[STATE_KEY] = state
        return state

    def _touch(self, session: Session) -> None:
        state = self._state(session)
        now = state.last_activity = self.ctx.clock.now()
        # "Most Recent Activity" (DEVICES.last_active_at): at most one write a minute per device.
        recorded = state.active_recorded_at
        if is_virtual(session) or (
            recorded is not None and now - recorded < ACTIVE_RECORD_INTERVAL
        ):
            return
        state.active_recorded_at = now
        name = f"{session.username}/{session.resource}"
        self.records.submit(ActiveChange(name, now))

    def _is_ending(self, session: Session) -> bool:
        return session.is_closed or self._state(session).closed_by is not None

    def _recompute(self, login: str, *, resource: str, changed_by: str) -> None:
        present = [
            self._state(s).presence
            for s in self.ctx.sessions.of_user(login)
            if not self._is_ending(s)
        ]
        self._record(login, aggregate(present), resource=resource, changed_by=changed_by)

    def _record(
        self, login: str, agg: Aggregate, *, resource: str, changed_by: str, force: bool = False
    ) -> None:
        # A user not seen since the start is offline (the start-up restore made it so).
        if not force and agg.same_as(self._last.get(login, OFFLINE)):
            return
        self._last[login] = agg
        revert = self._reverts.get(login)
        if revert is not None and revert[1] != agg.status:
            del self._reverts[login]
        at = self.ctx.clock.now()

        async def then() -> None:  # a timed state (PRESENCE_STATES.duration) reverts later
            duration = await self.records.state_duration(agg.status)
            if duration and self._last.get(login) is agg:
                self._reverts[login] = (at + timedelta(minutes=duration), agg.status)

        self.records.submit(
            PresenceChange(
                login=login,
                agg=agg,
                resource=resource,
                changed_by=changed_by,
                at=at,
                then=then if agg.status else None,
            )
        )

    def _device(self, session: Session, status: DeviceStatus, *, keep_status: bool = False) -> None:
        active_at = None
        if status is DeviceStatus.REGISTERED:  # the app connected: its Most Recent Activity
            active_at = self._state(session).active_recorded_at = self.ctx.clock.now()
        event = DeviceEvent(
            login=session.username,
            name=f"{session.username}/{session.resource}",
            status=status,
            info=device_of(session),
            ip_address=session.remote_ip,
            keep_status=keep_status,
            active_at=active_at,
        )
        self.records.submit(event)

    # -- virtual sessions ----------------------------------------------------------------------

    def _new_virtual(self, login: str) -> Session:
        sink = VirtualSink(self.ctx.router, self._end_later)
        session = Session(
            jid=JID.make(login, self.ctx.hosts.domain, VIRTUAL),
            sink=sink,
            transport=VIRTUAL,
            priority=-1,
        )
        sink.session = session
        # Never idle for the keepalive pings: nobody would answer them.
        session.data[LAST_ACTIVE] = math.inf
        session.data[DEVICE_KEY] = DeviceInfo(kind=DeviceKind.VIRTUAL)
        self._state(session)
        self.ctx.sessions.add(session)
        self._device(session, DeviceStatus.VIRTUAL)
        log.info("virtual session for %s", login)
        return session

    async def _virtual_presence(
        self, session: Session, kind: PresenceKind, status: str, changed_by: str
    ) -> None:
        show = "" if kind is PresenceKind.AVAILABLE else show_for(kind)
        self._state(session).presence = ResourcePresence(
            resource=session.resource,
            device=DeviceKind.VIRTUAL,
            is_available=True,
            show=show,
            status=status,
            seq=next(self._seq),
        )
        # RFC 6121 §8.5.2.1.1: a negative priority keeps messages to the bare JID
        # away from this session, so they go to offline storage.
        stanza = make(PRESENCE, {}, make(PRIORITY, text="-1"))
        if show:
            stanza.append(make(SHOW, text=show))
        if status:
            stanza.append(make(STATUS, text=status))
        await self.ctx.router.route_from_session(session, stanza)
        self._recompute(session.username, resource=session.resource, changed_by=changed_by)

    async def _offline(self, login: str, changed_by: str) -> None:
        for session in self.ctx.sessions.of_user(login):
            if self._is_ending(session):
                continue
            self._state(session).closed_by = changed_by
            if is_virtual(session):
                await self._end_virtual(session)
            else:
                log.info("ending session %d of %s: set Offline", session.id, login)
                session.sink.close(StreamCondition.POLICY_VIOLATION, OFFLINE_TEXT)
        self._recompute(login, resource=ALL_RESOURCES, changed_by=changed_by)

    def _end_later(self, session: Session) -> None:
        state = self._state(session)
        if state.closed_by is None:
            state.closed_by = "system"

        async def end() -> None:
            await self._end_virtual(session)

        self.records.submit(end)

    async def _end_virtual(self, session: Session) -> None:
        """Unbind a virtual session; the presence feature broadcasts its unavailable presence."""
        if self.ctx.sessions.remove(session):
            session.is_closed = True
            await self.ctx.hooks.fire(H.SESSION_CLOSED, SessionEvent(session=session))
