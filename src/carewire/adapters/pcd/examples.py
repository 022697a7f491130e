"""The example alarm rules: alert the Primary assignment, escalate to the Backup.

For each alert priority an alarm can map to, a pair of Send Alert rules on the
alarms dataset (the Send Alert priority is fixed per rule, so one pair per
priority):

- ``pcd-alarm-<priority>``: a new active alarm of that priority alerts the
  users of the bed's locations' active ``Primary`` assignments; Accept writes
  ``status=Accepted``, Decline ``status=Declined``, the responder's login goes
  to ``responder``;
- ``pcd-escalate-<priority>``: deferred by the respond-by time; when it is due
  and the alarm is still active and not Accepted, the ``Backup`` assignment is
  alerted in the same room.

``rules_as_data`` gives them in the rules-as-code form (``carewire rules import``).
"""

from __future__ import annotations

from carewire.adapters.pcd.settings import ALARMS, ALERT_PRIORITIES
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule, rule_to_data

SUBJECT = "#{text}"
MESSAGE = "#{text} (#{measurement}) at #{location}"
TTL_MINUTES = 30


def _recipients(level: str) -> str:
    return f"#{{bed.locs.assignments[level={level},state=active].usr.login}}"


def _settings(level: str, priority: str, *, subject: str) -> dict[str, object]:
    return {
        "recipients": _recipients(level),
        "subject": subject,
        "message": MESSAGE,
        "short_message": "#{code_name}",
        "alarm_time": "#{alarm_time.as_iso}",
        "patient_mrn": "#{mrn}",
        "ttl": TTL_MINUTES,
        "priority": priority,
        "accept": "status=Accepted",
        "decline": "status=Declined",
        "responder_path": "responder",
        "vibrate": True,
        "audible": True,
    }


def _when(priority: str, *, is_open: bool) -> Group:
    items = [
        Condition(path="state", op=Op.EQUALS, value="active"),
        Condition(path="alert_priority", op=Op.EQUALS, value=priority),
    ]
    if is_open:
        items.append(Condition(path="status", op=Op.NOT_EQUALS, value="Accepted"))
    return Group(mode=Mode.ALL, items=tuple(items))


def example_rules(
    xmpp_adapter: str,
    *,
    dataset: str = ALARMS,
    respond_by: int = 60,
    primary: str = "Primary",
    backup: str = "Backup",
    priorities: tuple[str, ...] = ALERT_PRIORITIES,
) -> list[Rule]:
    """The alert and escalation rule of each priority, for the XMPP adapter ``xmpp_adapter``.

    Args:
        xmpp_adapter: The XMPP adapter's reference name.
        dataset: The alarms dataset.
        respond_by: Seconds without an Accept before the Backup is alerted.
        primary: The assignment level alerted first.
        backup: The assignment level alerted on escalation.
        priorities: The alert priorities to make rules for.
    """
    rules: list[Rule] = []
    for priority in priorities:
        low = priority.lower()
        rules.append(
            Rule(
                name=f"pcd-alarm-{low}",
                purpose=f"A new {priority} device alarm alerts the {primary} assignment",
                dataset=dataset,
                adapter=xmpp_adapter,
                action="Send Alert",
                conditions=_when(priority, is_open=False),
                settings=_settings(primary, priority, subject=SUBJECT),
            )
        )
        rules.append(
            Rule(
                name=f"pcd-escalate-{low}",
                purpose=f"A {priority} alarm not accepted in time alerts the {backup} assignment",
                dataset=dataset,
                adapter=xmpp_adapter,
                action="Send Alert",
                defer_seconds=respond_by,
                conditions=_when(priority, is_open=True),
                settings=_settings(backup, priority, subject="Escalated: #{text}"),
            )
        )
    return rules


def rules_as_data(xmpp_adapter: str, *, respond_by: int = 60) -> dict[str, object]:
    """:func:`example_rules` as a rules file (``{"rules": [...]}``)."""
    rules = example_rules(xmpp_adapter, respond_by=respond_by)
    return {"rules": [rule_to_data(r) for r in rules]}
