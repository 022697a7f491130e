"""The wheel: built from the sources, installed in a fresh venv, it initialises and serves.

What this proves is that the wheel carries everything the server reads at run
time — templates, static files, migrations, the built-in datasets — and that
its ``carewire`` command works from a directory that is not the source tree,
with the packaged layout (``/etc/carewire/carewire.toml`` naming
``/var/lib/carewire``; temporary directories stand in for both).

Honest about what it does not prove: the fresh venv gets its third-party
dependencies from the development venv (a ``.pth`` line naming its
site-packages, which does not run the development venv's own ``.pth`` files,
so its editable ``carewire`` stays out of sight), and the wheel is installed
with ``--no-deps --no-index``. Resolving and downloading the dependencies is
pip's business and would make the test slow and dependent on the network; the
wheel's own files are ours. The build itself runs in pip's isolated build
environment, whose ``setuptools`` comes from the package index (or pip's cache),
as it would on any build machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import make_url

import carewire
from tests.conftest import pg_base_url

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "src" / "carewire"
DOMAIN = "carewire.test"

# One worker builds the wheel and serves it once for the whole module.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_packaging.py")]


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would lead Python back to the source tree."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith("CAREWIRE_")
    }
    return {**env, "CAREWIRE_XMPP_SCRAM_ITERATIONS": "4096", **extra}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the wheel, what its build printed): built from a copy of the sources."""
    where = tmp_path_factory.mktemp("build")
    tree = where / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    out = where / "dist"
    printed = _run(
        sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", out, tree,
        cwd=where, env=_clean_env(),
    )  # fmt: skip
    wheels = list(out.glob("carewire-*.whl"))
    assert len(wheels) == 1, printed
    return wheels[0], printed


def test_the_build_prints_no_deprecation_warning(built: tuple[Path, str]) -> None:
    _, printed = built
    for warning in ("BuildBackendWarning", "DeprecationWarning", "is deprecated"):
        assert warning not in printed, printed


