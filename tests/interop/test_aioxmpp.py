"""The server against aioxmpp 0.13, a second third-party client library.

aioxmpp is imported inside the fixtures, not at module level: aioxmpp 0.13.3
imports ``pytz`` (``aioxmpp/xso/types.py``) without declaring it as a
dependency, so in an environment without pytz the import fails. A module-level
import would turn that into a collection error that stops the whole test run;
this way each test fails on its own with the ImportError, and
:func:`test_aioxmpp_imports` names the problem.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any

import pytest

from tests.interop.helpers import wait_audit_rows
from tests.interop.rawclient import HOST
from tests.serverproc import RunningServer

pytestmark = [
    pytest.mark.interop,
    # PresenceManagedClient.connected() itself triggers this aioxmpp 0.13 deprecation notice. The
    # pyproject's module-based ignore does not apply: the addopts "-W error" takes precedence.
    pytest.mark.filterwarnings(
        "ignore:using an available presence state for UseConnected is deprecated:DeprecationWarning"
    ),
]

TIMEOUT = 10.0


def test_aioxmpp_imports() -> None:
    """aioxmpp and the modules the tests use import (needs pytz, which aioxmpp does not declare)."""
    for name in ("aioxmpp", "aioxmpp.connector", "aioxmpp.dispatcher", "aioxmpp.ping", "aiosasl"):
        importlib.import_module(name)


@pytest.fixture
def ax() -> SimpleNamespace:
    """The aioxmpp modules, imported lazily (see the module docstring)."""
    return SimpleNamespace(
        aioxmpp=importlib.import_module("aioxmpp"),
        connector=importlib.import_module("aioxmpp.connector"),
        dispatcher=importlib.import_module("aioxmpp.dispatcher"),
        ping=importlib.import_module("aioxmpp.ping"),
        security_layer=importlib.import_module("aioxmpp.security_layer"),
        aiosasl=importlib.import_module("aiosasl"),
    )


def _security_layer(ax: SimpleNamespace, password: str, mechanism: str) -> Any:
    """make_security_layer(no_verify=True) restricted to one SASL mechanism family."""
    mech_class = {"SCRAM-SHA-256": ax.aiosasl.SCRAM, "PLAIN": ax.aiosasl.PLAIN}[mechanism]

    class OneMechanism(ax.security_layer.PasswordSASLProvider):  # type: ignore[misc, name-defined]
        def _find_supported(self, features: Any, classes: Any) -> Any:
            return super()._find_supported(features, [c for c in classes if c is mech_class])

    async def password_provider(_jid: Any, _attempt: int) -> str:
        return password

    layer = ax.aioxmpp.make_security_layer(password, no_verify=True)
    return layer._replace(sasl_providers=[OneMechanism(password_provider)])


@pytest.fixture
async def aio_login(
    server: RunningServer, ax: SimpleNamespace
) -> AsyncIterator[Callable[..., Any]]:
    """Connect aioxmpp clients: ``client = await aio_login(login, password, mechanism)``."""
    async with AsyncExitStack() as stack:

        async def login(
            login: str,
            password: str,
            mechanism: str = "SCRAM-SHA-256",
            *,
            setup: Callable[[Any], None] | None = None,
        ) -> Any:
            client = ax.aioxmpp.PresenceManagedClient(
                ax.aioxmpp.JID.fromstr(f"{login}@{server.domain}"),
                _security_layer(ax, password, mechanism),
                override_peer=[(HOST, server.ports["c2s"], ax.connector.STARTTLSConnector())],
            )
            if setup is not None:
                setup(client)  # summon services before the stream is established
            await asyncio.wait_for(stack.enter_async_context(client.connected()), TIMEOUT)
            return client

        yield login


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
async def test_login(server: RunningServer, aio_login: Callable[..., Any], mechanism: str) -> None:
    """aioxmpp logs in with SCRAM-SHA-256 or PLAIN and gets a server-generated resource."""
    login, password = server.account()
    client = await aio_login(login, password, mechanism)
    assert str(client.local_jid.bare()) == f"{login}@{server.domain}"
    assert client.local_jid.resource
    rows = await wait_audit_rows(server, login, 1)
    assert rows and rows[-1]["outcome"] == "success" and rows[-1]["mechanism"] == mechanism, rows


async def test_wrong_password(server: RunningServer, ax: SimpleNamespace) -> None:
    """aioxmpp surfaces the SASL failure as an authentication error."""
    login, password = server.account()
    client = ax.aioxmpp.PresenceManagedClient(
        ax.aioxmpp.JID.fromstr(f"{login}@{server.domain}"),
        _security_layer(ax, password + "-wrong", "PLAIN"),
        override_peer=[(HOST, server.ports["c2s"], ax.connector.STARTTLSConnector())],
        max_initial_attempts=1,
    )
    with pytest.raises(ax.aiosasl.AuthenticationFailure):
        async with asyncio.timeout(TIMEOUT), client.connected():
            pass


async def test_roster_add_is_pushed(
    server: RunningServer, aio_login: Callable[..., Any], ax: SimpleNamespace
) -> None:
    """RosterClient.set_entry: the server pushes the new item back, with name and group."""
    login, password = server.account()
    contact, _ = server.account()
    added: asyncio.Queue[Any] = asyncio.Queue()

    def setup(client: Any) -> None:
        client.summon(ax.aioxmpp.RosterClient).on_entry_added.connect(added.put_nowait)

    client = await aio_login(login, password, setup=setup)
    roster = client.summon(ax.aioxmpp.RosterClient)
    contact_jid = ax.aioxmpp.JID.fromstr(f"{contact}@{server.domain}")
    await asyncio.wait_for(
        roster.set_entry(contact_jid, name="Nurse", add_to_groups={"Ward 7"}), TIMEOUT
    )
    item = await asyncio.wait_for(added.get(), TIMEOUT)
    assert item.jid == contact_jid
    assert item.name == "Nurse"
    assert item.groups == {"Ward 7"}
    assert item.subscription == "none"
    assert contact_jid in roster.items


async def test_message_exchange(
    server: RunningServer, aio_login: Callable[..., Any], ax: SimpleNamespace
) -> None:
    """Chat messages between two aioxmpp clients, to the full and to the bare JID."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    inbox: dict[str, asyncio.Queue[Any]] = {"a": asyncio.Queue(), "b": asyncio.Queue()}

    def receiver(name: str) -> Callable[[Any], None]:
        def setup(client: Any) -> None:
            dispatcher = client.summon(ax.dispatcher.SimpleMessageDispatcher)
            dispatcher.register_callback(ax.aioxmpp.MessageType.CHAT, None, inbox[name].put_nowait)

        return setup

    a = await aio_login(a_login, a_pw, "SCRAM-SHA-256", setup=receiver("a"))
    b = await aio_login(b_login, b_pw, "PLAIN", setup=receiver("b"))

    async def send(sender: Any, to: Any, body: str) -> None:
        msg = ax.aioxmpp.Message(to=to, type_=ax.aioxmpp.MessageType.CHAT)
        msg.body[None] = body
        await asyncio.wait_for(sender.send(msg), TIMEOUT)

    body = f"full {uuid.uuid4().hex[:6]}"
    await send(a, b.local_jid, body)
    got = await asyncio.wait_for(inbox["b"].get(), TIMEOUT)
    assert got.from_ == a.local_jid and next(iter(got.body.values())) == body

    # PresenceManagedClient is available (initial presence sent): bare-JID delivery works.
    body = f"bare {uuid.uuid4().hex[:6]}"
    await send(b, a.local_jid.bare(), body)
    got = await asyncio.wait_for(inbox["a"].get(), TIMEOUT)
    assert got.from_ == b.local_jid and next(iter(got.body.values())) == body


