"""XMPP features: one module each, registering hooks and handlers in ``setup(ctx)``."""

from __future__ import annotations
