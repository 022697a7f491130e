"""Federation's place in the composition root: the manager, its listeners and its dialer.

:func:`federation_parts` is the one wiring point for the trusted-domain
directory (policy, pinned certificates, layered over the ``[s2s]`` keys) and
the per-domain status board.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field

from carewire.assembly import Assembly
from carewire.config import Config, parse_duration
from carewire.config_listeners import listening
from carewire.config_s2s import pins_of
from carewire.core.federation import FederationPolicy, FederationSettings, FederationStatusSink
from carewire.core.s2s import S2SManager, S2SOptions
from carewire.core.s2s_policy import LayeredFederationSettings, StaticFederationSettings
from carewire.errors import ConfigError
from carewire.net.listeners import bound_port
from carewire.net.s2s_base import S2SContext
from carewire.net.s2s_in import InboundS2S
from carewire.net.s2s_out import S2SDialer
from carewire.net.s2s_resolve import Resolver
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.parser import ParserLimits

log = logging.getLogger(__name__)


def federation_parts(
    cfg: Config, assembly: Assembly
) -> tuple[FederationSettings, FederationStatusSink | None]:
    """The policy source and status sink federation uses.

    The policy and pins are those of ``[s2s]`` (``allow``, ``certificates_only``,
    ``pins``) layered with the trusted-domain directory's (console, API,
    ``carewire s2s``): see :class:`LayeredFederationSettings`. Status goes to
    the directory's status board.
    """
    s = cfg.s2s
    policy = FederationPolicy(
        allow=frozenset(d.lower() for d in s.allow), certificates_only=s.certificates_only
    )
    static = StaticFederationSettings(policy, pins_of(s))
    admin = assembly.federation
    return LayeredFederationSettings(static, admin.trust), admin.status


@dataclass(slots=True)
class Federation:
    """The running server-to-server part of a server."""

    manager: S2SManager
    context: S2SContext
    listeners: list[asyncio.Server] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Stop listening, close every stream, end the tasks."""
        for listener in self.listeners:
            listener.close()
        await self.manager.close()
        for conn in list(self.context.connections):
            conn.close(StreamCondition.SYSTEM_SHUTDOWN, "the server is shutting down")
        if self.task is not None:
            self.task.cancel()
        for task in list(self.context.tasks):
            task.cancel()
        await asyncio.gather(*self.context.tasks, return_exceptions=True)


async def start_federation(
    cfg: Config,
    assembly: Assembly,
    *,
    settings: FederationSettings | None = None,
    status: FederationStatusSink | None = None,
) -> Federation:
    """Build the manager, attach it to the router, listen on the s2s ports."""
    s = cfg.s2s
    kernel = assembly.kernel
    if settings is None:
        settings, status = federation_parts(cfg, assembly)
    manager = S2SManager(
        router=kernel.router,
        hosts=kernel.hosts,
        settings=settings,
        clock=assembly.clock,
        options=S2SOptions(
            queue_limit=s.queue_limit,
            idle_timeout=parse_duration(s.idle_timeout, "s2s.idle_timeout").total_seconds(),
            allow_dialback=s.dialback,
            rate=float(s.rate),
            burst=float(s.burst),
        ),
        secret=secrets.token_bytes(32),  # per process: dialback keys never outlive it
        status=status,
        audit=assembly.audit,
    )
    ctx = S2SContext(
        manager=manager,
        domain=kernel.hosts.domain,
        domains_served=frozenset(
            {kernel.hosts.domain, *kernel.hosts.subdomains, *kernel.hosts.components}
        ),
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        ca_file=(cfg.data_dir / s.ca_file) if s.ca_file else None,
        limits=ParserLimits(max_stanza_bytes=s.max_stanza_size),
        connect_timeout=parse_duration(s.connect_timeout, "s2s.connect_timeout").total_seconds(),
    )
    manager.dialer = S2SDialer(
        ctx, Resolver(routes=s.routes, tls_routes=s.tls_routes, dns_server=s.dns_server)
    )
    kernel.router.remote = manager
    fed = Federation(manager=manager, context=ctx)
    loop = asyncio.get_running_loop()
    for name, key, port, direct in (
        ("s2s", "server.s2s_port", cfg.server.s2s_port, False),
        ("s2s_tls", "s2s.tls_port", s.tls_port, True),
    ):
        try:
            with listening(key, port, host=cfg.server.bind, bind_key="server.bind"):
                server = await loop.create_server(
                    lambda direct=direct: InboundS2S(ctx, direct_tls=direct),  # type: ignore[misc]
                    host=cfg.server.bind,
                    port=port,
                    reuse_address=True,
                )
        except ConfigError:
            await fed.stop()  # the listener bound before this one
            raise
        fed.listeners.append(server)
        fed.ports[name] = bound_port(server)
    fed.task = loop.create_task(manager.run(), name="s2s-idle")
    log.info(
        "federation on %s: s2s %d (STARTTLS), s2s-tls %d (direct TLS)",
        cfg.server.bind,
        fed.ports["s2s"],
        fed.ports["s2s_tls"],
    )
    return fed
