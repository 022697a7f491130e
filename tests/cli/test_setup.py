"""``carewire init``: a new data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.cli.conftest import Run, init_data


@pytest.fixture
def domain() -> str:
    return "Hospital.Example."


@pytest.fixture
def data(tmp_path: Path, run: Run, domain: str) -> Path:
    """A data directory ``carewire init`` makes in this test, not a copy of another's."""
    return init_data(tmp_path, run, domain)


def test_init_creates_everything(data: Path, run: Run) -> None:
    assert (data / "carewire.toml").exists() and (data / "carewire.db").exists()
    assert (data / "certs/xmpp.pem").exists()
    secrets = ("certs/xmpp.key", "keys/server.secret", "keys/metrics.token")
    for secret in (*secrets, "initial-admin-password.txt"):
        assert stat.S_IMODE((data / secret).stat().st_mode) == 0o600
    password = (data / "initial-admin-password.txt").read_text().splitlines()[1]
    assert len(password) >= 12
    code, _, err = run("init", "--data-dir", str(data), "--domain", "x.example")
    assert code == 2 and "already initialised" in err


def test_init_rejects_a_bad_domain(tmp_path: Path, run: Run) -> None:
    code, _, err = run("init", "--data-dir", str(tmp_path / "d"), "--domain", "not a domain")
    assert code == 2 and "server.domain" in err
    assert not (tmp_path / "d" / "carewire.toml").exists()
