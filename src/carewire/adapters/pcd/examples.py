"""The example alarm rules: alert the Primary assignment, escalate to the Backup.

Two Send Alert rules on the alarms dataset, whose alert priority is the
alarm's own (``#{alert_priority}``, mapped from the PCD priority):

- ``pcd-alarm``: a new active alarm alerts the users of the bed's locations'
  active ``Primary`` assignments; Accept writes ``status=Accepted``, Decline
  ``status=Declined``, the responder's login goes to ``responder``;
- ``pcd-escalate``: deferred by the respond-by time; when it is due and the
  alarm is still active and not Accepted, the ``Backup`` assignment is alerted
  in the same room.

``rules_as_data`` gives them in the rules-as-code form (``carewire rules import``).
"""

from __future__ import annotations

from carewire.adapters.pcd.settings import ALARMS
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule, rule_to_data

ALERT_RULE = "pcd-alarm"
ESCALATION_RULE = "pcd-escalate"
SUBJECT = "#{text}"
MESSAGE = "#{text} (#{measurement}) at #{location}"
TTL_MINUTES = 30


def _recipients(level: str) -> str:
    return f"#{{bed.locs.assignments[level={level},state=active].usr.login}}"


def _settings(level: str, *, subject: str) -> dict[str, object]:
    return {
        "recipients": _recipients(level),
        "subject": subject,
        "message": MESSAGE,
        "short_message": "#{code_name}",
        "alarm_time": "#{alarm_time.as_iso}",
        "patient_mrn": "#{mrn}",
        "ttl": TTL_MINUTES,
        "priority": "#{alert_priority}",
        "accept": "status=Accepted",
        "decline": "status=Declined",
        "responder_path": "responder",
        "vibrate": True,
        "audible": True,
    }


def _when(*, is_open: bool) -> Group:
    items = [Condition(path="state", op=Op.EQUALS, value="active")]
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
) -> list[Rule]:
    """The alert and the escalation rule, for the XMPP adapter ``xmpp_adapter``.

    Args:
        xmpp_adapter: The XMPP adapter's reference name.
        dataset: The alarms dataset.
        respond_by: Seconds without an Accept before the Backup is alerted.
        primary: The assignment level alerted first.
        backup: The assignment level alerted on escalation.
    """
    return [
        Rule(
            name=ALERT_RULE,
            purpose=f"A new device alarm alerts the {primary} assignment at its priority",
            dataset=dataset,
            adapter=xmpp_adapter,
            action="Send Alert",
            conditions=_when(is_open=False),
            settings=_settings(primary, subject=SUBJECT),
        ),
        Rule(
            name=ESCALATION_RULE,
            purpose=f"An alarm not accepted in time alerts the {backup} assignment",
            dataset=dataset,
            adapter=xmpp_adapter,
            action="Send Alert",
            defer_seconds=respond_by,
            conditions=_when(is_open=True),
            settings=_settings(backup, subject="Escalated: #{text}"),
        ),
    ]


def rules_as_data(xmpp_adapter: str, *, respond_by: int = 60) -> dict[str, object]:
    """:func:`example_rules` as a rules file (``{"rules": [...]}``)."""
    rules = example_rules(xmpp_adapter, respond_by=respond_by)
    return {"rules": [rule_to_data(r) for r in rules]}
