"""The only package with sockets and TLS: listeners, the connection pump, WebSocket."""

from __future__ import annotations
