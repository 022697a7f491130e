"""``carewire rules`` and ``carewire adapter``: rules as code, and adapter instances.

``rules export`` writes every rule (or one dataset's) as YAML a hospital can
keep under version control; ``rules import`` checks every rule in a file
before it saves any, then creates or updates them by name. Every change is
recorded in the audit trail with the rule's form before and after it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from carewire.cli.audit_trail import record, rule_forms
from carewire.cli.runtime import (
    Services,
    Subparsers,
    WithDataDir,
    run_with_platform,
    running_status,
)
from carewire.errors import ValidationError
from carewire.rules.model import rule_from_data, rule_to_data


def cmd_rules_list(args: argparse.Namespace) -> int:
    """List rules: id, name, dataset, adapter, action, active."""

    async def work(p: Services) -> int:
        rules = p.rules.list_rules(args.dataset)
        if not rules:
            print("no rules")
            return 0
        print(f"{'ID':>4}  {'NAME':<28} {'DATASET':<20} {'ADAPTER':<14} {'ACTION':<28} ACTIVE")
        for r in rules:
            active = "yes" if r.is_active else "no"
            print(
                f"{r.id:>4}  {r.name:<28} {r.dataset:<20} {r.adapter:<14} {r.action:<28} {active}"
            )
        return 0

    return run_with_platform(args, work, with_defaults=True)


def cmd_rules_show(args: argparse.Namespace) -> int:
    """Show one rule as YAML."""

    async def work(p: Services) -> int:
        rule = p.rules.find(args.name)
        if rule is None:
            raise ValidationError(f"no rule is named {args.name!r}")
        print(yaml.safe_dump(rule_to_data(rule), sort_keys=False, allow_unicode=True), end="")
        return 0

    return run_with_platform(args, work, with_defaults=True)


def cmd_rules_export(args: argparse.Namespace) -> int:
    """Write every rule (or one dataset's) as YAML to a file or standard output."""

    async def work(p: Services) -> int:
        data = {"rules": p.rules.export(args.dataset)}
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"{len(data['rules'])} rule(s) written to {args.output}")
        else:
            sys.stdout.write(text)
        return 0

    return run_with_platform(args, work, with_defaults=True)


def _read_rules(path: str) -> list[object]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{path}: not valid YAML ({exc})") from None
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValidationError(f"{path}: expected a list of rules (or a mapping with 'rules:')")
    return items


def cmd_rules_import(args: argparse.Namespace) -> int:
    """Create or update rules by name from a YAML file; nothing is saved if any rule is invalid."""
    items = _read_rules(args.file)

    async def work(p: Services) -> int:
        names = {str(item.get("name")) for item in items if isinstance(item, dict)}
        before = rule_forms(p.rules, names)
        created, updated = await p.rules.import_rules(items)
        for name, form in sorted(rule_forms(p.rules, names).items()):
            await record(
                p, "rule.import", name, details={"before": before.get(name), "after": form}
            )
        print(f"{created} rule(s) created, {updated} updated")
        return 0

    return run_with_platform(args, work, with_defaults=True)


def cmd_rules_validate(args: argparse.Namespace) -> int:
    """Check a YAML file of rules without saving anything."""
    items = _read_rules(args.file)

    async def work(p: Services) -> int:
        problems = []
        for i, item in enumerate(items, 1):
            try:
                p.rules.compile(rule_from_data(item))
            except ValidationError as exc:
                problems.append(f"#{i}: {exc}")
        for line in problems:
            print(line, file=sys.stderr)
        print(f"{len(items) - len(problems)} of {len(items)} rule(s) valid")
        return 1 if problems else 0

    return run_with_platform(args, work, with_defaults=True)


def cmd_rules_delete(args: argparse.Namespace) -> int:
    """Delete a rule by name (its deferred firings are dropped)."""

    async def work(p: Services) -> int:
        rule = p.rules.find(args.name)
        if rule is None or rule.id is None:
            raise ValidationError(f"no rule is named {args.name!r}")
        await p.rules.delete(rule.id)
        await record(
            p, "rule.delete", rule.name, details={"before": rule_to_data(rule), "after": None}
        )
        print(f"rule {args.name} deleted")
        return 0

    return run_with_platform(args, work, with_defaults=True)


def _set_active(args: argparse.Namespace, active: bool) -> int:
    async def work(p: Services) -> int:
        rule = p.rules.find(args.name)
        if rule is None or rule.id is None:
            raise ValidationError(f"no rule is named {args.name!r}")
        after = await p.rules.set_active(rule.id, active)
        await record(
            p,
            "rule.activate" if active else "rule.deactivate",
            rule.name,
            details={"before": rule_to_data(rule), "after": rule_to_data(after)},
        )
        print(f"rule {args.name} {'activated' if active else 'deactivated'}")
        return 0

    return run_with_platform(args, work, with_defaults=True)


