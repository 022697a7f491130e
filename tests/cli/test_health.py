"""``carewire health``: 0 when the running server answers its HTTPS /healthz, else 1 and why."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from carewire.cli.health import PORTS_FILE as HEALTH_PORTS_FILE
from carewire.config import render_default
from carewire.server import PORTS_FILE
from tests.cli.conftest import Run
from tests.serverproc import init_data_dir, server_env, serving


def test_it_reads_the_file_the_server_writes() -> None:
    assert HEALTH_PORTS_FILE == PORTS_FILE  # kept apart: the probe does not import the server


@pytest.mark.slow
def test_a_running_server_is_healthy_and_a_stopped_one_is_not(tmp_path: Path, run: Run) -> None:
    data, env = tmp_path / "data", server_env()
    init_data_dir(data, accounts=0, env=env)
    with serving(data, accounts=0, env=env) as server:
        code, out, err = run("health", "--data-dir", str(data))
        assert code == 0, err
        assert out.startswith("ok: carewire.test answers on https://127.0.0.1:")
        assert f":{server.ports['https']}/healthz" in out
        code, out, _ = run("health", "--quiet", "--data-dir", str(data))
        assert (code, out) == (0, "")
    code, _, err = run("health", "--data-dir", str(data))
    assert code == 1 and "unhealthy: no server is running" in err


def test_a_port_nobody_answers_on_is_unhealthy(tmp_path: Path, run: Run) -> None:
    data = tmp_path / "data"  # the probe reads only the configuration and the ports file
    data.mkdir()
    (data / "carewire.toml").write_text(render_default("h.example"))
    with socket.socket() as s:  # a port bound but never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        (data / "run").mkdir(exist_ok=True)
        (data / PORTS_FILE).write_text(json.dumps({"c2s": port, "https": port, "pid": 1}))
        code, _, err = run("health", "--timeout", "2", "--data-dir", str(data))
    assert code == 1 and f"https://127.0.0.1:{port}/healthz does not answer" in err
    (data / PORTS_FILE).write_text(json.dumps({"c2s": port, "pid": 1}))  # no HTTPS port
    code, _, err = run("health", "--timeout", "2", "--data-dir", str(data))
    assert code == 1 and f"the client port 127.0.0.1:{port} refuses connections" in err
    (data / PORTS_FILE).write_text("{not json")
    code, _, err = run("health", "--data-dir", str(data))
    assert code == 1 and "cannot be read" in err


def test_an_installation_that_does_not_exist_is_unhealthy(tmp_path: Path, run: Run) -> None:
    code, _, err = run("health", "--data-dir", str(tmp_path / "nowhere"))
    assert code == 1 and "unhealthy:" in err and "carewire.toml not found" in err
