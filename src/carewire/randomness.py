"""Cryptographically random bytes and UUIDs, taken from the kernel in blocks.

``os.urandom`` is one system call per use; on the message path that is a
stanza id and a nonce or two per message, and system calls are dear in
sandboxed hosts (they showed as several per cent of the server's CPU). This
pool reads :data:`BLOCK` bytes at a time from the same source and hands out
slices, never the same byte twice: the bytes are exactly as unpredictable as
``os.urandom``'s. A forked child starts with an empty pool (its parent's
bytes are never reused), and a lock keeps threads from sharing a slice.
"""

from __future__ import annotations

import os
import threading

BLOCK = 4096  # bytes read from the kernel at a time

_lock = threading.Lock()
_buffer = b""
_offset = 0


def _forget() -> None:
    global _buffer, _offset
    _buffer, _offset = b"", 0


os.register_at_fork(after_in_child=_forget)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG (as ``os.urandom(n)``)."""
    global _buffer, _offset
    if n > BLOCK // 4:
        return os.urandom(n)
    with _lock:
        end = _offset + n
        if end > len(_buffer):
            _buffer, _offset, end = os.urandom(BLOCK), 0, n
        out = _buffer[_offset:end]
        _offset = end
    return out


def uuid4() -> str:
    """A random (version 4) UUID in its usual text form, as ``str(uuid.uuid4())``."""
    b = bytearray(random_bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
