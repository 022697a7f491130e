"""A socket-free harness for feature tests: a real kernel on real SQLite stores.

Sessions write into :class:`RecordingSink` objects instead of connections, so
tests assert on exactly what a client would have received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element

from carewire import storage
from carewire.assembly import Assembly, Options, assemble, open_core
from carewire.clock import FakeClock
from carewire.core import hook_names as H
from carewire.core.accounts import AccountInput
from carewire.core.events import SessionEvent
from carewire.core.feature import FeatureConfig
from carewire.core.kernel import DEFAULT_FEATURES, IM_FEATURES, Kernel
from carewire.core.sessions import Session
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize
from tests.hashing import CHEAP_HASHER
from tests.templates import prefill

DOMAIN = "example.test"


@dataclass(eq=False)
class RecordingSink:
    """Collects what the server sends to one session."""

    sent: list[Element] = field(default_factory=list)
    closed: tuple[StreamCondition | None, str] | None = None

    def send_element(self, element: Element) -> None:
        # Round-trip through the serializer so tests see what the wire carries.
        self.sent.append(parse_document(serialize(element, None)))

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        self.closed = (condition, text)

    def take(self) -> list[Element]:
        """Everything received since the last take()."""
        out, self.sent = self.sent, []
        return out


def x(xml: str) -> Element:
    """Parse a stanza written in a test (default namespace jabber:client)."""
    return parse_document(f"<w xmlns='{ns.CLIENT}'>{xml}</w>")[0]


def error_condition(stanza: Element) -> str | None:
    """The RFC 6120 stanza error condition of an error reply, or None."""
    err = stanza.find(f"{{{ns.CLIENT}}}error")
    if err is None:
        return None
    for c in err:
        local = c.tag.rpartition("}")[2]
        if c.tag.startswith(f"{{{ns.STANZAS_ERR}}}") and local != "text":
            return local
    return None


class Harness:
    """A kernel with features loaded and helpers to log users in and send stanzas."""

    def __init__(
        self, kernel: Kernel, db: storage.Database, platform: Assembly | None = None
    ) -> None:
        self.kernel = kernel
        self.db = db
        self.platform = platform
        self.clock: FakeClock = kernel.clock  # type: ignore[assignment]

    @property
    def domain(self) -> str:
        return self.kernel.hosts.domain

    async def account(self, login: str, password: str = "secret") -> None:
        """Create an account if it does not exist."""
        if not await self.kernel.stores.accounts.exists(login):
            await self.kernel.accounts.create(AccountInput(login=login, password=password))

    async def bind(self, login: str, resource: str = "res") -> tuple[Session, RecordingSink]:
        """A bound session (no presence yet), like a client right after resource binding."""
        await self.account(login)
        sink = RecordingSink()
        session = Session(jid=JID.parse(f"{login}@{self.domain}/{resource}"), sink=sink)
        old = self.kernel.sessions.add(session)
        if old is not None:
            old.sink.close(StreamCondition.CONFLICT, "replaced")
            await self.unbind(old)
        await self.kernel.hooks.fire(H.SESSION_BOUND, SessionEvent(session=session))
        return session, sink

    async def login(
        self, login: str, resource: str = "res", *, priority: int = 0
    ) -> tuple[Session, RecordingSink]:
        """Bind, fetch the roster and send initial presence, then forget what was received."""
        session, sink = await self.bind(login, resource)
        await self.send(
            session, "<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>"
        )
        await self.send(session, f"<presence><priority>{priority}</priority></presence>")
        sink.take()
        return session, sink

    async def ask(self, login: str, xml: str) -> Element:
        """Bind a fresh session of ``login``, send one stanza, return the single reply."""
        session, sink = await self.bind(login)
        sink.take()
        await self.send(session, xml)
        (reply,) = sink.take()
        return reply

    async def unbind(self, session: Session) -> None:
        """The connection went away: what net does on disconnect."""
        if self.kernel.sessions.remove(session):
            session.is_closed = True
            await self.kernel.hooks.fire(H.SESSION_CLOSED, SessionEvent(session=session))

    async def send(self, session: Session, xml: str | Element) -> None:
        """The client sends a stanza."""
        el = x(xml) if isinstance(xml, str) else xml
        await self.kernel.router.route_from_session(session, el)
        await asyncio.sleep(0)

    async def close(self) -> None:
        await self.kernel.hooks.fire(H.SERVER_STOPPING, None)
        if self.platform is not None:
            await self.platform.close()  # the database too
        else:
            await self.db.close()


async def make_harness(
    tmp_path: Path,
    features: Sequence[str] | None = None,
    config: FeatureConfig | None = None,
    *,
    with_platform: bool = False,
    url: str | None = None,
) -> Harness:
    """A harness on a fresh SQLite database in ``tmp_path`` (or at ``url``), built by the assembly.

    With ``with_platform`` every service is assembled as the server does
    (the data platform shared with the features, its rules engine running in
    the background) and ``features`` defaults to all of them; without it only
    the kernel's side is built and ``features`` defaults to the standard XMPP
    ones (the clinical features refuse to load without the platform).
    """
    url = await prefill(url or f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    options = Options(
        url=url,
        domain=DOMAIN,
        clock=FakeClock(),
        features=config or FeatureConfig(),
        secret_hasher=CHEAP_HASHER,
    )
    if not with_platform:
        core = await open_core(options)
        try:
            core.load_features(IM_FEATURES if features is None else features)
        except BaseException:
            await core.close()
            raise
        await core.kernel.hooks.fire(H.SERVER_STARTED, None)
        return Harness(core.kernel, core.db)
    platform = await assemble(options)
    try:
        await platform.ensure_default_adapters(DOMAIN)
        platform.load_features(DEFAULT_FEATURES if features is None else features)
        await platform.start(scheduler=False)
    except BaseException:
        await platform.close()
        raise
    await platform.kernel.hooks.fire(H.SERVER_STARTED, None)
    return Harness(platform.kernel, platform.db, platform)