def test_the_wheel_holds_every_file_of_the_package(built: tuple[Path, str]) -> None:
    wheel, _ = built
    assert wheel.name == f"carewire-{carewire.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        packed = set(z.namelist())
        metadata = z.read(f"carewire-{carewire.__version__}.dist-info/METADATA").decode()
    wanted = {
        p.relative_to(SOURCES.parent).as_posix()
        for p in SOURCES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert sorted(wanted - packed) == []
    assert re.search(r"^License-Expression: LicenseRef-Proprietary$", metadata, re.M)
    assert re.search(r"^Version: " + re.escape(carewire.__version__) + "$", metadata, re.M)


@pytest.fixture(scope="module")
def venv(built: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (its dependencies seen from the dev venv)."""
    wheel, _ = built
    where = tmp_path_factory.mktemp("venv") / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent, env=_clean_env())
    py = where / "bin" / "python"
    site = _run(
        py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=where.parent, env=_clean_env(),
    ).strip()  # fmt: skip
    (Path(site) / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel,
        cwd=where.parent, env=_clean_env(),
    )  # fmt: skip
    return where


def test_the_installed_package_is_the_one_imported(venv: Path, tmp_path: Path) -> None:
    out = _run(
        venv / "bin" / "python", "-c", "import carewire; print(carewire.__file__)",
        cwd=tmp_path, env=_clean_env(),
    )  # fmt: skip
    assert Path(out.strip()).is_relative_to(venv), out
    version = _run(venv / "bin" / "carewire", "--version", cwd=tmp_path, env=_clean_env())
    assert version.strip() == f"carewire {carewire.__version__}"


def _await_ports(data: Path, proc: subprocess.Popen[bytes], log: Path) -> dict[str, int]:
    ports_file = data / "run" / "ports.json"
    deadline = time.monotonic() + 30
    while not ports_file.exists() or json.loads(ports_file.read_text()).get("pid") != proc.pid:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the server did not start:\n" + log.read_text())
        time.sleep(0.05)
    return dict(json.loads(ports_file.read_text()))


def _pg_admin(sql: str) -> None:
    base = pg_base_url()
    assert base is not None

    async def run() -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def _alembic_version(url: str, data: Path) -> str:
    if url == "sqlite":
        with sqlite3.connect(data / "carewire.db") as db:
            return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])

    async def read() -> str:
        conn = await asyncpg.connect(url)
        try:
            return str(await conn.fetchval("SELECT version_num FROM alembic_version"))
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def storage(request: pytest.FixtureRequest) -> Iterator[str]:
    """``sqlite`` (the default in the data directory), or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    base = pg_base_url()
    if base is None:
        pytest.skip("CAREWIRE_TEST_PG_URL not set")
    name = f"carewire_wheel_{secrets.token_hex(6)}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def serving(
    venv: Path, storage: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, int], dict[str, str]]]:
    """(data directory, ports, environment) of the installed ``carewire serve``."""
    root = tmp_path_factory.mktemp("host")
    etc = root / "etc" / "carewire" / "carewire.toml"
    data = root / "var" / "lib" / "carewire"
    data.parent.mkdir(parents=True)
    env = _clean_env(CAREWIRE_CONFIG=str(etc))
    if storage != "sqlite":
        env["CAREWIRE_STORAGE_URL"] = storage
    carewire_cmd = venv / "bin" / "carewire"
    _run(carewire_cmd, "init", "--data-dir", data, "--domain", DOMAIN, cwd=root, env=env)
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(carewire_cmd), "serve", "--c2s-port", "0", "--c2s-tls-port", "0",
             "--s2s-port", "0", "--https-port", "0"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield data, _await_ports(data, proc, log), env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _trusting(data: Path) -> ssl.SSLContext:
    """Trusts the installation's self-signed certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(data / "certs" / "xmpp.pem"))


def test_the_installed_server_completes_a_client_tls_handshake(
    serving: tuple[Path, dict[str, int], dict[str, str]],
) -> None:
    data, ports, _ = serving
    header = (
        f"<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client'"
        " xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    with (
        socket.create_connection(("127.0.0.1", ports["c2s_tls"]), timeout=10) as raw,
        _trusting(data).wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        tls.sendall(header.encode())
        got = b""
        while b"</stream:features>" not in got:
            chunk = tls.recv(65_536)
            assert chunk, got
            got += chunk
    assert b"urn:ietf:params:xml:ns:xmpp-sasl" in got


def test_the_installed_console_serves_its_sign_in_page_and_static_files(
    serving: tuple[Path, dict[str, int], dict[str, str]],
) -> None:
    data, ports, _ = serving
    context = _trusting(data)
    context.check_hostname = False  # reached by address; the certificate names the domain
    with httpx.Client(verify=context, timeout=10) as client:
        base = f"https://127.0.0.1:{ports['https']}"
        page = client.get(f"{base}/signin")
        assert page.status_code == 200 and 'name="password"' in page.text
        css = client.get(f"{base}/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        # the clinicians' web client, its library and that library's licence
        for path in ("/app/", "/app/js/main.js", "/app/vendor/strophe.umd.min.js"):
            assert client.get(f"{base}{path}").status_code == 200, path
        licence = client.get(f"{base}/app/vendor/strophe.js.LICENSE.txt")
        assert "Permission is hereby granted" in licence.text


def test_the_installed_migrations_ran(
    venv: Path, storage: str, serving: tuple[Path, dict[str, int], dict[str, str]]
) -> None:
    data, _, _ = serving
    version = _alembic_version(storage, data)
    installed = next(venv.glob("lib/python*/site-packages/carewire/storage/migrations/versions"))
    assert version == max(p.stem for p in installed.glob("*.py") if p.stem != "__init__")


def test_the_installed_health_command_finds_the_server_from_carewire_config(
    venv: Path, serving: tuple[Path, dict[str, int], dict[str, str]], tmp_path: Path
) -> None:
    _, ports, env = serving
    out = _run(venv / "bin" / "carewire", "health", cwd=tmp_path, env=env)
    assert out.startswith(f"ok: {DOMAIN} answers on https://127.0.0.1:{ports['https']}/healthz")
