"""``python -m bench.directory``: the organisation directory at 15,000 users (issue 11).

In-process, like :mod:`bench.rules`: the platform is assembled on a database
(SQLite in a temporary directory by default, or ``--database-url``), and

1. **Invitation import**: a generated CSV of ``--users`` rows (``Email,First
   Name,Last Name,Department``, ``--departments`` departments) goes through
   ``DirectoryService.invitations.invite`` twice, each time into a new
   organisation:

   - ``cli``: with ``carewire user invite --csv``'s own functions (the path
     with the progress bars): the file is parsed once, cut into requests of
     1,000 rows (``carewire.cli.users.invite_batches``) that are committed one
     after the other (``inviting``: the users/s figure), then the command
     waits for their mail (``mailing``: reported as "all mailed after");
   - ``request``: as the console's Invite Users upload and ``POST
     /invitations`` do it: one request with the whole file, which returns once
     the rows are committed (Pending) and mails them in the background; the
     time until the last mail was sent (``DirectoryService.drain``) is
     reported too.

   Mail goes to ``--mailer``: ``outbox`` (the default of an installation
   without SMTP: one ``.eml`` file written and fsynced per message, under the
   work directory) or ``memory``.
2. **Find Users and Invitations pages**: an organisation of ``--users``
   directory users is created through ``DirectoryService.users.create`` (or
   found, when the database already has it: ``--work-dir`` keeps it between
   runs). Set-up only, its PINs are hashed with a cheap argon2id hasher (the
   service's default costs ~50 ms a PIN); the SCRAM keys use 4,096 iterations,
   the default and the least SCRAM allows. Then the real console app
   (``create_console`` on the assembly's services, default costs) is driven
   over ``httpx.ASGITransport`` by a signed-in system administrator, one
   request at a time, cycling through a mix of request kinds; each kind's
   latency (request to complete response) is reported as p50/p95/p99/max, and
   every kind's p95 must be under 150 ms. The Invitations page is measured on
   the organisation of the ``request`` import.

Also reported: how long the directory's in-memory index takes to load
(server start) and to reload (``DirectoryService.reload``, which the server
runs every ``xmpp.account_check_interval``) at this size.

Results go to ``bench/results/directory-<timestamp>.json``; the exit status
is 1 when a target failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import re
import resource
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.stats import CpuMeter, percentile

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

if TYPE_CHECKING:
    from carewire.assembly import Assembly
    from carewire.directory.model import Organisation

DEFAULT_USERS = 15_000
DEFAULT_DEPARTMENTS = 60
DEFAULT_REQUESTS = 100  # measured requests per request kind
WARMUP_REQUESTS = 3  # unmeasured requests per kind first
MAX_USERS = 20_000  # an invitation CSV holds at most 20,000 rows
MAX_REQUESTS = 2_000
TARGET_IMPORT_USERS_PER_S = 1_000.0
TARGET_PAGE_P95_MS = 150.0
DOMAIN = "bench.carewire.localhost"
BENCH_ORG = "Bench Directory"
EMAIL_DOMAIN = "staff.bench.example"
PASSWORD = "bench-Passw0rd-1"
PIN = "2580"
CONSOLE_PASSWORD = "bench-console-Passw0rd"
BASE_URL = "https://console.bench.test"

FIRST_NAMES = (
    "Ada", "Ben", "Cora", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Kira", "Liam", "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Aaron", "Bianca", "Chen", "Dara",
)  # fmt: skip
SYLLABLES = (
    "an", "bel", "cor", "dra", "el", "fin", "gar", "hol", "is", "jen", "kal", "lor", "mar",
    "nor", "ol", "par", "quin", "ros", "sal", "tor", "ul", "ven", "wil", "yor", "zan",
)  # fmt: skip
SUFFIXES = ("", "son", "er", "ley", "ton")
SPECIALTIES = (
    "Cardiology", "Oncology", "Radiology", "Pediatrics", "Neurology", "Nephrology",
    "Pharmacy", "Surgery", "Anesthesia", "Emergency", "Intensive Care", "Maternity",
)  # fmt: skip


# -- generated data (pure) ------------------------------------------------------------------


def person_name(i: int) -> tuple[str, str]:
    """A deterministic (first, last) name for person ``i`` (3,125 distinct last names)."""
    n = len(SYLLABLES)
    a, b = SYLLABLES[i % n], SYLLABLES[(i // n) % n]
    suffix = SUFFIXES[(i // (n * n)) % len(SUFFIXES)]
    return FIRST_NAMES[(i * 7) % len(FIRST_NAMES)], (a + b + suffix).capitalize()


def department_names(count: int) -> list[str]:
    """``count`` distinct department names ("Cardiology 1", "Oncology 1", …)."""
    return [
        f"{SPECIALTIES[i % len(SPECIALTIES)]} {i // len(SPECIALTIES) + 1}" for i in range(count)
    ]


def invitation_csv(rows: int, departments: int, email_domain: str) -> str:
    """An invitation CSV: header, then ``rows`` people spread over ``departments``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("Email", "First Name", "Last Name", "Department"))
    names = department_names(departments)
    for i in range(rows):
        first, last = person_name(i)
        writer.writerow((f"i{i + 1:05d}@{email_domain}", first, last, names[i % len(names)]))
    return out.getvalue()


