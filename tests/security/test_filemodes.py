"""Private files: the umask, explicit modes, and tightening a data directory from before."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from carewire.security.filemodes import restrict_umask, tighten, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_write_private_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    old = os.umask(0)  # even under the loosest umask
    try:
        write_private(tmp_path / "run" / "ports.json", '{"c2s": 5222}')
    finally:
        os.umask(old)
    assert _mode(tmp_path / "run" / "ports.json") == 0o600
    assert _mode(tmp_path / "run") == 0o700
    assert (tmp_path / "run" / "ports.json").read_text() == '{"c2s": 5222}'
    assert not (tmp_path / "run" / "ports.json.tmp").exists()


def test_umask_makes_library_files_private(tmp_path: Path) -> None:
    old = restrict_umask()
    try:
        (tmp_path / "made-by-a-library.db").write_bytes(b"x")
        (tmp_path / "sub").mkdir()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "made-by-a-library.db") == 0o600
    assert _mode(tmp_path / "sub") == 0o700


def test_tighten_fixes_loose_modes_and_leaves_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "certs").mkdir(parents=True)
    for name, mode in (("carewire.db", 0o644), ("carewire.db-wal", 0o666), ("certs/x.key", 0o640)):
        (data / name).write_bytes(b"x")
        os.chmod(data / name, mode)
    os.chmod(data / "certs", 0o755)
    os.chmod(data, 0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    os.chmod(outside, 0o644)
    (data / "link").symlink_to(outside)
    assert tighten(data) == 5
    assert {p.name: _mode(p) for p in data.rglob("*") if not p.is_symlink()} == {
        "carewire.db": 0o600,
        "carewire.db-wal": 0o600,
        "certs": 0o700,
        "x.key": 0o600,
    }
    assert _mode(data) == 0o700
    assert _mode(outside) == 0o644  # a link's target is not ours to change
    assert tighten(data) == 0
    assert tighten(tmp_path / "missing") == 0
