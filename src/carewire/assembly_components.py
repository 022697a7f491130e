"""External components' assembly (XEP-0114, docs/components.md): the hub and its listener context.

Kept apart from :mod:`carewire.server` so that module stays within its size bound.
"""

from __future__ import annotations

import ipaddress
import logging

from carewire.assembly import Assembly
from carewire.config import Config, parse_duration
from carewire.core.components import ComponentHub
from carewire.net.component import ComponentLimits, ComponentNet
from carewire.xmpp.parser import ParserLimits

log = logging.getLogger(__name__)


def component_net(cfg: Config, assembly: Assembly) -> ComponentNet | None:
    """The component listener's context, or None when no component is configured."""
    if not cfg.component_secrets:
        return None
    c = cfg.components
    hub = ComponentHub(
        router=assembly.kernel.router,
        secrets={entry.domain: entry.require() for entry in cfg.component_secrets},
        audit=assembly.audit,
        limits=ParserLimits(max_stanza_bytes=c.max_stanza_bytes),
    )
    if not _is_loopback(c.bind):
        log.warning(
            "components.bind = %s: component handshakes and stanzas cross the network "
            "unencrypted (XEP-0114 has no TLS); keep the port behind a firewall or a tunnel",
            c.bind,
        )
    timeout = parse_duration(c.handshake_timeout, "components.handshake_timeout")
    limits = ComponentLimits(
        handshake_timeout=timeout.total_seconds(), max_send_buffer=c.max_send_buffer
    )
    return ComponentNet(hub=hub, limits=limits)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