def user_requests(org: int, count: int) -> list[tuple[str, str]]:
    """The Find Users mix: ``count`` requests of each kind, kinds interleaved, as (kind, path).

    ``last_name`` filters are substrings (the page has no prefix search); the
    text is a last name's first syllable, a different one each time.
    """
    base = f"/orgs/{org}/users"
    out: list[tuple[str, str]] = []
    for i in range(count):
        out += [
            ("first page", base),
            ("last name filter", f"{base}?last_name={SYLLABLES[i % len(SYLLABLES)]}"),
            ("user type desc", f"{base}?sort=-type"),
            ("page 50 of 10", f"{base}?page=50"),
            ("100 per page", f"{base}?limit=100&page={1 + i % 5}"),
        ]
    return out


def invitation_requests(org: int, count: int, rows: int) -> list[tuple[str, str]]:
    """The Invitations page mix (50 a page, newest first), as (kind, path).

    The e-mail filter is the address's first five characters (``i0123``: ten
    invitations of :func:`invitation_csv`'s ``rows``), a different one each time.
    """
    base = f"/orgs/{org}/invitations"
    out: list[tuple[str, str]] = []
    tens = max(1, rows // 10)
    for i in range(count):
        out += [
            ("first page", base),
            ("last name filter", f"{base}?last_name={SYLLABLES[i % len(SYLLABLES)]}"),
            ("email filter", f"{base}?email=i{(i * 37) % tens:04d}"),
            ("status filter", f"{base}?status=Email+Sent&page={1 + i % 3}"),
            ("page 50", f"{base}?page=50"),
        ]
    return out


def latency_ms(values_s: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50/p95/p99 (nearest rank) and max of durations in seconds, in ms."""
    ordered = sorted(values_s)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)

    return {
        "count": len(ordered),
        "p50": ms(percentile(ordered, 50)),
        "p95": ms(percentile(ordered, 95)),
        "p99": ms(percentile(ordered, 99)),
        "max": ms(ordered[-1] if ordered else None),
    }


def page_report(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Per request kind and overall latency; the worst kind's p95."""
    kinds = {kind: latency_ms(values) for kind, values in samples.items()}
    overall = latency_ms([v for values in samples.values() for v in values])
    p95s = [k["p95"] for k in kinds.values() if k["p95"] is not None]
    return {"kinds": kinds, "overall": overall, "worst_p95_ms": max(p95s) if p95s else None}


# -- the platform ------------------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    """The assembly under test and what the run made."""

    args: argparse.Namespace
    work: Path
    url: str
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None

    def say(self, text: str) -> None:
        """A progress line (kept in the results)."""
        print(f"  · {text}", flush=True)
        self.notes.append(text)


def _mailer(bench: Bench) -> Any:
    from carewire.mail import MemoryMailer, OutboxMailer

    if bench.args.mailer == "memory":
        return MemoryMailer()
    return OutboxMailer(bench.work / f"outbox-{bench.tag}", sender=f"carewire@{DOMAIN}")


async def _new_org(p: Assembly, name: str) -> Organisation:
    from carewire.directory.model import SYSTEM_CALLER, AdminInvitee, NewHospital

    slug = re.sub(r"[^a-z0-9]", "", name.lower())
    return await p.directory.organisations.create_hospital(
        SYSTEM_CALLER,
        NewHospital(
            name=name,
            office_number="(555) 010-0000",
            admin=AdminInvitee(email=f"admin@{slug}.example", first_name="Ada", last_name="Min"),
        ),
    )


def _noise() -> CpuMeter:
    return CpuMeter(None).start()


PHASES = ("import-cli", "import-request", "find-users", "invitations")


@contextlib.asynccontextmanager
async def profiled(bench: Bench, phase: str) -> AsyncIterator[None]:
    """py-spy on this very process while ``phase`` runs, when ``--profile`` names it."""
    if bench.args.profile != phase:
        yield
        return
    from bench.pyspy import Profiler, format_summary, summarize

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = bench.args.results_dir / f"profile-directory-{phase}-{stamp}.txt"
    prof = Profiler(os.getpid(), out, duration=600, mode=bench.args.profile_mode)
    await prof.start()
    await asyncio.sleep(1.0)  # py-spy attaches
    bench.say(f"py-spy ({bench.args.profile_mode} mode) recording this process during {phase}")
    try:
        yield
    finally:
        if prof.proc is not None and prof.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                prof.proc.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        await prof.wait()
        if prof.error or not out.exists():
            bench.profile = {"error": prof.error or "no output"}
        else:
            bench.profile = summarize(out)
            print(format_summary(bench.profile), flush=True)


# -- 1. invitation import ----------------------------------------------------------------------


async def import_cli(bench: Bench, p: Assembly) -> dict[str, Any]:
    """``carewire user invite --csv``'s own functions: requests of 1,000 rows, then the mail."""
    from carewire.cli.invitations import failed_invitations, submit_invitations, wait_for_mail
    from carewire.cli.users import INVITE_BATCH, invite_batches
    from carewire.directory.csvfiles import parse_csv
    from carewire.directory.model import SYSTEM_CALLER

    args = bench.args
    org = await _new_org(p, f"Bench Import {bench.tag} cli")
    text = invitation_csv(args.users, args.departments, f"cli-{bench.tag}.example")
    meter = _noise()
    start = time.perf_counter()
    rows, problems = parse_csv(text)
    batches, duplicates = invite_batches(rows)
    results, queued = await submit_invitations(p.directory, SYSTEM_CALLER, org.id, batches)
    committed = time.perf_counter() - start
    await wait_for_mail(p.directory, queued, quiet=False)
    elapsed = time.perf_counter() - start
    failed = await failed_invitations(p.directory, SYSTEM_CALLER, org.id, results)
    cpu = meter.stop()
    invited = sum(len(r.invited) for r in results)
    groups = sum(len(r.groups_created) for r in results)
    return {
        "path": f"carewire user invite --csv: requests of {INVITE_BATCH} rows, then the mail",
        "organisation": org.id,
        "rows": len(rows),
        "csv_problems": len(problems) + len(duplicates),
        "invited": invited,
        "mail_failures": len(failed),
        "groups_created": groups,
        "committed_s": round(committed, 2),
        "seconds": round(elapsed, 2),
        "users_per_s": round(invited / committed, 1),
        "mailed_per_s": round(invited / elapsed, 1),
        "cpu": cpu,
    }


async def import_request(bench: Bench, p: Assembly) -> dict[str, Any]:
    """The console's and the API's way: one request, committed, then mailed in the background."""
    from carewire.directory.model import (
        SYSTEM_CALLER,
        InvitationFilter,
        InvitationStatus,
        InviteRequest,
        PageRequest,
    )

    args = bench.args
    org = await _new_org(p, f"Bench Import {bench.tag} request")
    text = invitation_csv(args.users, args.departments, f"req-{bench.tag}.example")
    meter = _noise()
    start = time.perf_counter()
    result = await p.directory.invitations.invite(
        SYSTEM_CALLER, org.id, InviteRequest(csv_text=text)
    )
    committed = time.perf_counter() - start
    await p.directory.drain()
    mailed = time.perf_counter() - start
    cpu = meter.stop()
    sent = await p.directory.invitations.find(
        SYSTEM_CALLER,
        org.id,
        InvitationFilter(status=InvitationStatus.EMAIL_SENT),
        PageRequest(offset=0, limit=1),
    )
    n = len(result.invited)
    return {
        "path": "one request with the whole file (console upload, POST /invitations)",
        "organisation": org.id,
        "invited": n,
        "csv_problems": len(result.problems),
        "groups_created": len(result.groups_created),
        "committed_s": round(committed, 2),
        "users_per_s": round(n / committed, 1),
        "all_mailed_s": round(mailed, 2),
        "mailed_users_per_s": round(n / mailed, 1),
        "email_sent_after_drain": sent.total,
        "cpu": cpu,
    }


# -- 2. users and the console pages --------------------------------------------------------------


async def ensure_users(bench: Bench, p: Assembly) -> dict[str, Any]:
    """The organisation of ``--users`` directory users (created unless the database has them)."""
    from argon2 import PasswordHasher

    from carewire.directory.model import (
        SYSTEM_CALLER,
        DirectoryConfig,
        EmailTakenError,
        LoginTakenError,
        NewUser,
        Profile,
        StaffType,
    )
    from carewire.directory.service import DirectoryService
    from carewire.mail import MemoryMailer
    from carewire.storage.directory import build_directory_store

    want = bench.args.users
    orgs = await p.directory.organisations.list_visible(SYSTEM_CALLER)
    org = next((o for o in orgs if o.name == BENCH_ORG), None) or await _new_org(p, BENCH_ORG)
    have = (await p.directory.users.find(SYSTEM_CALLER, org.id)).total
    out: dict[str, Any] = {"organisation": org.id, "existing": have, "created": 0}
    if have >= want:
        bench.say(f"organisation {org.id} already has {have} users: set-up skipped")
        return out
    # Set-up only: a second service on the same stores with a cheap PIN hasher.
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    setup = DirectoryService(
        store=build_directory_store(p.db),
        accounts=p.accounts,
        datasets=p.datasets,
        console=p.console,
        audit=p.audit,
        mailer=MemoryMailer(),
        clock=p.clock,
        config=DirectoryConfig(domain=DOMAIN, link_base=BASE_URL),
        pin_hasher=cheap,
    )
    bench.say(
        f"set-up: creating {want - have} users through DirectoryService.users.create "
        "(set-up only: PINs hashed with argon2id t=1 m=1 MiB p=1; SCRAM 4,096 iterations)"
    )
    start = last = time.perf_counter()
    created = 0
    for i in range(have + 1, want + 1):
        first, last_name = person_name(i)
        profile = Profile(
            first_name=first,
            last_name=last_name,
            email=f"u{i:05d}@{EMAIL_DOMAIN}",
            staff_type=StaffType.NON_PHYSICIAN if i % 4 == 0 else StaffType.PHYSICIAN,
        )
        new = NewUser(
            profile=profile, login=f"u{i:05d}", pin=PIN, password=PASSWORD, send_invitation=False
        )
        with contextlib.suppress(LoginTakenError, EmailTakenError):
            await setup.users.create(SYSTEM_CALLER, org.id, new)
            created += 1
        if time.perf_counter() - last >= 15:
            last = time.perf_counter()
            rate = created / (last - start)
            bench.say(f"set-up: {have + created}/{want} users ({rate:.0f}/s)")
    await setup.close()
    elapsed = time.perf_counter() - start
    bench.say(f"set-up: {created} users in {elapsed:.0f} s ({created / elapsed:.0f}/s)")
    out.update(created=created, setup_s=round(elapsed, 1), setup_users_per_s=created / elapsed)
    return out


async def index_timings(p: Assembly) -> dict[str, Any]:
    """How long the directory's in-memory index takes to load and to reload."""
    start = time.perf_counter()
    await p.directory.load()
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    await p.directory.reload()
    reloaded = time.perf_counter() - start
    return {
        "users_indexed": len(p.directory.index.all_users()),
        "load_ms": round(loaded * 1000, 1),
        "reload_ms": round(reloaded * 1000, 1),
    }


@contextlib.asynccontextmanager
async def console_browser(bench: Bench, p: Assembly) -> Any:
    """The real console app on the assembly's services, and a signed-in system administrator."""
    import httpx

    from carewire.mail import MemoryMailer
    from carewire.security.console_auth import ConsoleConfig, Role
    from carewire.web.console import ConsoleServices, create_console

    services = ConsoleServices(
        accounts=p.console,
        audit=p.audit,
        mailer=MemoryMailer(),
        config=ConsoleConfig(domain=DOMAIN, base_url=BASE_URL),
        registry=p.registry,
        datasets=p.datasets,
        adapters=p.adapters,
        rules=p.rules,
        engine=p.engine,
        directory=p.directory,
    )
    name = f"bench-admin-{bench.tag}"
    await p.console.create_user(name, Role.SYSTEM_ADMIN, password=CONSOLE_PASSWORD)
    transport = httpx.ASGITransport(app=create_console(services), client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        form = await client.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if token is None:
            raise RuntimeError("the sign-in page has no CSRF field")
        r = await client.post(
            "/signin",
            data={"username": name, "password": CONSOLE_PASSWORD, "csrf_token": token.group(1)},
        )
        if r.status_code != 303:
            raise RuntimeError(f"sign-in failed: {r.status_code} {r.text[:300]}")
        yield client


_TOTAL = re.compile(r"<caption>(\d+) (?:user|invitation)s?\b")


async def measure_pages(
    client: Any, requests: list[tuple[str, str]], warmup: int
) -> dict[str, Any]:
    """Each request in turn (one at a time); latency per kind, rows each kind matched."""
    samples: dict[str, list[float]] = {}
    matched: dict[str, int] = {}
    failures: dict[str, str] = {}
    seen: dict[str, int] = {}
    meter = None
    measured_from = warmup * len({kind for kind, _ in requests})
    for n, (kind, path) in enumerate(requests):
        if n == measured_from:
            meter = _noise()
        start = time.perf_counter()
        r = await client.get(path)
        body = r.text
        elapsed = time.perf_counter() - start
        if r.status_code != 200:
            failures.setdefault(kind, f"{path}: {r.status_code} {body[:200]}")
            continue
        seen[kind] = seen.get(kind, 0) + 1
        found = _TOTAL.search(body)
        if found and kind not in matched:
            matched[kind] = int(found.group(1))
        if n >= measured_from:
            samples.setdefault(kind, []).append(elapsed)
    report = page_report(samples)
    report["rows_matched_first"] = matched
    report["failures"] = failures
    report["cpu"] = meter.stop() if meter is not None else None
    return report


def _with_warmup(requests: list[tuple[str, str]], kinds: int, warmup: int) -> list[tuple[str, str]]:
    return requests[: warmup * kinds] + requests


# -- the run -------------------------------------------------------------------------------------


async def run(bench: Bench) -> dict[str, Any]:
    """Every phase on one assembly; the figures and the targets."""
    from carewire.assembly import Options, assemble

    args = bench.args
    result: dict[str, Any] = {}
    start = time.perf_counter()
    p = await assemble(Options(url=bench.url, domain=DOMAIN, mailer=_mailer(bench)))
    bench.say(f"assembled in {time.perf_counter() - start:.1f} s on {_db_kind(bench.url)}")
    try:
        if not args.skip_import:
            _quiet(args)
            bench.say(f"import, CLI path: {args.users} rows, {args.departments} departments")
            async with profiled(bench, "import-cli"):
                result["import_cli"] = await import_cli(bench, p)
            _quiet(args)
            bench.say("import, one request (console upload / API)")
            async with profiled(bench, "import-request"):
                result["import_request"] = await import_request(bench, p)
        result["users"] = await ensure_users(bench, p)
        result["index"] = await index_timings(p)
        if not args.skip_console:
            org = result["users"]["organisation"]
            async with console_browser(bench, p) as client:
                _quiet(args)
                bench.say(f"Find Users: {args.requests} requests of each of 5 kinds")
                reqs = user_requests(org, args.requests)
                async with profiled(bench, "find-users"):
                    result["find_users"] = await measure_pages(
                        client, _with_warmup(reqs, 5, WARMUP_REQUESTS), WARMUP_REQUESTS
                    )
                invited = (result.get("import_request") or {}).get("organisation")
                if invited is not None:
                    _quiet(args)
                    bench.say(f"Invitations: {args.requests} requests of each of 5 kinds")
                    reqs = invitation_requests(invited, args.requests, args.users)
                    async with profiled(bench, "invitations"):
                        result["invitations_page"] = await measure_pages(
                            client, _with_warmup(reqs, 5, WARMUP_REQUESTS), WARMUP_REQUESTS
                        )
    finally:
        await p.close()
    return result


def _quiet(args: argparse.Namespace) -> None:
    if args.wait_quiet:
        from bench.run import wait_quiet

        wait_quiet(args.wait_quiet)


def _db_kind(url: str) -> str:
    return "SQLite" if url.startswith("sqlite") else url.split(":", 1)[0]


def targets_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """PASS/FAIL of each target that the run measured."""
    out: dict[str, dict[str, Any]] = {}
    for key, label in (("import_cli", "cli"), ("import_request", "request")):
        if key in result:
            value = result[key]["users_per_s"]
            out[f"import_{label}_users_per_s"] = {
                "target": f">= {TARGET_IMPORT_USERS_PER_S:,.0f}",
                "value": value,
                "pass": value >= TARGET_IMPORT_USERS_PER_S,
            }
    for key in ("find_users", "invitations_page"):
        if key in result:
            worst = result[key]["worst_p95_ms"]
            ok = worst is not None and worst < TARGET_PAGE_P95_MS and not result[key]["failures"]
            out[f"{key}_p95_ms"] = {
                "target": f"every kind < {TARGET_PAGE_P95_MS:.0f}",
                "value": worst,
                "pass": ok,
            }
    return out


def _ms(d: dict[str, Any]) -> str:
    if d.get("p50") is None:
        return "n/a"
    return f"p50 {d['p50']:7.2f}  p95 {d['p95']:7.2f}  p99 {d['p99']:7.2f}  max {d['max']:7.2f} ms"


def _cpu(c: dict[str, Any] | None) -> str:
    if not c:
        return ""
    return f"(this process {c['client_cpu_pct']}% of a core, other processes {c['other_cpu_pct']}%)"


def print_summary(report: dict[str, Any]) -> None:
    """The human summary."""
    r = report["result"]
    print(f"\n=== directory ({report['database']}, {report['params']['users']:,} users) ===")
    if "import_cli" in r:
        c = r["import_cli"]
        print(f"  import, CLI      {c['invited']:,} committed in {c['committed_s']} s: "
              f"{c['users_per_s']:,.0f} users/s; all mailed after {c['seconds']} s "
              f"({c['mailed_per_s']:,.0f}/s, {report['mailer']}, {c['mail_failures']} failures); "
              f"{c['groups_created']} groups created  {_cpu(c['cpu'])}")  # fmt: skip
    if "import_request" in r:
        q = r["import_request"]
        print(f"  import, request  {q['invited']:,} committed in {q['committed_s']} s: "
              f"{q['users_per_s']:,.0f} users/s; all mailed after {q['all_mailed_s']} s "
              f"({q['mailed_users_per_s']:,.0f}/s, {q['email_sent_after_drain']:,} Email Sent)  "
              f"{_cpu(q['cpu'])}")  # fmt: skip
    u = r.get("users") or {}
    if u.get("created"):
        print(f"  set-up           {u['created']:,} users created in {u['setup_s']} s "
              f"({u['setup_users_per_s']:.0f}/s; cheap PIN hasher, set-up only)")  # fmt: skip
    if "index" in r:
        i = r["index"]
        print(f"  index            {i['users_indexed']:,} users: load {i['load_ms']} ms, "
              f"reload {i['reload_ms']} ms")  # fmt: skip
    for key, title in (("find_users", "Find Users"), ("invitations_page", "Invitations")):
        if key not in r:
            continue
        page = r[key]
        print(f"  {title} {_cpu(page['cpu'])}")
        for kind, lat in page["kinds"].items():
            rows = page["rows_matched_first"].get(kind)
            print(f"    {kind:<18}{_ms(lat)}  ({rows} rows match)")
        print(f"    {'overall':<18}{_ms(page['overall'])}")
        for kind, text in page["failures"].items():
            print(f"    FAILED {kind}: {text}")
    for key, t in report["targets"].items():
        verdict = "PASS" if t["pass"] else "FAIL"
        print(f"  target {key:<30} {t['target']:<18} got {t['value']}  {verdict}")


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m bench.directory",
        description=(__doc__ or "").split("\n")[0],
    )
    p.add_argument("--users", type=int, default=DEFAULT_USERS, help="rows and users (15000)")
    p.add_argument("--departments", type=int, default=DEFAULT_DEPARTMENTS, help="CSV departments")
    p.add_argument(
        "--requests", type=int, default=DEFAULT_REQUESTS, help="measured requests per kind (100)"
    )
    p.add_argument("--database-url", help="database (default: SQLite in the work directory)")
    p.add_argument(
        "--work-dir",
        type=Path,
        help="keep the SQLite database and outbox here (reused: the users are made once)",
    )
    p.add_argument(
        "--mailer",
        choices=("outbox", "memory"),
        default="outbox",
        help="outbox: .eml files, fsynced (an installation without SMTP); memory: in memory",
    )
    p.add_argument("--skip-import", action="store_true", help="no invitation import")
    p.add_argument("--skip-console", action="store_true", help="no console page measurement")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measured phase, wait up to this long for other processes to go quiet",
    )
    p.add_argument(
        "--profile",
        choices=PHASES,
        help="record this process with py-spy during one phase (it slows the phase down: take "
        "the figures from a run without it)",
    )
    p.add_argument(
        "--profile-mode",
        choices=("native", "python"),
        default="native",
        help="native: native frames too (SQLite, fsync); python: --nonblocking",
    )
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users must be 1-{MAX_USERS} (an invitation CSV holds at most that)")
    if not 1 <= args.departments <= 1000 or not 1 <= args.requests <= MAX_REQUESTS:
        parser.error(f"--departments must be 1-1000 and --requests 1-{MAX_REQUESTS}")
    if not 0 <= args.wait_quiet <= 600:
        parser.error("--wait-quiet must be 0-600")
    temp = None
    if args.work_dir is None:
        temp = tempfile.mkdtemp(prefix="carewire-bench-directory-")
        work = Path(temp)
    else:
        work = args.work_dir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite+aiosqlite:///{work / 'directory.db'}"
    bench = Bench(args=args, work=work, url=url)
    try:
        result = asyncio.run(run(bench))
    finally:
        with contextlib.suppress(OSError):
            for outbox in work.glob("outbox-*"):
                shutil.rmtree(outbox, ignore_errors=True)
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    report: dict[str, Any] = {
        "benchmark": "directory",
        "database": _db_kind(url),
        "mailer": "outbox (.eml files, fsynced)" if args.mailer == "outbox" else "in memory",
        "params": {
            "users": args.users,
            "departments": args.departments,
            "requests_per_kind": args.requests,
            "warmup_per_kind": WARMUP_REQUESTS,
        },
        "result": result,
        "targets": targets_of(result),
        "notes": bench.notes,
        "profile": bench.profile,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    print_summary(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"directory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"  results: {path}")
    return 0 if all(t["pass"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
