"""The ``[metrics]`` and ``[log] format`` settings: defaults, environment, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from carewire.config import load
from carewire.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, env={})
    assert cfg.metrics.enabled and cfg.metrics.listen == "" and cfg.metrics.token == ""
    assert cfg.metrics.alert_latency_objective_ms == 1000
    assert cfg.log.format == "text"


def test_loopback_listen_and_token_from_the_environment(tmp_path: Path) -> None:
    env = {
        "CAREWIRE_METRICS_LISTEN": "[::1]:9464",
        "CAREWIRE_METRICS_TOKEN": "t" * 32,
        "CAREWIRE_LOG_FORMAT": "json",
    }
    cfg = load(tmp_path, env=env)
    assert cfg.metrics.listen == "[::1]:9464" and cfg.metrics.token == "t" * 32
    assert cfg.log.format == "json"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CAREWIRE_METRICS_LISTEN": "0.0.0.0:9464"}, "not a loopback address"),
        ({"CAREWIRE_METRICS_LISTEN": "10.1.2.3:9464"}, "metrics.allow_remote"),
        ({"CAREWIRE_METRICS_LISTEN": "localhost:9464"}, "not a name"),
        ({"CAREWIRE_METRICS_LISTEN": "127.0.0.1"}, "expected host:port"),
        ({"CAREWIRE_METRICS_LISTEN": "127.0.0.1:99999"}, "expected host:port"),
        ({"CAREWIRE_METRICS_TOKEN": "short"}, "at least 16"),
        ({"CAREWIRE_METRICS_ALERT_LATENCY_OBJECTIVE_MS": "0"}, "between 1 and"),
        ({"CAREWIRE_LOG_FORMAT": "xml"}, "log.format"),
    ],
)
def test_bad_values_are_refused_naming_the_key(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        load(tmp_path, env=env)


def test_a_public_address_is_allowed_only_when_said_so(tmp_path: Path) -> None:
    env = {"CAREWIRE_METRICS_LISTEN": "0.0.0.0:9464", "CAREWIRE_METRICS_ALLOW_REMOTE": "true"}
    assert load(tmp_path, env=env).metrics.allow_remote


def test_a_taken_metrics_port_is_one_clear_error() -> None:
    import socket

    from carewire.monitoring.service import bind_listen

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=r"metrics.listen: cannot listen on 127.0.0.1:\d+"):
            bind_listen("127.0.0.1", port)
    free = bind_listen("127.0.0.1", 0)
    free.close()
