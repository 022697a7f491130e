"""The XMPP adapter: the chat domain's settings and the XMPP rule actions.

Only one XMPP adapter may be enabled at a time. Its runtime is the XMPP
server itself (started by ``carewire serve``), which attaches its
:class:`~.gateway.ChatGateway` to the kind's :class:`~.gateway.GatewaySlot`;
the actions deliver through it (see :mod:`.actions`).
"""

from __future__ import annotations

from carewire.adapters.base import AdapterKind
from carewire.adapters.xmpp.actions import make_actions
from carewire.adapters.xmpp.gateway import GatewaySlot
from carewire.adapters.xmpp.settings import COMPONENT, REQUIRED_DATASETS, SECTIONS, SETTINGS

__all__ = ["COMPONENT", "GatewaySlot", "make_kind"]


def make_kind(slot: GatewaySlot) -> AdapterKind:
    """The XMPP adapter kind, its actions delivering through ``slot``."""
    return AdapterKind(
        component=COMPONENT,
        description="The XMPP server for the chat domain: conversations, alerts and presence.",
        settings=SETTINGS,
        required_datasets=REQUIRED_DATASETS,
        is_singleton=True,
        actions=make_actions(slot),
        sections=SECTIONS,
    )
