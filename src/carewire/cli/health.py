"""``carewire health``: is this installation's server up and answering?

For container health checks (the ``Dockerfile``'s ``HEALTHCHECK``), systemd
watchdogs and monitoring scripts. It reads the running server's
``run/ports.json`` and asks its HTTPS ``/healthz`` on the bound address
(loopback when the server listens on every address); with the HTTPS port
turned off (``server.websocket = false``) it checks that the client port
accepts a connection. Exit status 0: healthy; 1: not (one line says why) —
the convention of container health checks, where 2 is reserved.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys

from carewire.cli.runtime import Subparsers, WithDataDir, config
from carewire.errors import CarewireError

#: ``carewire.server.PORTS_FILE``: the ports a running server bound (removed when it stops).
PORTS_FILE = "run/ports.json"
_ANY = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


class Unhealthy(Exception):
    """The server is not running or does not answer as it should."""


def _probe_host(bind: str) -> str:
    return _ANY.get(bind, bind)


def _loopback_context() -> ssl.SSLContext:
    """TLS for a liveness probe of our own server on this host.

    The certificate is not verified: the probe proves that the process answers, sends
    nothing secret, and the certificate's names are the chat domain's, not the address
    probed (``carewire cert show`` checks the certificate itself).
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _https_health(host: str, port: int, timeout: float) -> dict[str, object]:
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_loopback_context())
    try:
        conn.request("GET", "/healthz", headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read(65_536)
    except (OSError, http.client.HTTPException) as exc:
        raise Unhealthy(f"https://{host}:{port}/healthz does not answer: {exc}") from None
    finally:
        conn.close()
    if response.status != 200:
        raise Unhealthy(f"https://{host}:{port}/healthz answered {response.status}")
    try:
        answer = json.loads(body)
    except ValueError:
        raise Unhealthy(f"https://{host}:{port}/healthz answered something not JSON") from None
    if not isinstance(answer, dict) or answer.get("status") != "ok":
        raise Unhealthy(f"https://{host}:{port}/healthz says {answer!r}")
    return answer


def _tcp_health(host: str, port: int, timeout: float) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise Unhealthy(f"the client port {host}:{port} refuses connections: {exc}") from None


def check(args: argparse.Namespace) -> str:
    """What a healthy server says, in one line.

    Raises:
        Unhealthy: The server is not running, or does not answer.
        CarewireError: The installation's configuration is missing or invalid.
    """
    cfg = config(args)
    path = cfg.data_dir / PORTS_FILE
    try:
        ports = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Unhealthy(f"no server is running ({path} does not exist)") from None
    except (OSError, ValueError) as exc:
        raise Unhealthy(f"{path} cannot be read: {exc}") from None
    host = _probe_host(cfg.server.bind)
    if isinstance(ports.get("https"), int):
        answer = _https_health(host, ports["https"], args.timeout)
        return (
            f"ok: {answer.get('domain')} answers on https://{host}:{ports['https']}/healthz "
            f"({answer.get('sessions')} sessions, {answer.get('connections')} connections)"
        )
    if not isinstance(ports.get("c2s"), int):
        raise Unhealthy(f"{path} names no port")
    _tcp_health(host, ports["c2s"], args.timeout)
    return f"ok: the client port {host}:{ports['c2s']} accepts connections"


def cmd_health(args: argparse.Namespace) -> int:
    """Check that the server of this installation runs and answers (exit 0), or say why not."""
    try:
        line = check(args)
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    except CarewireError as exc:
        print(f"unhealthy: {exc.message or exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(line)
    return 0


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``health`` under the top-level parser."""
    health = with_data_dir(
        sub.add_parser(
            "health", help="check that the running server answers", description=cmd_health.__doc__
        )
    )
    health.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)"
    )
    health.add_argument("--quiet", action="store_true", help="print nothing when healthy")
    health.set_defaults(func=cmd_health)
