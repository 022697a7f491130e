"""The XMPP adapter: the chat domain's settings and the XMPP rule actions.

Only one XMPP adapter may be enabled at a time. Its runtime is the XMPP
server itself (started by ``carewire serve``), so the kind has no runtime
of its own here. The clinical behaviour of the actions is delivered by the
clinical messaging module; until it is installed, each action's delivery ends
in Error saying so (see :mod:`.actions`).
"""

from __future__ import annotations

from carewire.adapters.base import AdapterKind
from carewire.adapters.xmpp.actions import ACTIONS, COMPONENT
from carewire.adapters.xmpp.settings import REQUIRED_DATASETS, SETTINGS

__all__ = ["COMPONENT", "KIND"]

KIND = AdapterKind(
    component=COMPONENT,
    description="The XMPP server for the chat domain: conversations, alerts and presence.",
    settings=SETTINGS,
    required_datasets=REQUIRED_DATASETS,
    is_singleton=True,
    actions=ACTIONS,
)
