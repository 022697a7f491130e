"""The XMPP kernel: hook bus, feature API, sessions, router and hosts.

Nothing here touches sockets, the web layer or SQL: stores arrive through
the feature context, shaped by the protocols of :mod:`carewire.core.stores`.
"""

from __future__ import annotations
