"""Message expiration (seed 001): each message leaves clients, the archive, offline storage
and room history when the sending organisation's Message Expiration Time has passed.

Clients are told with XEP-0424 Message Retraction (XEP-0425 moderation in rooms);
every tracked message also carries the expiry hint
``<expires xmlns='urn:carewire:expiry:0' at='…'/>``. See ``docs/retention.md``.
Needs the tracking feature (the messages it records are what expires) and the
organisation directory.
"""

from __future__ import annotations

from carewire.core import hook_names as H
from carewire.core.feature import FeatureContext
from carewire.datasets.service import DatasetService
from carewire.directory.service import DirectoryService
from carewire.features.expiry.policy import REFRESH_INTERVAL, OrganisationLifetimes
from carewire.features.expiry.service import Expirer, ExpiryCounts
from carewire.features.tracking import MessageTracker
from carewire.xmpp import ns

__all__ = ["Expirer", "ExpiryCounts", "OrganisationLifetimes", "setup"]


def setup(ctx: FeatureContext) -> None:
    """Give tracked messages their lifetime and expire them when it is over."""
    tracker = ctx.require(MessageTracker)
    lifetimes = ctx.provide(OrganisationLifetimes(ctx.require(DirectoryService), ctx.hosts.domain))
    tracker.use_lifetime_policy(lifetimes.lifetime)
    expirer = ctx.provide(Expirer(ctx, tracker, ctx.require(DatasetService)))
    ctx.hooks.on(H.SERVER_STARTED, lifetimes.refresh)
    ctx.hooks.on(H.SERVER_STARTED, expirer.start)
    ctx.hooks.on(H.SERVER_STOPPING, expirer.stop)
    ctx.every("message-lifetimes", REFRESH_INTERVAL, lifetimes.refresh)
    ctx.disco.add_server_feature(ns.EXPIRY)
