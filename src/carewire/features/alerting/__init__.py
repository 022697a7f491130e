"""Clinical alerting: the XMPP rule actions delivered, and clinicians' responses taken in.

This feature is the XMPP kernel's side of the XMPP adapter's door
(:mod:`carewire.adapters.xmpp.gateway`). It provides the
:class:`~carewire.adapters.xmpp.gateway.ChatGateway` the composition root
attaches to the adapter, and answers ``urn:carewire:alert:0`` responses.

An alert goes one way, down::

    record write → rules engine → Send Alert (adapters/xmpp/actions.py)
      → ChatGateway.send_alert (gateway.py) → AlertSender (sender.py): room, MESSAGES record
      → router → the stanza on the wire

and a response comes back up the same way: the IQ (responses.py) → the
adapter's :class:`~carewire.adapters.xmpp.gateway.AlertResponder` → the
rule's updates through the dataset service → further rules.

Layout: :mod:`.addressing` (users and rooms a rule names), :mod:`.sender`
(alerts), :mod:`.gateway` (the gateway: alerts, messages, conversations,
presence), :mod:`.responses` (the response intake). See docs/alerts.md.
"""

from __future__ import annotations

from carewire.adapters.xmpp.gateway import AlertResponder, ChatGateway
from carewire.core.feature import FeatureContext, IqTarget
from carewire.datasets.paths import PathResolver
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.features.alerting.addressing import Addresses
from carewire.features.alerting.gateway import ServerGateway
from carewire.features.alerting.responses import AlertResponses
from carewire.features.alerting.sender import AlertSender, room_for_source
from carewire.features.client_settings import ClientSettingsService
from carewire.features.clinical_presence import ClinicalPresence
from carewire.features.coverage import Coverage
from carewire.features.muc.service import MucService
from carewire.features.tracking import MessageTracker
from carewire.xmpp import alert as al

__all__ = ["AlertResponses", "AlertSender", "ServerGateway", "room_for_source", "setup"]


def setup(ctx: FeatureContext) -> None:
    """Provide the gateway and answer alert responses."""
    datasets = ctx.require(DatasetService)
    tracker = ctx.require(MessageTracker)
    addresses = Addresses(
        domain=ctx.hosts.domain, room_domain=ctx.hosts.chat_domain, muc=ctx.require(MucService)
    )
    alerts = AlertSender(
        ctx,
        datasets=datasets,
        tracker=tracker,
        addresses=addresses,
        details=ctx.find(ClientSettingsService),  # without it: alerts name the MRN only
        coverage=ctx.find(Coverage),  # without it: every recipient is alerted, nothing held
    )
    gateway = ServerGateway(
        ctx,
        addresses=addresses,
        alerts=alerts,
        tracker=tracker,
        presence=ctx.require(ClinicalPresence),
    )
    ctx.provide(gateway, as_type=ChatGateway)
    responses = AlertResponses(
        ctx,
        datasets=datasets,
        resolver=ctx.require(PathResolver),
        registry=ctx.require(Registry),
        responder=ctx.require(AlertResponder),
    )
    ctx.iq.register(al.RESPONSE, responses.respond, types=("set",), targets=(IqTarget.HOST,))
    ctx.disco.add_server_feature(al.NS)
