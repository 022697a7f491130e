"""Private files: everything Carewire writes is 0600, every directory 0700.

The process umask (:func:`restrict_umask`, set by ``carewire`` before any
command runs) covers files opened by libraries (SQLite's database, WAL and
shared-memory files, uvicorn, logging); :func:`write_private` gives the
explicit mode for our own files; :func:`tighten` brings a data directory
written by an older version (or copied with looser modes) into line at start.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def restrict_umask() -> int:
    """Set the process umask to 077; returns the previous one."""
    return os.umask(UMASK)


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed), mode 0600."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def tighten(root: Path) -> int:
    """Make ``root`` and every directory under it 0700 and every file 0600.

    Symbolic links are not followed. Returns how many modes were changed.
    """
    changed = 0
    if not root.is_dir():
        return 0
    for path in [root, *root.rglob("*")]:
        try:
            st = path.lstat()
        except FileNotFoundError:  # removed meanwhile (a WAL checkpoint, a temp file)
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        want = DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
        if stat.S_IMODE(st.st_mode) & ~want:
            os.chmod(path, stat.S_IMODE(st.st_mode) & want)
            changed += 1
    if changed:
        log.info("restricted the modes of %d paths under %s", changed, root)
    return changed