async def test_ping(
    server: RunningServer, aio_login: Callable[..., Any], ax: SimpleNamespace
) -> None:
    """XEP-0199 ping of the server with aioxmpp.ping."""
    login, password = server.account()
    client = await aio_login(login, password)
    await asyncio.wait_for(ax.ping.ping(client, ax.aioxmpp.JID.fromstr(server.domain)), TIMEOUT)


async def test_subscription_handshake(
    server: RunningServer, aio_login: Callable[..., Any], ax: SimpleNamespace
) -> None:
    """A full RFC 6121 handshake with aioxmpp: both end at 'both' and see each other online."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    states: dict[str, asyncio.Queue[Any]] = {"a": asyncio.Queue(), "b": asyncio.Queue()}
    requests: dict[str, asyncio.Queue[Any]] = {"a": asyncio.Queue(), "b": asyncio.Queue()}
    online: dict[str, asyncio.Queue[Any]] = {"a": asyncio.Queue(), "b": asyncio.Queue()}

    def watcher(name: str) -> Callable[[Any], None]:
        def setup(client: Any) -> None:
            roster = client.summon(ax.aioxmpp.RosterClient)
            roster.on_subscribe.connect(requests[name].put_nowait)
            roster.on_entry_subscription_state_changed.connect(states[name].put_nowait)
            presence = client.summon(ax.aioxmpp.PresenceClient)
            presence.on_available.connect(lambda jid, _stanza: online[name].put_nowait(jid))

        return setup

    a = await aio_login(a_login, a_pw, setup=watcher("a"))
    b = await aio_login(b_login, b_pw, "PLAIN", setup=watcher("b"))
    a_roster = a.summon(ax.aioxmpp.RosterClient)
    b_roster = b.summon(ax.aioxmpp.RosterClient)
    a_jid, b_jid = a.local_jid.bare(), b.local_jid.bare()

    a_roster.subscribe(b_jid)
    request = await asyncio.wait_for(requests["b"].get(), TIMEOUT)
    assert request.from_.bare() == a_jid
    b_roster.approve(a_jid)
    b_roster.subscribe(a_jid)
    request = await asyncio.wait_for(requests["a"].get(), TIMEOUT)
    assert request.from_.bare() == b_jid
    a_roster.approve(b_jid)

    async def until_both(name: str, roster: Any, peer: Any) -> None:
        while roster.items.get(peer) is None or roster.items[peer].subscription != "both":
            await asyncio.wait_for(states[name].get(), TIMEOUT)

    await until_both("a", a_roster, b_jid)
    await until_both("b", b_roster, a_jid)

    async def sees(name: str, peer: Any) -> None:
        while (await asyncio.wait_for(online[name].get(), TIMEOUT)).bare() != peer:
            pass

    await sees("a", b_jid)
    await sees("b", a_jid)


async def test_offline_message_delivered_at_login(
    server: RunningServer, aio_login: Callable[..., Any], ax: SimpleNamespace
) -> None:
    """A message to an offline aioxmpp user arrives at its next login, with a delay stamp."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    a = await aio_login(a_login, a_pw)
    body = f"while you were out {uuid.uuid4().hex[:6]}"
    msg = ax.aioxmpp.Message(
        to=ax.aioxmpp.JID.fromstr(f"{b_login}@{server.domain}"), type_=ax.aioxmpp.MessageType.CHAT
    )
    msg.body[None] = body
    await asyncio.wait_for(a.send(msg), TIMEOUT)

    def setup(client: Any) -> None:
        dispatcher = client.summon(ax.dispatcher.SimpleMessageDispatcher)
        dispatcher.register_callback(ax.aioxmpp.MessageType.CHAT, None, inbox.put_nowait)

    # A connection's stanzas are handled in order: once the ping is answered, the
    # message before it is stored.
    await asyncio.wait_for(ax.ping.ping(a, ax.aioxmpp.JID.fromstr(server.domain)), TIMEOUT)
    await aio_login(b_login, b_pw, setup=setup)
    got = await asyncio.wait_for(inbox.get(), TIMEOUT)
    assert next(iter(got.body.values())) == body
    assert got.from_.bare() == a.local_jid.bare()
    assert got.xep0203_delay, "the stored message carries a delay stamp (XEP-0203)"
