"""``python -m bench.scim``: SCIM user creation over loopback HTTP (issue 15; target p95 < 50 ms).

The platform is assembled on a fresh SQLite database in a temporary directory
(``--database-url`` for another), with the default costs: SCRAM keys of the
default iterations for the password the provider sends (``--password``), or
for the random secret of a user without one, and no PIN (provisioned users set
theirs when they register). The SCIM app (``/scim/v2``, as the HTTPS app
mounts it) is served by uvicorn on 127.0.0.1 (plain HTTP: TLS is the
listener's cost, not provisioning's); one httpx client creates ``--users``
users one request at a time (``POST /Users`` with names, e-mail, phone,
enterprise extension and ``externalId``), after ``--warmup`` unmeasured ones.
Each request's latency (request to complete response) is reported as
p50/p95/p99/max with the throughput; a filtered lookup (``userName eq``, what
a provider sends before each create) and a PATCH ``active=false`` are measured
the same way on a sample. The exit status is 1 when the create p95 misses the
target. The token invites nobody: no mail is part of the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from bench.stats import summary_ms
from carewire.assembly import Options, assemble
from carewire.assembly_scim import scim_provisioning
from carewire.directory.model import SYSTEM_CALLER, AdminInvitee, NewHospital
from carewire.identity.scim.service import SCIM_PATH
from carewire.mail import MemoryMailer
from carewire.web.scim import create_scim_app

TARGET_P95_MS = 50.0


def _user(n: int, *, password: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "userName": f"staff{n}@bench-hospital.example",
        "externalId": f"00u{n:08d}",
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
        "emails": [{"value": f"staff{n}@bench-hospital.example", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": "(555) 010-0000", "type": "work"}],
        "title": "Registered Nurse",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "ICU"},
    }
    if password:
        body["password"] = f"bench-password-{n:08d}"
    return body


async def _timed(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> tuple[float, int]:
    start = time.perf_counter()
    r = await client.request(method, url, **kw)
    elapsed = time.perf_counter() - start
    if r.status_code >= 300:
        raise SystemExit(f"{method} {url}: {r.status_code} {r.text[:300]}")
    return elapsed, r.status_code


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-scim-"))
    url = args.database_url or f"sqlite+aiosqlite:///{work / 'carewire.db'}"
    platform = await assemble(Options(url=url, mailer=MemoryMailer()))
    server: uvicorn.Server | None = None
    try:
        org = await platform.directory.organisations.create_hospital(
            SYSTEM_CALLER,
            NewHospital(
                name="Bench Hospital",
                office_number="(555) 010-0000",
                admin=AdminInvitee(email="chief@bench.example", first_name="B", last_name="H"),
            ),
        )
        scim = scim_provisioning(platform)
        _, token = await scim.tokens.create(SYSTEM_CALLER, org.id, "bench", invite_users=False)
        app = Starlette(routes=[Mount(SCIM_PATH, create_scim_app(scim))])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        base = f"http://127.0.0.1:{port}{SCIM_PATH}"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            for n in range(args.warmup):
                await _timed(client, "POST", "/Users", json=_user(10_000_000 + n, password=False))
            creates: list[float] = []
            started = time.perf_counter()
            for n in range(args.users):
                elapsed, _ = await _timed(
                    client, "POST", "/Users", json=_user(n, password=args.password)
                )
                creates.append(elapsed)
            wall = time.perf_counter() - started
            lookups, patches = [], []
            sample = range(0, args.users, max(1, args.users // args.sample))
            for n in sample:
                flt = f'userName eq "STAFF{n}@bench-hospital.example"'
                lookups.append((await _timed(client, "GET", "/Users", params={"filter": flt}))[0])
            for n in sample:
                op = {"op": "replace", "path": "active", "value": False}
                body = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [op],
                }
                patches.append((await _timed(client, "PATCH", f"/Users/staff{n}", json=body))[0])
        server.should_exit = True
        await serving
        return {
            "users": args.users,
            "password": args.password,
            "create": summary_ms(creates),
            "creates_per_second": round(args.users / wall, 1),
            "lookup_user_name_eq": summary_ms(lookups),
            "patch_active_false": summary_ms(patches),
            "target_create_p95_ms": TARGET_P95_MS,
        }
    finally:
        if server is not None:
            server.should_exit = True
        await platform.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scim", description=__doc__)
    parser.add_argument("--users", type=int, default=1000, help="users created (measured)")
    parser.add_argument("--warmup", type=int, default=50, help="users created first, unmeasured")
    parser.add_argument("--sample", type=int, default=100, help="lookups and PATCHes measured")
    parser.add_argument("--password", action="store_true", help="each user comes with a password")
    parser.add_argument("--database-url", help="another database (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 20_000:
        parser.error("--users is 1 to 20,000")
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    p95 = result["create"]["p95"]
    ok = p95 is not None and p95 < TARGET_P95_MS
    verdict = "within" if ok else "MISSES"
    print(f"SCIM create p95 {p95} ms: {verdict} the {TARGET_P95_MS:.0f} ms target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
