"""``python -m bench.ldap_sync``: directory sync from a real slapd at 15,000 users (issue 15).

In-process: Debian's slapd is started on loopback with ``--users`` generated
people in 20 groups (``tests/ldapserver.py``, loaded offline with slapadd); the
platform is assembled on SQLite in a temporary directory (or
``--database-url``); an organisation gets an LDAP integration (StartTLS,
the test CA, LDAP sign-in on, so no password is hashed for anyone). Then:

1. **First full sync**: every entry becomes a directory user (account without
   SCRAM keys, profile, USERS record, audit entry, link) and every group a
   directory group with its members. Target: under 60 s.
2. **Incremental sync with ``--changes`` changes**: that many people get a new
   surname with ldapmodify, then a run reads only what changed since the last
   stamp. Target: under 3 s.

Figures are wall-clock on a shared machine: other work may slow them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.hashing import CHEAP_HASHER
from tests.ldapserver import BIND_DN, BIND_PW, GROUPS, PEOPLE, start_slapd

from carewire.assembly import Options, assemble
from carewire.directory.model import SYSTEM_CALLER, AdminInvitee, NewHospital
from carewire.identity.ldap.model import LdapSettings, RunState, Trigger


async def _bench(url: str, users: int, changes: int, work: Path) -> int:
    # Loaded "yesterday": the incremental run then reads only what changed after it.
    slapd_gen = start_slapd(work / "slapd", people=users, groups=20, stamp="20260101000000Z")
    started = time.perf_counter()
    slapd = next(slapd_gen)
    print(f"slapd loaded with {users} people in {time.perf_counter() - started:.1f} s")
    platform = await assemble(Options(url=url, secret_hasher=CHEAP_HASHER))
    try:
        ldap = platform.ldap
        assert ldap is not None
        org = await platform.directory.organisations.create_hospital(
            SYSTEM_CALLER,
            NewHospital(
                name="Bench General",
                office_number="(408) 882-5830",
                admin=AdminInvitee(email="admin@bench.org", first_name="A", last_name="Admin"),
            ),
        )
        settings = LdapSettings(
            organisation_id=org.id,
            url=slapd.url,
            bind_dn=BIND_DN,
            base_dn=PEOPLE,
            group_base_dn=GROUPS,
            ca_file=str(slapd.ca_file),
            is_sign_in_enabled=True,
        )
        await ldap.save(SYSTEM_CALLER, settings, BIND_PW)
        t0 = time.perf_counter()
        run = await ldap.sync(SYSTEM_CALLER, org.id, trigger=Trigger.CLI)
        full = time.perf_counter() - t0
        print(f"first full sync: {full:.1f} s ({run.counts}) — target < 60 s")
        if run.state is not RunState.DONE:
            print(f"!! the run ended {run.state.value}: {run.message}")
            return 1
        ldif = "".join(
            f"dn: uid=user{i:05d},{PEOPLE}\nchangetype: modify\nreplace: sn\nsn: Changed{i}\n\n"
            for i in range(0, users, max(1, users // changes))
        )
        slapd.modify(ldif)
        t0 = time.perf_counter()
        inc = await ldap.sync(SYSTEM_CALLER, org.id, trigger=Trigger.CLI)
        incremental = time.perf_counter() - t0
        print(
            f"incremental sync ({inc.kind.value}) with {changes} changes: {incremental:.2f} s "
            f"({inc.counts}) — target < 3 s"
        )
        ok = full < 60 and incremental < 3 and inc.counts.updated == changes
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        await platform.close()
        slapd_gen.close()


def main() -> int:
    """Parse the options and run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=15_000)
    p.add_argument("--changes", type=int, default=100)
    p.add_argument("--database-url", default="")
    args = p.parse_args()
    if not 1 <= args.changes <= args.users <= 100_000:
        p.error("need 1 <= changes <= users <= 100000")
    with tempfile.TemporaryDirectory(prefix="bench-ldap-") as tmp:
        work = Path(tmp)
        (work / "slapd").mkdir()
        url = args.database_url or f"sqlite+aiosqlite:///{work / 'carewire.db'}"
        return asyncio.run(_bench(url, args.users, args.changes, work))


if __name__ == "__main__":
    raise SystemExit(main())
