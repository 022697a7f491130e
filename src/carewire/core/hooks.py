"""The hook bus: named events with prioritised handlers (Prosody's model).

Handlers run from the highest priority down. A handler that returns ``True``
has *handled* the event and stops propagation; any other return value lets
the next handler run. Handlers may be plain functions (the fast path) or
coroutine functions; :meth:`HookBus.fire` awaits only what needs awaiting.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], "bool | Awaitable[bool | None] | None"]


class HookBus:
    """Named hooks with prioritised handlers."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[int, int, Handler]]] = {}
        self._seq = 0

    def on(self, name: str, handler: Handler, *, priority: int = 0) -> None:
        """Register ``handler`` for ``name``; higher priorities run first."""
        self._seq += 1
        entries = self._handlers.setdefault(name, [])
        entries.append((-priority, self._seq, handler))
        entries.sort(key=lambda e: (e[0], e[1]))

    def off(self, name: str, handler: Handler) -> None:
        """Remove a handler (no error if it was not registered)."""
        entries = self._handlers.get(name, [])
        self._handlers[name] = [e for e in entries if e[2] is not handler]

    def has_handlers(self, name: str) -> bool:
        """Whether anything listens on ``name``."""
        return bool(self._handlers.get(name))

    async def fire(self, name: str, payload: Any) -> bool:
        """Run the handlers of ``name`` in order; True if one handled the event."""
        for _, _, handler in self._handlers.get(name, ()):
            result = handler(payload)
            if result is True:
                return True
            # Most handlers are plain functions returning a bool or None: only what is
            # neither is looked at further (inspect.isawaitable costs several checks).
            if (
                result is not None
                and result is not False
                and inspect.isawaitable(result)
                and await result is True
            ):
                return True
        return False

    def fire_sync(self, name: str, payload: Any) -> bool:
        """Run handlers that must be synchronous (e.g. on the delivery path)."""
        for _, _, handler in self._handlers.get(name, ()):
            result = handler(payload)
            if result is True:
                return True
            if result is not None and result is not False and inspect.isawaitable(result):
                # A programming error: this hook's handlers must be synchronous.
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(f"hook {name!r} needs synchronous handlers, got {handler!r}")
        return False
