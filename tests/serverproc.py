"""Run a real ``carewire serve`` subprocess on free loopback ports for integration tests.

The server picks its own ports (``--c2s-port 0``) and reports them in
``run/ports.json``, so tests never collide with each other or with a running
server. Accounts ``user0 … userN`` (password ``pw-userN``) are provisioned
before start; :meth:`RunningServer.account` hands each test fresh ones.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DOMAIN = "carewire.test"
CAREWIRE = [sys.executable, "-m", "carewire"]


@dataclass
class RunningServer:
    """A server subprocess and what tests need to reach it."""

    data_dir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    accounts: int
    domain: str = DOMAIN
    _next: Iterator[int] = field(default_factory=lambda: itertools.count())

    def account(self) -> tuple[str, str]:
        """A fresh (login, password) no other test uses."""
        n = next(self._next)
        if n >= self.accounts:
            raise RuntimeError("the test server ran out of provisioned accounts")
        return f"user{n}", f"pw-user{n}"

    def jid(self, login: str) -> str:
        return f"{login}@{self.domain}"

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``carewire ARGS --data-dir DIR`` against this server's data."""
        return subprocess.run(
            [*CAREWIRE, *args, "--data-dir", str(self.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def log(self) -> str:
        return (self.data_dir / "serve.log").read_text(errors="replace")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CAREWIRE, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def init_data_dir(
    data_dir: Path, *, accounts: int, env: dict[str, str], domain: str = DOMAIN
) -> None:
    """``carewire init`` plus ``accounts`` provisioned users (user0 … with password pw-userN)."""
    r = cli("init", "--data-dir", str(data_dir), "--domain", domain, env=env)
    assert r.returncode == 0, r.stderr
    if accounts:
        csv = data_dir / "accounts.csv"
        csv.write_text("".join(f"user{i},pw-user{i}\n" for i in range(accounts)))
        r = cli("user", "import", str(csv), "--quiet", "--data-dir", str(data_dir), env=env)
        assert r.returncode == 0, r.stderr


@contextmanager
def serving(
    data_dir: Path,
    *,
    accounts: int,
    env: dict[str, str],
    hard_stop: bool = False,
    domain: str = DOMAIN,
    s2s_port: int = 0,
) -> Iterator[RunningServer]:
    """Serve an initialised data directory until the block ends (SIGTERM, or SIGKILL if hard)."""
    log = (data_dir / "serve.log").open("ab")
    proc = subprocess.Popen(
        [
            *CAREWIRE,
            "serve",
            "--data-dir",
            str(data_dir),
            "--bind",
            "127.0.0.1",
            "--c2s-port",
            "0",
            "--c2s-tls-port",
            "0",
            "--https-port",
            "0",
            "--s2s-port",
            str(s2s_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    ports_file = data_dir / "run" / "ports.json"
    deadline = time.monotonic() + 30
    while not ports_file.exists() or json.loads(ports_file.read_text()).get("pid") != proc.pid:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start:\n" + (data_dir / "serve.log").read_text())
        time.sleep(0.05)
    ports = json.loads(ports_file.read_text())
    server = RunningServer(
        data_dir=data_dir, ports=ports, proc=proc, accounts=accounts, domain=domain
    )
    try:
        yield server
    finally:
        proc.send_signal(signal.SIGKILL if hard_stop else signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def running_server(
    data_dir: Path, *, accounts: int = 100, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """Init a data directory, provision accounts, serve, and stop cleanly afterwards."""
    full_env = server_env(env)
    init_data_dir(data_dir, accounts=accounts, env=full_env)
    with serving(data_dir, accounts=accounts, env=full_env) as server:
        yield server


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a test server runs with."""
    return {
        **os.environ,
        "CAREWIRE_LOG_LEVEL": "info",
        # Tests log many clients in at once, all from 127.0.0.1.
        "CAREWIRE_XMPP_MAX_UNAUTHENTICATED_PER_ADDRESS": "256",
        # Hundreds of accounts are provisioned per server: the RFC's minimum keeps that quick.
        "CAREWIRE_XMPP_SCRAM_ITERATIONS": "4096",
        **(extra or {}),
    }
