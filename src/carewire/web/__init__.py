"""The HTTPS side: app factory, API and console (the console arrives with its own issue)."""

from __future__ import annotations
