"""Clinical presence: one presence per user over all devices, recorded in the datasets.

Theory of operation
-------------------
Each resource is Available (available presence, no <show/> or 'chat'),
Unavailable (away, xa, dnd, or any desktop client) or Offline; the user's
presence is the highest of them (Available > Unavailable > Offline). When it
changes, USERS.presence_show/presence_status are updated and a
PRESENCE_HISTORY row is added. Clients say what they are with
``<register xmlns='urn:carewire:device:0'/>`` (DEVICES and
REGISTRATION_HISTORY record it); sessions that never do count as mobile.
A device an administrator asked to wipe is told to erase its data when it
next connects, and gets nothing else until it confirms (:mod:`.wipe`).
DEVICES.priority follows the priority of the latest message each device got
(:mod:`.priority`).

Administrators and the rule action "Update Presence" use
:meth:`ClinicalPresence.set_presence`; a user without a client gets a
*virtual session*. Facility presence states with a duration revert to
Available when they run out, and the XMPP adapter's session timeouts end
mobile sessions left in the background and idle desktop sessions.

RFC 6121 routing stays with :mod:`carewire.features.presence`; this feature
only observes it and, for virtual sessions, routes presence as a client
would. It needs the data platform (a kernel without it refuses to load it).
See docs/presence.md.
"""

from __future__ import annotations

import logging

from carewire.adapters.xmpp.gateway import ChatSettingsSource
from carewire.core import hook_names as H
from carewire.core.feature import FeatureContext, IqTarget
from carewire.datasets.model import Origin
from carewire.datasets.service import DatasetService
from carewire.directory.service import DirectoryService
from carewire.features.clinical_presence.model import (
    NS_DEVICE,
    REGISTER,
    UNREGISTER,
    Aggregate,
    DeviceInfo,
    DeviceKind,
    PresenceKind,
)
from carewire.features.clinical_presence.priority import DevicePriority
from carewire.features.clinical_presence.records import PresenceRecords
from carewire.features.clinical_presence.service import ClinicalPresence
from carewire.features.clinical_presence.wipe import WIPED, DeviceWipe

__all__ = [
    "NS_DEVICE",
    "Aggregate",
    "ClinicalPresence",
    "DeviceInfo",
    "DeviceKind",
    "PresenceKind",
    "setup",
]

log = logging.getLogger(__name__)

# Observe before the presence feature (-1000) handles the stanza; blocking runs at 1000.
OBSERVE_PRIORITY = 500
ACTIVITY_PRIORITY = 2000
# Before every feature that greets a client's initial presence (offline delivery, …).
INITIAL_PRESENCE_PRIORITY = 10_000
# Before the default message delivery (-1000), after blocking and archiving.
MESSAGE_PRIORITY = -900
# An observer of what is written to a session, after every hook that may drop it.
DELIVERED_PRIORITY = -5000
JOB_INTERVAL = 60.0
# A wipe-pending session: its stanzas are stopped before anything else sees them, messages to
# its full JID go to the bare JID before any delivery, and nothing is delivered to it.
WIPE_GATE_PRIORITY = 5000
WIPE_MESSAGE_PRIORITY = 1500
WIPE_DELIVER_PRIORITY = 2000


def setup(ctx: FeatureContext) -> None:
    """Register the observers, the device IQs, the service and the periodic jobs."""
    datasets = ctx.require(DatasetService)
    settings = ctx.require(ChatSettingsSource)

    def origin(actor: str) -> Origin:
        return Origin(adapter=settings.adapter_name(), actor=actor or "system")

    records = PresenceRecords(datasets, origin=origin, dataset=settings.dataset)
    presence = ctx.provide(ClinicalPresence(ctx, records, settings))
    ctx.hooks.on(H.PRE_PRESENCE, presence.on_presence, priority=OBSERVE_PRIORITY)
    ctx.hooks.on(H.PRE_MESSAGE, presence.on_activity, priority=ACTIVITY_PRIORITY)
    ctx.hooks.on(H.PRE_IQ, presence.on_activity, priority=ACTIVITY_PRIORITY)
    ctx.hooks.on(H.SESSION_BOUND, presence.on_bound)
    ctx.hooks.on(H.SESSION_CLOSED, presence.on_closed)
    ctx.hooks.on(
        H.SESSION_INITIAL_PRESENCE, presence.on_initial_presence, priority=INITIAL_PRESENCE_PRIORITY
    )
    ctx.hooks.on(H.MESSAGE_FULL, presence.on_message_full, priority=MESSAGE_PRIORITY)
    ctx.hooks.on(H.SESSION_DELIVER, DevicePriority(records).on_deliver, priority=DELIVERED_PRIORITY)
    ctx.hooks.on(H.SERVER_STARTED, presence.restore)
    ctx.hooks.on(H.SERVER_STOPPING, records.stop)
    targets = (IqTarget.ACCOUNT, IqTarget.HOST)
    ctx.iq.register(REGISTER, presence.on_register, types=("set",), targets=targets)
    ctx.iq.register(UNREGISTER, presence.on_unregister, types=("set",), targets=targets)
    ctx.disco.add_server_feature(NS_DEVICE)
    ctx.every("presence-state-reverts", JOB_INTERVAL, presence.revert_states)
    ctx.every("session-timeouts", JOB_INTERVAL, presence.expire_sessions)
    _setup_wipe(ctx, presence, targets)


def _setup_wipe(
    ctx: FeatureContext, presence: ClinicalPresence, targets: tuple[IqTarget, ...]
) -> None:
    """Remote wipe (docs/devices.md): tell wipe-pending devices, keep everything else away."""
    directory = ctx.require(DirectoryService)
    wipe = DeviceWipe(ctx, directory, presence)
    ctx.hooks.on(H.SESSION_BOUND, wipe.on_bound)
    for name in (H.PRE_MESSAGE, H.PRE_PRESENCE, H.PRE_IQ):
        ctx.hooks.on(name, wipe.gate, priority=WIPE_GATE_PRIORITY)
    ctx.hooks.on(H.SESSION_DELIVER, wipe.on_deliver, priority=WIPE_DELIVER_PRIORITY)
    ctx.hooks.on(H.MESSAGE_FULL, wipe.on_message_full, priority=WIPE_MESSAGE_PRIORITY)
    ctx.iq.register(WIPED, wipe.on_wiped, types=("set",), targets=targets)
    directory.subscribe(wipe.on_change)
    ctx.every("device-wipes", ctx.config.account_check_interval, wipe.sweep)
