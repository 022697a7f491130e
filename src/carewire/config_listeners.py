"""Listeners that cannot bind: one line naming the setting and its variable, not a traceback."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from socket import gaierror as socket_gaierror

from carewire.config import ENV_PREFIX
from carewire.errors import ConfigError


def setting_hint(key: str) -> str:
    """How an operator changes ``key`` ("server.c2s_port"): its TOML place and its variable."""
    section, _, name = key.partition(".")
    return f"[{section}] {name} or {ENV_PREFIX}{section.upper()}_{name.upper()}"


@contextlib.contextmanager
def listening(port_key: str, port: int, *, host: str, bind_key: str) -> Iterator[None]:
    """Turn a listener's failure to bind into one line naming the setting to change.

    A busy port, a port below 1024 without the right, or an address not on this
    machine would otherwise end ``carewire serve`` with an ``OSError`` traceback.

    Args:
        port_key: The setting holding the port (``server.c2s_port``).
        port: The port asked for.
        host: The address asked for.
        bind_key: The setting holding the address (``server.bind``).

    Raises:
        ConfigError: The socket could not be bound.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = f"port {port} is in use"
        elif exc.errno == errno.EACCES:
            why = f"port {port} needs privileges this process lacks"
        elif exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
            exc, socket_gaierror
        ):
            raise ConfigError(
                f"address {host} is not one of this machine's: set {setting_hint(bind_key)}"
            ) from None
        else:
            why = f"cannot listen on {host}:{port} ({exc.strerror or exc})"
        raise ConfigError(f"{why}: set {setting_hint(port_key)}") from None
