"""What the peer fixtures share: free ports, the skip-or-fail switch, a peer's data, waiting.

A peer (Prosody, ejabberd) runs as a child process of the test session under its
own system user when the tests run as root (``prosody`` / ``ejabberd``, the
Debian packages' users), in a private directory under ``/tmp`` that user owns,
and answers on loopback ports picked here. When its program is missing the
caller skips loudly, unless ``CAREWIRE_TEST_REQUIRE_<NAME>=1`` (CI sets it).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
#: Accounts every peer is created with: user0 … (password ``pw-userN``).
ACCOUNTS = 40


def missing(paths: Sequence[str], package: str) -> str | None:
    """Why a peer cannot run here (``None``: every path, globs allowed, exists)."""
    for path in paths:
        if not glob.glob(path):
            return f"{path} is missing: apt-get install {package} (federation interop tests)"
    return None


def require(name: str, reason: str | None) -> None:
    """Skip the caller (loudly) when ``reason`` says the peer is missing, or fail under CI."""
    import pytest

    if reason is None:
        return
    if os.environ.get(f"CAREWIRE_TEST_REQUIRE_{name.upper()}"):
        pytest.fail(f"CAREWIRE_TEST_REQUIRE_{name.upper()} is set but {reason}")
    pytest.skip(reason)


#: Ports handed to the peers come from below the kernel's ephemeral range (32768 and up on
#: Linux), in a block per xdist worker: a port the kernel gave a ``bind(0)`` and took back
#: could otherwise go to another worker's server, or to a Carewire binding port 0, before the
#: peer binds it (a Prosody would then answer for the ejabberd that SRV names).
_PORT_BASE = 20000
_PORTS_PER_WORKER = 1500
_next_port: dict[str, int] = {}


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(c for c in worker if c.isdigit())
    return int(digits or 0) % 8


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback TCP ports, free now and from this worker's own block."""
    low = _PORT_BASE + _worker_index() * _PORTS_PER_WORKER
    high = low + _PORTS_PER_WORKER
    ports: list[int] = []
    candidate = _next_port.get("next", low)
    for _ in range(_PORTS_PER_WORKER):
        if len(ports) == count:
            break
        if candidate >= high:
            candidate = low
        with socket.socket() as sock:
            try:
                sock.bind((HOST, candidate))
            except OSError:
                candidate += 1
                continue
        ports.append(candidate)
        candidate += 1
    _next_port["next"] = candidate
    if len(ports) < count:
        raise OSError(f"no {count} free ports in {low}-{high}")
    return ports


def private_dir(prefix: str) -> Path:
    """A fresh directory under /tmp (world-traversable: the peer's user reads it)."""
    path = Path(tempfile.mkdtemp(prefix=f"carewire-{prefix}-"))
    path.chmod(0o755)
    return path


def hand_over(path: Path, user: str) -> dict[str, object]:
    """Give ``path`` (recursively) to ``user`` if we are root; the Popen arguments to run as it."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files, "."]:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Return once ``port`` accepts connections; raise (with the log) if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
            raise RuntimeError(f"{proc.args!r} did not start (exit {proc.returncode}):\n{text}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Peer:
    """A running third-party XMPP server: enough for tests and slixmpp (``tests/interop/slix``)."""

    name: str
    domain: str
    #: ``c2s``, ``s2s``, ``s2s_tls`` (direct TLS).
    ports: dict[str, int]
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    accounts: int = ACCOUNTS
    _next: Iterator[int] = field(default_factory=itertools.count)

    @property
    def muc(self) -> str:
        """The peer's MUC service."""
        return f"conference.{self.domain}"

    def account(self) -> tuple[str, str]:
        """A fresh (login, password) no other test uses."""
        n = next(self._next)
        if n >= self.accounts:
            raise RuntimeError(f"{self.name} ran out of provisioned accounts")
        return f"user{n}", f"pw-user{n}"

    def jid(self, login: str) -> str:
        return f"{login}@{self.domain}"

    def log(self) -> str:
        """The peer's log so far (for failure messages)."""
        path = self.directory / "log" / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def remove(self) -> None:
        """Delete the peer's directory (kept when ``CAREWIRE_TEST_KEEP_PEERS`` is set)."""
        if os.environ.get("CAREWIRE_TEST_KEEP_PEERS"):
            print(f"{self.name} kept in {self.directory}")
            return
        shutil.rmtree(self.directory, ignore_errors=True)
