"""Sans-IO XMPP protocol core (RFC 6120, RFC 6121, RFC 7395, RFC 7622).

Nothing here performs I/O, reads the clock or imports other Carewire
packages: it turns bytes into events and events into bytes.
"""

from __future__ import annotations
