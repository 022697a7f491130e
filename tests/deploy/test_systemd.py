"""``deploy/systemd/``: the unit, checked by ``systemd-analyze``, and the sysusers/tmpfiles files.

``systemd-analyze verify`` refuses a unit whose ``ExecStart`` binary does not
exist, and this machine has no ``/opt/carewire``: the test verifies a copy of
the unit whose ``ExecStart`` names a stand-in script in a temporary directory
(the only line changed). ``systemd-sysusers`` and ``systemd-tmpfiles`` run with
``--root`` on a temporary directory, so they create the user and directories
there, not on this machine.
"""

from __future__ import annotations

import configparser
import re
import stat
import subprocess
from pathlib import Path

import pytest

from carewire.config import load
from carewire.config_location import CONFIG_ENV, locate
from carewire.config_sections import ServerSection
from tests.deploy.tools import ROOT, systemd_tool

UNIT = ROOT / "deploy" / "systemd" / "carewire.service"
SYSUSERS = ROOT / "deploy" / "systemd" / "carewire.sysusers.conf"
TMPFILES = ROOT / "deploy" / "systemd" / "carewire.tmpfiles.conf"
EXEC = "/opt/carewire/bin/carewire"
DATA_DIR = Path("/var/lib/carewire")


def _tool(name: str) -> Path:
    found = systemd_tool(name)
    if found is None:
        pytest.skip(f"{name} is not installed (the run's summary says so)")
    return found


def _service() -> dict[str, list[str]]:
    """The [Service] section's settings, each key's values in order (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointed at an executable stand-in (verify needs one)."""
    stand_in = tmp_path / "carewire"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(f"ExecStart={EXEC} ") == 1
    copy = tmp_path / "carewire.service"
    copy.write_text(text.replace(f"ExecStart={EXEC} ", f"ExecStart={stand_in} "))
    return copy


def test_systemd_analyze_verify_finds_nothing(unit_copy: Path) -> None:
    done = subprocess.run(
        [str(_tool("systemd-analyze")), "verify", "--man=no", str(unit_copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # An unknown or misspelt key is only a warning on stderr: any output fails the test.
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_sandbox_scores_ok_in_systemd_analyze_security(unit_copy: Path) -> None:
    done = subprocess.run(
        [str(_tool("systemd-analyze")), "security", "--offline=true", "--no-pager", str(unit_copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for carewire\.service: ([\d.]+) (\w+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout  # systemd calls ≤ 2.0 "OK"


def test_the_unit_runs_as_carewire_in_a_sandbox() -> None:
    s = _service()
    expect = {
        "User": ["carewire"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "CapabilityBoundingSet": ["CAP_NET_BIND_SERVICE"],
        "AmbientCapabilities": ["CAP_NET_BIND_SERVICE"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "UMask": ["0077"],
    }
    for key, values in expect.items():
        assert s.get(key) == values, key
    assert "@system-service" in s["SystemCallFilter"]
    assert int(s["LimitNOFILE"][0]) >= 65536


def test_the_unit_writes_only_the_data_key_and_audit_directories() -> None:
    s = _service()
    assert s["Environment"] == [f"{CONFIG_ENV}=/etc/carewire/carewire.toml"]
    assert s["ExecStart"] == [f"{EXEC} serve"]
    cfg = load(DATA_DIR, env={})  # the code's defaults beside the data directory
    wanted = {DATA_DIR, cfg.kek_file.parent, cfg.audit_key_file.parent, cfg.audit_checkpoint_dir}
    assert {Path(p) for p in s["ReadWritePaths"][0].split()} == wanted
    assert {Path("/var/lib") / d for d in s["StateDirectory"][0].split()} == wanted


def test_the_unit_is_read_as_ini_with_its_install_target() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in parser["Unit"]["After"]


def test_sysusers_and_tmpfiles_make_the_user_and_private_directories(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for tool, conf, extra in (
        ("systemd-sysusers", SYSUSERS, []),
        ("systemd-tmpfiles", TMPFILES, ["--create"]),
    ):
        done = subprocess.run(
            [str(_tool(tool)), f"--root={root}", *extra, str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    user = next(
        line.split(":")
        for line in (root / "etc" / "passwd").read_text().splitlines()
        if line.startswith("carewire:")
    )
    uid, home, shell = int(user[2]), user[5], user[6]
    assert (home, shell) == (str(DATA_DIR), "/usr/sbin/nologin") and uid < 1000
    for name in ("carewire", "carewire-keys", "carewire-audit"):
        st = (root / "var" / "lib" / name).stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o700), name
    etc = (root / "etc" / "carewire").stat()
    assert (etc.st_uid, stat.S_IMODE(etc.st_mode)) == (0, 0o750)


def test_the_server_listens_on_ports_that_need_no_capability() -> None:
    """The capability is kept for an operator who moves HTTPS to 443; the defaults need none."""
    s = ServerSection()
    assert min(s.c2s_port, s.c2s_tls_port, s.s2s_port, s.https_port) >= 1024


def test_the_example_etc_configuration_is_valid_and_names_var_lib(tmp_path: Path) -> None:
    example = ROOT / "deploy" / "etc" / "carewire.toml"
    at = locate(config=str(example), data_dir=None, env={})
    assert (at.data_dir, at.is_external) == (DATA_DIR, True)
    cfg = load(at.data_dir, config_file=example, env={})
    assert cfg.server.bind == "0.0.0.0" and cfg.storage.url.startswith("postgresql://")
    assert cfg.cert_file == DATA_DIR / "certs" / "xmpp.pem"