def cmd_adapter_list(args: argparse.Namespace) -> int:
    """List adapter instances ("Filter Disabled" unless --all)."""

    async def work(p: Services) -> int:
        shown = p.adapters.list(include_disabled=args.all, search=args.search or "")
        total = len(p.adapters.list())
        for c in shown:
            print(f"{c.reference_name:<30} {c.component:<14} {'true' if c.is_enabled else 'false'}")
        print(f"{len(shown)} of {total}")
        return 0

    return run_with_platform(args, work, with_defaults=True)


def cmd_adapter_show(args: argparse.Namespace) -> int:
    """Show an adapter's settings, and its health and counters while the server runs.

    The running server rewrites ``run/adapters.json`` in the data directory
    every few seconds; without a server (or with a stale file) the health is
    shown as unknown.
    """

    async def work(p: Services) -> int:
        config = p.adapters.get(args.name)
        kind = p.adapters.kind(config.component)
        secret = {f.name for f in kind.settings if "secret" in f.name or "password" in f.name}
        print(f"{config.reference_name}: {config.component}, enabled {config.is_enabled}")
        for name, value in sorted(config.settings.items()):
            shown = "(set)" if name in secret and value else json.dumps(value, default=str)
            print(f"  {name:<28} {shown}")
        for role, dataset in sorted(config.required_datasets.items()):
            print(f"  dataset {role:<20} {dataset}")
        _print_health(config.reference_name, running_status(args))
        return 0

    return run_with_platform(args, work, with_defaults=True)


def _print_health(name: str, status: dict[str, object] | None) -> None:
    adapters = status.get("adapters") if status else None
    health = adapters.get(name) if isinstance(adapters, dict) else None
    if not isinstance(health, dict) or status is None:
        print("health: unknown (no server is running on this data directory)")
        return
    print(f"health (as of {status.get('at')}): {health.get('state')} {health.get('note') or ''}")
    if health.get("last_error"):
        print(f"  last error: {health['last_error']} ({health.get('restarts')} restarts)")
    counters = health.get("counters")
    for key, value in counters.items() if isinstance(counters, dict) else ():
        print(f"  {key:<28} {value}")


def register(sub: Subparsers, with_data_dir: WithDataDir) -> None:
    """Register ``rules`` and ``adapter`` under the top-level parser."""
    rules = sub.add_parser("rules", help="manage rules", description="Rules as code.")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    ls = with_data_dir(
        rsub.add_parser("list", help="list rules", description=cmd_rules_list.__doc__)
    )
    ls.add_argument("--dataset", help="only this dataset's rules")
    ls.set_defaults(func=cmd_rules_list)
    show = with_data_dir(
        rsub.add_parser("show", help="show a rule", description=cmd_rules_show.__doc__)
    )
    show.add_argument("name")
    show.set_defaults(func=cmd_rules_show)
    exp = with_data_dir(
        rsub.add_parser("export", help="export as YAML", description=cmd_rules_export.__doc__)
    )
    exp.add_argument("--dataset", help="only this dataset's rules")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.set_defaults(func=cmd_rules_export)
    for name, func in (("import", cmd_rules_import), ("validate", cmd_rules_validate)):
        sp = with_data_dir(rsub.add_parser(name, help=func.__doc__, description=func.__doc__))
        sp.add_argument("file", help="YAML file (a list, or a mapping with 'rules:')")
        sp.set_defaults(func=func)
    for name, func in (
        ("delete", cmd_rules_delete),
        ("activate", lambda a: _set_active(a, True)),
        ("deactivate", lambda a: _set_active(a, False)),
    ):
        sp = with_data_dir(rsub.add_parser(name, help=f"{name} a rule"))
        sp.add_argument("name")
        sp.set_defaults(func=func)
    adapter = sub.add_parser("adapter", help="adapter instances", description="Adapter instances.")
    asub = adapter.add_subparsers(dest="adapter_command", required=True, metavar="COMMAND")
    al = with_data_dir(
        asub.add_parser("list", help="list adapters", description=cmd_adapter_list.__doc__)
    )
    al.add_argument("--all", action="store_true", help="include disabled adapters")
    al.add_argument("--search", help="match reference or component name")
    al.set_defaults(func=cmd_adapter_list)
    show = with_data_dir(
        asub.add_parser("show", help="settings and health", description=cmd_adapter_show.__doc__)
    )
    show.add_argument("name", help="the adapter's reference name")
    show.set_defaults(func=cmd_adapter_show)
