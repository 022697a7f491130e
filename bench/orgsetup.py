"""Directory users for :mod:`bench.run`: an organisation, groups and users, through the REST API.

The runner's preparation step starts a throw-away server on the data
directory and calls :func:`prepare` with an admin (system administrator) API
token; what exists is remembered in ``DATA_DIR/bench-directory.json`` so the
next run only adds what is missing. One organisation, ``Bench Hospital``, holds

- ``dir00001 …`` (``login-directory``, ``login --directory-users``): directory
  users in teams of :data:`TEAM_SIZE` (``Bench Team 001``, …), so each one's
  roster carries the other members of its team as directory contacts;
- ``grp00001 …`` (``group``): users of one group, ``Bench Group <N>`` with the
  first N of them, whose address ``<slug>@groups.DOMAIN`` the scenario writes to.

Every user has the benchmark password (so :mod:`bench.client` logs them in),
PIN :data:`PIN`, and no invitation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.clinical.common import Api, SetupError, _problem
from bench.directory import person_name

MARKER = "bench-directory.json"
ORG_NAME = "Bench Hospital"
EMAIL_DOMAIN = "bench-hospital.example"
TEAM_SIZE = 20
PIN = "2580"
IN_FLIGHT = 8  # user creations in flight (the server hashes each PIN with argon2id)
MEMBERS_PER_REQUEST = 1000


def directory_names(n: int) -> list[str]:
    """Logins of the login storm's directory users: dir00001 … dirNNNNN."""
    return [f"dir{i:05d}" for i in range(1, n + 1)]


def group_member_names(n: int) -> list[str]:
    """Logins of the group scenario's users: grp00001 … grpNNNNN."""
    return [f"grp{i:05d}" for i in range(1, n + 1)]


def teams_of(logins: Sequence[str], size: int = TEAM_SIZE) -> dict[str, list[str]]:
    """The logins cut into teams of ``size`` in order: {"Bench Team 001": [...], …}."""
    return {
        f"Bench Team {k // size + 1:03d}": list(logins[k : k + size])
        for k in range(0, len(logins), size)
    }


def group_name(members: int) -> str:
    """The name of the group scenario's group of ``members`` users."""
    return f"Bench Group {members}"


def read_state(data_dir: Path) -> dict[str, Any]:
    """What the marker file says exists (empty when there is none)."""
    try:
        state = json.loads((data_dir / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def is_ready(state: dict[str, Any], *, directory: int, members: int, password: str) -> bool:
    """Whether ``state`` already has ``directory`` team users and a group of ``members``."""
    if state.get("password") != password or not state.get("organisation"):
        return False
    if state.get("directory_users", 0) < directory:
        return False
    return members == 0 or str(members) in state.get("groups", {})


def group_jid(state: dict[str, Any], members: int, domain: str) -> str | None:
    """The address of the group of ``members`` users (``None`` when not prepared)."""
    group = state.get("groups", {}).get(str(members))
    return f"{group['slug']}@groups.{domain}" if group else None


async def _organisation(api: Api) -> int:
    r = await api.get("/organisations")
    if r.status_code != 200:
        raise SetupError(_problem(r))
    for org in r.json()["organisations"]:
        if org["name"] == ORG_NAME:
            return int(org["id"])
    r = await api.post(
        "/organisations",
        {
            "name": ORG_NAME,
            "office_number": "(555) 010-0000",
            "admin": {"email": f"admin@{EMAIL_DOMAIN}", "first_name": "Ada", "last_name": "Min"},
        },
    )
    if r.status_code != 201:
        raise SetupError(_problem(r))
    return int(r.json()["id"])


async def _groups(api: Api, org: int) -> dict[str, dict[str, Any]]:
    r = await api.get("/groups", organisation=org)
    if r.status_code != 200:
        raise SetupError(_problem(r))
    return {g["name"]: g for g in r.json()["groups"]}


async def _group(api: Api, org: int, name: str, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if name in known:
        return known[name]
    r = await api.post("/groups", {"organisation": org, "name": name})
    if r.status_code != 201:
        raise SetupError(_problem(r))
    known[name] = r.json()
    return known[name]


async def _add_members(api: Api, group_id: int, logins: Sequence[str]) -> None:
    for k in range(0, len(logins), MEMBERS_PER_REQUEST):
        part = list(logins[k : k + MEMBERS_PER_REQUEST])
        r = await api.post(f"/groups/{group_id}/members", {"logins": part})
        if r.status_code != 200:
            raise SetupError(_problem(r))


async def _create_users(
    api: Api, org: int, logins: Sequence[str], password: str, say: Callable[[str], None]
) -> None:
    """POST /users for each login (409: it exists already), :data:`IN_FLIGHT` at a time."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    done = 0
    start = last = time.perf_counter()

    async def create(login: str) -> None:
        nonlocal done, last
        number = int("".join(c for c in login if c.isdigit()) or 0)
        first, last_name = person_name(number)
        body = {
            "organisation": org,
            "login": login,
            "first_name": first,
            "last_name": last_name,
            "email": f"{login}@{EMAIL_DOMAIN}",
            "pin": PIN,
            "password": password,
            "send_invitation": False,
        }
        async with gate:
            r = await api.post("/users", body)
        if r.status_code not in (201, 409):
            raise SetupError(_problem(r))
        done += 1
        if time.perf_counter() - last >= 10:
            last = time.perf_counter()
            say(f"directory users: {done}/{len(logins)} ({done / (last - start):.0f}/s)")

    await asyncio.gather(*(create(login) for login in logins))


async def prepare(
    api: Api,
    state: dict[str, Any],
    *,
    directory: int,
    members: int,
    password: str,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Create what ``state`` lacks: the organisation, team users and teams, the group."""
    if state.get("password") != password:
        state = {}
    org = state.get("organisation") or await _organisation(api)
    state.update(organisation=org, password=password)
    groups = await _groups(api, org)
    have = state.get("directory_users", 0)
    if directory > have:
        logins = directory_names(directory)
        say(f"creating directory users {logins[have]} … {logins[-1]} through POST /users")
        await _create_users(api, org, logins[have:], password, say)
        teams = teams_of(logins)
        say(f"putting them in {len(teams)} teams of {TEAM_SIZE}")
        for name, team in teams.items():
            group = await _group(api, org, name, groups)
            await _add_members(api, int(group["id"]), team)
        state["directory_users"] = directory
    if members and str(members) not in state.get("groups", {}):
        logins = group_member_names(members)
        made = state.get("group_users", 0)
        if members > made:
            say(f"creating group users {logins[made]} … {logins[-1]} through POST /users")
            await _create_users(api, org, logins[made:], password, say)
            state["group_users"] = members
        group = await _group(api, org, group_name(members), groups)
        await _add_members(api, int(group["id"]), logins)
        state.setdefault("groups", {})[str(members)] = {
            "id": int(group["id"]),
            "slug": group["slug"],
            "members": members,
        }
    return state
