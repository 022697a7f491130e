"""Fixtures for the CLI tests: ``carewire`` run in-process on an initialised data directory.

``run`` calls :func:`carewire.cli.main` and captures what it printed; ``data``
is a data directory made by ``carewire init`` for ``domain`` (a test module
overrides ``domain`` to use another); ``on_platform`` opens a data directory's
platform the way the commands do, to check what they changed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from carewire.cli import main
from carewire.cli.runtime import Services, run_with_platform

T = TypeVar("T")


class Run(Protocol):
    """Runs ``carewire ARGS``: (exit code, standard output, standard error)."""

    def __call__(self, *args: str) -> tuple[int, str, str]: ...


class OnPlatform(Protocol):
    """Runs ``work`` on the open platform of a data directory; returns what it returned."""

    def __call__(self, data: Path, work: Callable[[Services], Awaitable[T]]) -> T: ...


@pytest.fixture(autouse=True)
def _natural_widths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables at their natural widths: pytest-xdist's workers set ``COLUMNS=80``.

    A test of the fitting sets ``COLUMNS`` itself.
    """
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``carewire`` in this process, its output captured."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def domain() -> str:
    """The chat domain ``data`` is initialised for."""
    return "h.example"


def init_data(where: Path, run: Run, domain: str) -> Path:
    """``carewire init --domain DOMAIN`` in ``where/data``; returns the data directory."""
    d = where / "data"
    code, out, err = run("init", "--data-dir", str(d), "--domain", domain)
    assert code == 0, err
    assert f"administrator  admin@{domain.strip().lower().rstrip('.')}" in out
    return d


#: Per process and domain: a directory holding a data directory ``carewire init`` made, with
#: its sibling key and audit directories (``data-keys``, ``data-audit``).
_INITIALISED: dict[str, Path] = {}


@pytest.fixture
def data(tmp_path: Path, run: Run, domain: str) -> Path:
    """A data directory initialised by ``carewire init --domain DOMAIN``.

    The first test of a process (per domain) runs ``init``; the others get a copy of what it
    made, siblings included (every path in ``carewire.toml`` is relative). An ``init``
    migrates a new database, makes a certificate and hashes the first administrator's
    password: most of a CLI test's time. ``tests/cli/test_setup.py`` tests ``init`` itself.
    """
    template = _INITIALISED.get(domain)
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="carewire-cli-"))
        init_data(template, run, domain)
        _INITIALISED[domain] = template
    for part in template.iterdir():  # data, data-keys, data-audit
        shutil.copytree(part, tmp_path / part.name, symlinks=True)
    return tmp_path / "data"


@pytest.fixture
def on_platform() -> OnPlatform:
    """Opens a data directory's platform through the CLI's runtime."""

    def on_platform(data: Path, work: Callable[[Services], Awaitable[T]]) -> T:
        return run_with_platform(argparse.Namespace(data_dir=str(data)), work)

    return on_platform
