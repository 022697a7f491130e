"""An alert in an ordinary client: profanity, driven through tmux, shows the alert's text.

Issue 14: a newcomer trying the README with profanity saw only "Chat room
invite received … use /join", not the alert, because the alert message also
carried the room invitation. Here Debian's ``profanity`` runs in a detached
tmux session (its own socket, a temporary HOME, nothing read from or written
to the real one) against a real server with the demo hospital; a nurse call
raised through the REST API alerts nurse.ito (level 1 of Med-Surg 4-401A, a
bed no other test uses), and ``tmux capture-pane`` must show the alert's text.

Without profanity or tmux the test is skipped, unless
``CAREWIRE_TEST_REQUIRE_PROFANITY`` is set (CI sets it): then it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serverproc import RunningServer

pytestmark = [pytest.mark.interop, pytest.mark.slow]

NURSE = "nurse.ito"  # level 1 of Med-Surg 4-401A
REQUIRE = bool(os.environ.get("CAREWIRE_TEST_REQUIRE_PROFANITY"))
MISSING = "profanity and tmux are needed (apt-get install profanity tmux)"


def _tools() -> tuple[str, str]:
    profanity, tmux = shutil.which("profanity"), shutil.which("tmux")
    if profanity is None or tmux is None:
        if REQUIRE:
            pytest.fail(f"CAREWIRE_TEST_REQUIRE_PROFANITY is set but {MISSING}")
        pytest.skip(MISSING)
    return profanity, tmux


class Pane:
    """One profanity in a tmux session of its own (a private socket)."""

    def __init__(self, tmux: str, socket: Path) -> None:
        self.tmux = tmux
        self.socket = socket

    def run(self, *args: str) -> str:
        r = subprocess.run(
            [self.tmux, "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    def type(self, text: str) -> None:
        """Type ``text`` literally, then Enter."""
        self.run("send-keys", "-t", "prof", "-l", text)
        self.run("send-keys", "-t", "prof", "Enter")

    def screen(self) -> str:
        """What the pane shows, with its scrollback, wrapped lines joined."""
        return self.run("capture-pane", "-p", "-J", "-t", "prof", "-S", "-200")

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if text in shown:
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"profanity never showed {text!r}; the pane:\n{shown}")
            time.sleep(0.2)


@pytest.fixture
def pane() -> Iterator[Pane]:
    profanity, tmux = _tools()
    # A short directory: the tmux socket path must fit a sockaddr_un.
    with tempfile.TemporaryDirectory(prefix="cw-prof-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_RUNTIME_DIR": str(home),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "PATH": "/usr/bin:/bin",
        }
        p = Pane(tmux, Path(tmp) / "tmux.sock")
        command = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), profanity]
        p.run("new-session", "-d", "-s", "prof", "-x", "200", "-y", "50", *command)
        try:
            p.wait_for("Type '/help'")
            yield p
        finally:
            subprocess.run(
                [tmux, "-S", str(p.socket), "kill-server"],
                capture_output=True,
                timeout=10,
                check=False,
            )


@pytest.fixture
def server(pane: Pane, demo_server: RunningServer) -> RunningServer:
    """The demo hospital's server (shared with test_alert_loop.py, which uses other staff)."""
    return demo_server


def _raise_call(server: RunningServer) -> int:
    """A nurse call on Med-Surg 4-401A through the REST API (the demo's rule alerts the nurse)."""
    r = server.cli("token", "create", f"profanity-{time.monotonic_ns()}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    with httpx.Client(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    ) as api:
        created = api.post(
            "/datasets/NURSE_CALLS/records",
            json={
                "values": {
                    "call_id": f"profanity-{time.monotonic_ns()}",
                    "status": "Open",
                    "bed": {
                        "bed_number": "A",
                        "room": {"room_number": "401", "facility": {"name": "Carewire General"}},
                    },
                }
            },
        )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_profanity_shows_the_alert_text_and_the_invitation_apart(
    server: RunningServer, pane: Pane
) -> None:
    password = (server.data_dir / "demo-password.txt").read_text().strip()
    # 'tls trust': TLS required, the test server's self-signed certificate accepted.
    pane.type(f"/connect {server.jid(NURSE)} server 127.0.0.1 port {server.ports['c2s']} tls trust")
    pane.wait_for("password")
    pane.type(password)
    pane.wait_for("logged in successfully")

    room = f"nurse_calls-{_raise_call(server)}@chat.{server.domain}"
    console = pane.wait_for(f"<< chat message: {room} (win 2)")
    # The invitation is its own stanza: profanity shows it in the console as an invite.
    console = pane.wait_for(f"Use '/join {room}' to accept the invitation")
    assert "Chat room invite received" in console

    pane.type("/win 2")
    shown = pane.wait_for("is calling from room 401, bed A.")
    assert f"{room}: [Alert, Important] Nurse call 401" in shown
    assert "Responses: Accept, Decline." in shown
