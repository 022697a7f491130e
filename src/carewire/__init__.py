"""Carewire: a secure clinical communication platform built on XMPP."""

from __future__ import annotations

__version__ = "0.1.0"
