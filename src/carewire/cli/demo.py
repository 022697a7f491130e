"""``carewire demo``: the demo hospital, and nurse calls raised from its beds.

``demo`` fills a fresh installation with the staff of three units (accounts
with rosters), their datasets and the nurse-call alert rules; it changes no
existing account. ``demo nurse-call BED`` writes a nurse call whose alerts the
running server sends.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from carewire.cli.runtime import (
    Services,
    Subparsers,
    WithDataDir,
    config,
    data_dir,
    nudge_server,
    run_with_platform,
)
from carewire.errors import ConfigError

if TYPE_CHECKING:
    from carewire.demo import DemoResult
    from carewire.demo_data import DemoData

DEMO_PASSWORD_FILE = "demo-password.txt"


def cmd_demo(args: argparse.Namespace) -> int:
    """Load the demo hospital: staff of three units with ready-made rosters."""
    from carewire.demo import load_demo
    from carewire.demo_data import load_demo_data

    domain = config(args).server.domain

    async def load(services: Services) -> tuple[DemoResult, DemoData]:
        staff = await load_demo(services, domain=domain)
        return staff, await load_demo_data(services)

    result, data = run_with_platform(args, load, with_defaults=True)
    _report(result, data, domain=domain, where=data_dir(args))
    pid = nudge_server(args)
    if pid is not None:
        print(f"  the running server (pid {pid}) was told to take up the datasets and rules")
    return 0


def _report(result: DemoResult, data: DemoData, *, domain: str, where: Path) -> None:
    """Print what the demo loaded (and write the staff's password to ``where``)."""
    if result.created:
        pw_file = where / DEMO_PASSWORD_FILE
        fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(result.password + "\n")
        print(
            f"demo hospital loaded: {len(result.created)} staff accounts, "
            f"{result.roster_items} roster entries"
        )
        for login in result.created:
            print(f"  {login}@{domain}")
        print(f"  password for all of them: {result.password}  (also in {pw_file})")
        print(f"  PIN for all of them: {result.pin}")
        print(
            f"  organisation {result.organisation}: its units are groups "
            f"(<unit>@groups.{domain}); {result.administrator} administers it in the web console"
        )
    else:
        print("demo hospital already loaded (no account changed)")
    if result.existing:
        print(f"  kept existing accounts: {', '.join(result.existing)}", file=sys.stderr)
    shown = ", ".join(f"{n} {ds}" for ds, n in data.counts.items())
    print(f"  datasets: {shown}; the NURSE_CALLS dataset and its alert rules")
    print("  each user's unit colleagues are in their roster from their first login")
    print(f"  raise a nurse call: carewire demo nurse-call ICU-101A --data-dir {where}")


def cmd_demo_call(args: argparse.Namespace) -> int:
    """Raise a nurse call from a demo bed: the running server alerts the bed's nurse."""
    from carewire.demo_data import bed_of, patient_in

    try:
        bed = bed_of(args.bed)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None

    async def work(p: Services) -> int:
        from carewire.datasets.model import Origin

        if "NURSE_CALLS" not in p.registry:
            raise ConfigError("no NURSE_CALLS dataset: run 'carewire demo' first")
        call_id = f"{args.bed}-{p.datasets.clock.now():%Y%m%d%H%M%S}"
        values: dict[str, object] = {
            "call_id": call_id,
            "status": "Open",
            "priority": "Normal",
            "bed": bed,
        }
        mrn = patient_in(args.bed)
        if mrn is not None:
            values["patient"] = {"mrn": mrn}
        rec = await p.datasets.create("NURSE_CALLS", values, origin=Origin(actor="cli:demo"))
        print(f"nurse call {call_id} raised from {args.bed} (NURSE_CALLS record {rec.id})")
        print("  the running server alerts the bed's nurse; unanswered after 60 s, the backup")
        return 0

    code = run_with_platform(args, work, fire_rules=True)
    nudge_server(args)  # its scheduler runs the handed-over alert now, not at its next look
    return code


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``demo`` and its ``nurse-call`` action under the top-level parser."""
    demo = with_data_dir(
        sub.add_parser("demo", help="load the demo hospital", description=cmd_demo.__doc__)
    )
    demo.set_defaults(func=cmd_demo)
    demo_sub = demo.add_subparsers(dest="demo_command", metavar="ACTION")
    call = demo_sub.add_parser(
        "nurse-call", help="raise a nurse call from a bed", description=cmd_demo_call.__doc__
    )
    call.add_argument("bed", help="the bed's location, e.g. ICU-101A")
    call.add_argument("--data-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    call.set_defaults(func=cmd_demo_call)
