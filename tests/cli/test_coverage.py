"""``carewire coverage status|release``: what the command line shows and asks of the server.

The command line runs beside the server: it reads the busy periods and held
messages the server keeps in the database, and its release is a request row
the running server honours at its next tick (tests/features/test_coverage_admin.py
shows the server's side).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from carewire.cli.runtime import Services
from carewire.core.stores import BusyKind, BusyPeriod
from tests.cli.conftest import OnPlatform, Run

UNTIL = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)


def _stanza(n: int) -> str:
    return (
        "<message xmlns='jabber:client' type='chat' from='bob@h.example/phone' "
        f"to='ann@h.example'><body>PHI {n}: bed 4 potassium</body></message>"
    )


def _accounts(data: Path, run: Run) -> None:
    for login in ("ann", "bob"):
        code, _, err = run("user", "add", login, "--password", "S3cret!pw", "--data-dir", str(data))
        assert code == 0, err


def test_status_lists_the_dnd_and_held_messages_without_their_bodies(
    data: Path, run: Run, on_platform: OnPlatform
) -> None:
    _accounts(data, run)

    async def busy(p: Services) -> None:
        dnd = BusyPeriod(login="ann", kind=BusyKind.DND, until=UNTIL, note="procedure")
        await p.stores.busy.put([dnd])
        for n in range(2):
            await p.stores.held.hold(
                "ann", _stanza(n), stamp=UNTIL - timedelta(hours=1), reason="dnd"
            )

    on_platform(data, busy)
    code, out, err = run("coverage", "status", "ann", "--data-dir", str(data))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"ann: busy (dnd) until {UNTIL:%Y-%m-%d %H:%M:%S} UTC"
    assert "  reason given: procedure" in lines
    assert "  held messages: 2" in lines
    held = [line for line in lines if line.endswith("from bob@h.example")]
    assert len(held) == 2 and all(" dnd " in line for line in held)
    assert "PHI" not in out and "potassium" not in out


def test_release_leaves_a_request_for_the_server_and_is_audited(
    data: Path, run: Run, on_platform: OnPlatform
) -> None:
    _accounts(data, run)

    async def hold(p: Services) -> None:
        await p.stores.held.hold("ann", _stanza(1), stamp=UNTIL, reason="urgent-alert")

    on_platform(data, hold)
    code, out, err = run("coverage", "release", "ann", "--data-dir", str(data))
    assert code == 0, err
    assert out.strip() == ("ann: release requested: the running server delivers within 15 seconds")

    async def check(p: Services) -> None:
        [request] = await p.stores.busy.of("ann")
        assert request.kind is BusyKind.RELEASE
        assert len(await p.stores.held.fetch("ann")) == 1  # the server delivers, not the CLI
        entries, _ = await p.audit.store.entries(action="coverage.release")
        [entry] = entries
        assert entry.event.actor.startswith("cli") and entry.event.target == "ann"
        assert entry.event.details["held"] == 1

    on_platform(data, check)


def test_a_free_user_with_nothing_held(data: Path, run: Run, on_platform: OnPlatform) -> None:
    _accounts(data, run)
    code, out, err = run("coverage", "status", "bob", "--data-dir", str(data))
    assert code == 0, err
    assert out.splitlines()[0].startswith("bob: not busy")
    assert "  held messages: 0" in out.splitlines()
    code, out, err = run("coverage", "release", "bob", "--data-dir", str(data))
    assert (code, out.strip()) == (0, "bob: nothing is held"), err

    async def check(p: Services) -> None:
        assert await p.stores.busy.of("bob") == []  # no request for nothing

    on_platform(data, check)


def test_an_unknown_login_is_an_error(data: Path, run: Run) -> None:
    for command in ("status", "release"):
        code, out, err = run("coverage", command, "nobody", "--data-dir", str(data))
        assert code != 0 and out == ""
        assert "no user 'nobody'" in err
