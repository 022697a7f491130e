"""The CLI's own recording in the audit trail, shared by the command groups.

Every administrative act of the CLI (accounts, tokens, records, rules) is
recorded as ``cli:<OS user>`` on channel ``cli``, through :func:`record` (on
an open platform) or a :class:`CliAudit` (which :func:`~carewire.cli.runtime.run_with_accounts`
hands to account commands); the directory service records the directory's
acts itself, for :func:`cli_caller`. Entries name what was acted on by
identifiers only, never values or secrets.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome

if TYPE_CHECKING:
    from carewire.assembly import Assembly
    from carewire.directory.model import Caller
    from carewire.rules.service import RuleService


def cli_actor() -> str:
    """Who CLI acts are recorded as: ``cli:<OS user>`` (``cli`` when the user is unknown)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cli_caller() -> Caller:
    """The CLI to the organisation directory: a system administrator, as ``cli:<OS user>``.

    The directory service records its acts itself (``directory.*``), with this actor.
    """
    from carewire.directory.model import Caller, CallerRole

    return Caller(actor=cli_actor(), role=CallerRole.SYSTEM_ADMIN, channel=Channel.CLI)


@dataclass(frozen=True, slots=True)
class CliAudit:
    """Records the CLI's acts on one audit trail."""

    trail: AuditTrail

    async def __call__(
        self,
        action: str,
        target: str,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        details: Mapping[str, object] | None = None,
    ) -> None:
        """Record ``action`` on ``target`` (identifiers only, never values or secrets)."""
        await self.trail.record(
            AuditEvent(
                actor=cli_actor(),
                channel=Channel.CLI,
                action=action,
                target=target,
                outcome=outcome,
                details=details or {},
            )
        )


async def record(
    p: Assembly, action: str, target: str, *, details: Mapping[str, object] | None = None
) -> None:
    """Record a successful CLI act on the platform's trail."""
    await CliAudit(p.audit)(action, target, details=details)


async def record_write(p: Assembly, action: str, dataset: str, record_id: int) -> None:
    """Record a record write by dataset and id only: values never reach the trail."""
    details = {"dataset": dataset, "id": record_id}
    await record(p, action, f"{dataset}/{record_id}", details=details)


def rule_forms(rules: RuleService, names: Iterable[str]) -> dict[str, dict[str, object]]:
    """The current form of the named rules that exist (for before/after details)."""
    from carewire.rules.model import rule_to_data

    wanted = set(names)
    return {r.name: rule_to_data(r) for r in rules.list_rules() if r.name in wanted}
