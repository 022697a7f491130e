"""Federation administration as one service: trusted domains and the status board.

What the composition root builds once (:mod:`carewire.assembly_federation`) and
hands to the server-to-server streams (as
:class:`~carewire.core.federation.FederationSettings` and
:class:`~carewire.core.federation.FederationStatusSink`), the REST API, the
console and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

from carewire.federation.model import ReportedStatus
from carewire.federation.status import StatusBoard
from carewire.federation.trust import TrustedDomains


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainOverview:
    """One remote domain as administrators see it.

    Attributes:
        domain: The remote domain.
        is_allowed: Whether the policy lets it federate.
        is_listed: Whether it is on the allow-list itself.
        pins: How many certificates are pinned for it.
        streams: Its streams' last reports (per direction and node).
    """

    domain: str
    is_allowed: bool
    is_listed: bool
    pins: int
    streams: tuple[ReportedStatus, ...] = ()

    @property
    def is_connected(self) -> bool:
        """Whether any stream with it is up."""
        return any(s.status.connected for s in self.streams)


@dataclass(frozen=True, slots=True, kw_only=True)
class FederationAdmin:
    """The trusted domains (policy, allow-list, pins) and the streams' status board.

    Attributes:
        trust: The policy and pinned certificates; the streams' ``FederationSettings``.
        status: The per-domain status; the streams' ``FederationStatusSink``.
    """

    trust: TrustedDomains
    status: StatusBoard

    async def start(self) -> None:
        """Poll for changes made elsewhere, and write status reports behind."""
        await self.trust.start()
        await self.status.start()

    async def close(self) -> None:
        """Stop both, writing pending status reports."""
        await self.status.close()
        await self.trust.close()

    async def overview(self) -> list[DomainOverview]:
        """Every remote domain with a stream report, on the allow-list or with a pin."""
        streams: dict[str, list[ReportedStatus]] = {}
        for reported in await self.status.read():
            streams.setdefault(reported.status.domain, []).append(reported)
        policy = await self.trust.read_policy()
        listed = {a.domain for a in policy.allow}
        pins: dict[str, int] = {}
        for pin in await self.trust.certificates():
            pins[pin.domain] = pins.get(pin.domain, 0) + 1
        return [
            DomainOverview(
                domain=domain,
                is_allowed=not listed or domain in listed,
                is_listed=domain in listed,
                pins=pins.get(domain, 0),
                streams=tuple(streams.get(domain, ())),
            )
            for domain in sorted(streams.keys() | listed | pins.keys())
        ]
