"""Fixtures for the CLI tests: ``carewire`` run in-process on an initialised data directory.

``run`` calls :func:`carewire.cli.main` and captures what it printed; ``data``
is a data directory made by ``carewire init`` for ``domain`` (a test module
overrides ``domain`` to use another); ``on_platform`` opens a data directory's
platform the way the commands do, to check what they changed.
"""

from __future__ import annotations

import argparse
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


@pytest.fixture
def data(tmp_path: Path, run: Run, domain: str) -> Path:
    """A data directory initialised by ``carewire init --domain DOMAIN``."""
    d = tmp_path / "data"
    code, out, err = run("init", "--data-dir", str(d), "--domain", domain)
    assert code == 0, err
    assert f"administrator  admin@{domain.strip().lower().rstrip('.')}" in out
    return d


@pytest.fixture
def on_platform() -> OnPlatform:
    """Opens a data directory's platform through the CLI's runtime."""

    def on_platform(data: Path, work: Callable[[Services], Awaitable[T]]) -> T:
        return run_with_platform(argparse.Namespace(data_dir=str(data)), work)

    return on_platform
