"""Run a real ``carewire serve`` subprocess on free loopback ports for integration tests.

The server picks its own ports (``--c2s-port 0``) and reports them in
``run/ports.json``, so tests never collide with each other or with a running
server. Accounts ``user0 … userN`` (password ``pw-userN``) are provisioned
before start; :meth:`RunningServer.account` hands each test fresh ones.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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


#: Per process: (domain, accounts, CAREWIRE_* environment) → a directory holding a data
#: directory ``init_data_dir`` made, with its ``-keys``/``-audit`` siblings.
_Key = tuple[str, int, bool, tuple[tuple[str, str], ...]]
_INITIALISED: dict[_Key, Path] = {}
_SIBLINGS = ("-keys", "-audit")
#: A directory the whole run shares (tests/conftest.py sets it in the controlling process,
#: before pytest-xdist starts its workers): each kind of data directory is made once per run.
SHARED_INIT_ENV = "CAREWIRE_TEST_INIT_CACHE"
#: The provisioned accounts beside the demo hospital: one size, so its users share one copy.
DEMO_ACCOUNTS = 3


def _init_by_cli(
    data_dir: Path, *, accounts: int, env: dict[str, str], domain: str, demo: bool
) -> None:
    r = cli("init", "--data-dir", str(data_dir), "--domain", domain, env=env)
    assert r.returncode == 0, r.stderr
    if accounts:
        csv = data_dir / "accounts.csv"
        csv.write_text("".join(f"user{i},pw-user{i}\n" for i in range(accounts)))
        r = cli("user", "import", str(csv), "--quiet", "--data-dir", str(data_dir), env=env)
        assert r.returncode == 0, r.stderr
    if demo:
        r = cli("demo", "--data-dir", str(data_dir), env=env)
        assert r.returncode == 0, r.stderr


def _drop_initialised() -> None:
    shared = os.environ.get(SHARED_INIT_ENV)
    for where in _INITIALISED.values():
        if not shared or where.parent != Path(shared):  # the run's own are dropped at its end
            shutil.rmtree(where, ignore_errors=True)


def _initialised_for(
    key: _Key, *, accounts: int, env: dict[str, str], domain: str, demo: bool
) -> Path:
    """Where the data directory of ``key`` is: made now unless a worker of the run made it."""
    shared = os.environ.get(SHARED_INIT_ENV)
    if not shared or not Path(shared).is_dir():
        where = Path(tempfile.mkdtemp(prefix="carewire-initialised-"))
        _init_by_cli(where / "data", accounts=accounts, env=env, domain=domain, demo=demo)
        return where
    where = Path(shared) / hashlib.sha256(repr(key).encode()).hexdigest()[:20]
    with (Path(shared) / f"{where.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be making it: wait for it
        if not (where / "complete").exists():
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir()
            _init_by_cli(where / "data", accounts=accounts, env=env, domain=domain, demo=demo)
            (where / "complete").touch()
    return where


def init_data_dir(
    data_dir: Path,
    *,
    accounts: int,
    env: dict[str, str],
    domain: str = DOMAIN,
    demo: bool = False,
) -> None:
    """``carewire init`` plus ``accounts`` provisioned users (user0 … with password pw-userN),
    and ``carewire demo`` (the demo hospital) when ``demo`` is set.

    The first call of the run for a (domain, accounts, ``CAREWIRE_*`` environment)
    runs the real commands (two subprocesses, about 8 s of CPU); later ones, in any
    worker, copy what they made, the key and audit directories beside the data
    directory included (their default places follow its name, and every path in
    ``carewire.toml`` is relative). ``tests/cli/test_setup.py`` tests ``init`` itself.
    """
    carewire_env = tuple(
        sorted((k, v) for k, v in env.items() if k.startswith("CAREWIRE_") and k != SHARED_INIT_ENV)
    )
    key = (domain, accounts, demo, carewire_env)
    made = _INITIALISED.get(key)
    if made is None:
        if not _INITIALISED:
            atexit.register(_drop_initialised)
        made = _initialised_for(key, accounts=accounts, env=env, domain=domain, demo=demo)
        _INITIALISED[key] = made
    shutil.copytree(made / "data", data_dir, symlinks=True, dirs_exist_ok=True)
    for suffix in _SIBLINGS:
        sibling = made / f"data{suffix}"
        if sibling.exists():
            shutil.copytree(
                sibling,
                data_dir.parent / f"{data_dir.name}{suffix}",
                symlinks=True,
                dirs_exist_ok=True,
            )


def _launch(data_dir: Path, env: dict[str, str], s2s_port: int) -> subprocess.Popen[bytes]:
    with (data_dir / "serve.log").open("ab") as log:
        return subprocess.Popen(
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


def _await_ports(data_dir: Path, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, int]:
    ports_file = data_dir / "run" / "ports.json"
    while not ports_file.exists() or json.loads(ports_file.read_text()).get("pid") != proc.pid:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("server did not start:\n" + (data_dir / "serve.log").read_text())
        time.sleep(0.05)
    return dict(json.loads(ports_file.read_text()))


def _stop(proc: subprocess.Popen[bytes], *, hard_stop: bool) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if hard_stop else signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(
    data_dir: Path,
    *,
    accounts: int,
    env: dict[str, str],
    hard_stop: bool = False,
    domain: str = DOMAIN,
    s2s_port: int = 0,
    start_timeout: float = 30,
) -> Iterator[RunningServer]:
    """Serve an initialised data directory until the block ends (SIGTERM, or SIGKILL if hard)."""
    proc = _launch(data_dir, env, s2s_port)
    try:
        ports = _await_ports(data_dir, proc, time.monotonic() + start_timeout)
        yield RunningServer(
            data_dir=data_dir, ports=ports, proc=proc, accounts=accounts, domain=domain
        )
    finally:
        _stop(proc, hard_stop=hard_stop)


@dataclass(frozen=True)
class ServeSpec:
    """One server of :func:`serving_together`."""

    data_dir: Path
    env: dict[str, str]
    accounts: int
    domain: str = DOMAIN
    s2s_port: int = 0


@contextmanager
def serving_together(
    specs: list[ServeSpec], *, start_timeout: float = 150
) -> Iterator[list[RunningServer]]:
    """Start several servers at once (their start-ups overlap) and stop them all at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for spec in specs:
            procs.append(_launch(spec.data_dir, spec.env, spec.s2s_port))
        deadline = time.monotonic() + start_timeout
        yield [
            RunningServer(
                data_dir=spec.data_dir,
                ports=_await_ports(spec.data_dir, proc, deadline),
                proc=proc,
                accounts=spec.accounts,
                domain=spec.domain,
            )
            for spec, proc in zip(specs, procs, strict=True)
        ]
    finally:
        for proc in procs:
            _stop(proc, hard_stop=False)


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
