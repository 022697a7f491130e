"""The ward the data-platform tests share: its datasets, adapters, rules and people.

One ward, W1, whose teams (T1 and T2) can be paged. Patients raise nurse calls
from their beds; each call is a record of CALLS, identified by its ``call_id``,
with the bed it comes from, a priority, a status (Open, then Accepted, Declined
or Calling when someone answers), a note, an escalation level and the login of
whoever answered (``responder``). A call is raised in the ward (the link is
called ``room``: ``CALLS.room`` n:1 ↔ ``WARDS.calls``) and may page teams
(``CALLS.teams`` m:n ↔ ``TEAMS.calls``). A call nobody answers escalates: an
ESCALATIONS record (the call's id, a state and a level) is opened and, still
Open after two minutes, raised to level 2. CALL_LOG is the ward's journal, a
line of text per entry.

Two adapters act on the ward: the DataUpdate adapter ``Data`` writes records
and the XMPP adapter ``XMPP`` (the name a new installation gives it) alerts the
staff. The rules, kept here in the rules-as-code form (``rules.yaml``, the REST
API's JSON):

- ``call-alert`` alerts the nurse and the doctor of a call. Accept marks the
  call Accepted, the ward "Busy <call>" and clears the note; Decline marks it
  Declined; Accept and Call marks it Calling and pages every team of the call.
  Whoever answered is written to ``responder``.
- ``note open calls`` notes "seen <bed>" on every new Open call.
- ``alert on urgent calls`` alerts ``nurse-<bed>`` of every call of priority 3
  or more (it needs the numeric priority, below).
- ``open-escalation`` opens an escalation for every High call, and
  ``escalate`` raises it to level 2 when it is still Open after the delay.

The people are ``nurse`` and ``doc``, whom the call's alert goes to, and
``tech``, who works on the ward but is not alerted: each a USERS record with an
IDENTITIES record named by the bare JID.

Where one group of tests needs the world a little different, the builders take
it as a parameter: the calls dataset's name (the alert-response feature tests
call it NURSE_CALLS, as the demo hospital does), the type of ``priority``
(Integer for the API tests, which compare numbers; a word such as "High"
elsewhere), and the adapters' names and chat domain (the API tests name theirs
``Data Updates`` and ``Chat``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from carewire.adapters import dataupdate, xmpp
from carewire.assembly import Assembly
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
    Record,
)
from carewire.rules.model import rule_from_data

WARDS = "WARDS"
TEAMS = "TEAMS"
CALLS = "CALLS"
ESCALATIONS = "ESCALATIONS"
CALL_LOG = "CALL_LOG"

#: The DataUpdate adapter's reference name.
UPDATES = "Data"
#: The XMPP adapter's reference name (the one a new installation gets).
CHAT = "XMPP"
#: The XMPP adapter's chat domain (the feature harness's domain).
CHAT_DOMAIN = "example.test"
#: Seconds an escalation may stay Open before ``escalate`` raises its level.
ESCALATE_AFTER = 120


# --- the datasets -----------------------------------------------------------------------------


def _text(name: str, description: str, *, is_key: bool = False) -> Attribute:
    return Attribute(name=name, type=AttrType.STRING, is_key=is_key, description=description)


WARD = Dataset(
    name=DatasetName(WARDS),
    description="The ward the calls are raised in.",
    attributes=(
        _text("name", "The ward's name: W1", is_key=True),
        _text("status", "Free, or Busy <call> once a call is accepted"),
    ),
)
TEAM = Dataset(
    name=DatasetName(TEAMS),
    description="Teams a call can page.",
    attributes=(
        _text("name", "The team's name: T1, T2", is_key=True),
        _text("status", "Paged by <call> when a call is answered with Accept and Call"),
    ),
)
ESCALATION = Dataset(
    name=DatasetName(ESCALATIONS),
    description="A call nobody answered in time.",
    attributes=(
        _text("call_id", "The call escalated", is_key=True),
        Attribute(name="level", type=AttrType.INTEGER, description="1 when opened, then 2"),
        _text("state", "Open, then Escalated <call> or Accepted"),
    ),
)
JOURNAL = Dataset(
    name=DatasetName(CALL_LOG),
    description="The ward's journal.",
    attributes=(
        Attribute(name="text", type=AttrType.STRING, is_required=True, description="One entry"),
    ),
)


def calls_definition(name: str = CALLS, *, priority: AttrType = AttrType.STRING) -> Dataset:
    """The nurse calls: keyed by ``call_id``, raised in a ward (``room``), paging teams.

    Args:
        name: The dataset's name.
        priority: The type of ``priority``: a word (High, Low) or a number (1 to 5).
    """
    return Dataset(
        name=DatasetName(name),
        description="Nurse calls patients raise from their beds.",
        attributes=(
            _text("call_id", "c1, c2 …", is_key=True),
            _text("bed", "The bed the call comes from"),
            Attribute(name="priority", type=priority, description="High, Low … or 1 to 5"),
            _text("status", "Open, Accepted, Declined, Calling, Closed"),
            _text("note", "Free text"),
            Attribute(name="level", type=AttrType.INTEGER, description="Escalation level"),
            _text("responder", "The login of whoever answered the call's alert"),
        ),
        links=(
            Link(
                name="room",
                target=DatasetName(WARDS),
                reverse="calls",
                cardinality=Cardinality.MANY_TO_ONE,
                description="The ward the call is raised in",
            ),
            Link(
                name="teams",
                target=DatasetName(TEAMS),
                reverse="calls",
                cardinality=Cardinality.MANY_TO_MANY,
                description="The teams the call pages",
            ),
        ),
    )


def ward_definitions(
    *, calls: str = CALLS, priority: AttrType = AttrType.STRING
) -> tuple[Dataset, ...]:
    """Every dataset of the world, each after the datasets it links to."""
    return (WARD, TEAM, calls_definition(calls, priority=priority), ESCALATION, JOURNAL)


async def define_ward(
    p: Assembly, *, calls: str = CALLS, priority: AttrType = AttrType.STRING
) -> None:
    """Create WARDS, TEAMS, the calls dataset, ESCALATIONS and CALL_LOG, all empty.

    Args:
        p: The platform.
        calls: The calls dataset's name.
        priority: The type of the calls' ``priority``.
    """
    for ds in ward_definitions(calls=calls, priority=priority):
        await p.registry.create_dataset(
            ds.name, description=ds.description, attributes=ds.attributes, links=ds.links
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ward:
    """The records :func:`seed_ward` wrote.

    Attributes:
        ward: W1, Free.
        teams: T1 and T2, without a status.
        call: c1, noted "old", raised in W1 and paging both teams.
    """

    ward: Record
    teams: tuple[Record, ...]
    call: Record


async def seed_ward(p: Assembly, *, calls: str = CALLS) -> Ward:
    """Write the ward W1 (Free), the teams T1 and T2, then the call c1 raised there.

    In this order, so W1 and T1 have the id 1 and T2 the id 2.
    """
    ward = await p.datasets.create(WARDS, {"name": "W1", "status": "Free"})
    teams = tuple([await p.datasets.create(TEAMS, {"name": name}) for name in ("T1", "T2")])
    call = await p.datasets.create(
        calls, {"call_id": "c1", "note": "old", "room": ward.id, "teams": [t.id for t in teams]}
    )
    return Ward(ward=ward, teams=teams, call=call)


# --- the adapters -----------------------------------------------------------------------------


async def add_adapters(
    p: Assembly, *, updates: str = UPDATES, chat: str = CHAT, chat_domain: str = CHAT_DOMAIN
) -> None:
    """Create the two enabled adapters: DataUpdate ``updates`` and XMPP ``chat``."""
    await p.adapters.create(dataupdate.COMPONENT, updates, is_enabled=True)
    await p.adapters.create(
        xmpp.COMPONENT, chat, is_enabled=True, settings={"chat_domain": chat_domain}
    )


# --- the rules --------------------------------------------------------------------------------

#: The Send Alert settings of ``call-alert``: who is alerted, and what each response writes.
ALERT_SETTINGS: Mapping[str, object] = {
    "recipients": "nurse\ndoc",
    "subject": "Call #{call_id}",
    "message": "Ward #{room.name}",
    "ttl": 30,
    "accept": "status=Accepted\nroom.status=Busy #{call_id}\nnote=",
    "decline": "status=Declined",
    "accept_and_call": "status=Calling\nteams.status=Paged by #{call_id}",
    "responder_path": "responder",
}


def call_alert(**changes: object) -> dict[str, object]:
    """``call-alert``: a call alerts the nurse and the doctor, whose response is written back."""
    return {
        "name": "call-alert",
        "purpose": "Alert the nurse and the doctor, and record who answers",
        "dataset": CALLS,
        "adapter": CHAT,
        "action": "Send Alert",
        "settings": dict(ALERT_SETTINGS),
        **changes,
    }


def note_rule(name: str = "note open calls", **changes: object) -> dict[str, object]:
    """A DataUpdate rule: when a call is created Open, note "seen <bed>" on it."""
    return {
        "name": name,
        "dataset": CALLS,
        "adapter": UPDATES,
        "action": "Update Record",
        "conditions": {"all": [{"path": "status", "op": "equals", "value": "Open"}]},
        "settings": {"updates": "note=seen #{bed}"},
        **changes,
    }


def urgent_alert(name: str = "alert on urgent calls", **changes: object) -> dict[str, object]:
    """A Send Alert rule for calls of priority 3 or more (a numeric priority): create or change."""
    return {
        "name": name,
        "purpose": "tell the nurse",
        "dataset": CALLS,
        "adapter": CHAT,
        "action": "Send Alert",
        "trigger": {"create": True, "update": True, "attributes": ["priority"]},
        "conditions": {"all": [{"path": "priority", "op": "greater_or_equal", "value": 3}]},
        "settings": {
            "recipients": ["nurse-#{bed}"],
            "subject": "Call at #{bed}",
            "message": "Priority #{priority}",
            "ttl": 5,
        },
        **changes,
    }


def escalation_rules(*, defer: int = ESCALATE_AFTER) -> list[dict[str, object]]:
    """``open-escalation`` (every High call opens one) and ``escalate`` (still Open: level 2)."""
    return [
        {
            "name": "open-escalation",
            "purpose": "Every high-priority call opens an escalation",
            "dataset": CALLS,
            "adapter": UPDATES,
            "action": "Create Record",
            "conditions": {"all": [{"path": "priority", "op": "equals", "value": "High"}]},
            "settings": {
                "dataset": ESCALATIONS,
                "values": "call_id=#{call_id}\nstate=Open\nlevel=1",
            },
        },
        {
            "name": "escalate",
            "purpose": "Still open after the delay: level 2",
            "dataset": ESCALATIONS,
            "adapter": UPDATES,
            "action": "Update Record",
            "defer_seconds": defer,
            "conditions": {"all": [{"path": "state", "op": "equals", "value": "Open"}]},
            "settings": {"updates": "level=2\nstate=Escalated #{call_id}"},
        },
    ]


async def create_rules(p: Assembly, *rules: Mapping[str, object]) -> None:
    """Save ``rules`` (in their rules-as-code form) through the rule service, in order."""
    for data in rules:
        await p.rules.create(rule_from_data(data))


# --- the people -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Staff:
    """The IDENTITIES records of the ward's staff.

    Attributes:
        nurse: ``nurse``, alerted of every call.
        doc: ``doc``, alerted of every call.
        tech: ``tech``, who works on the ward but is not alerted.
    """

    nurse: Record
    doc: Record
    tech: Record


async def add_person(p: Assembly, login: str, domain: str) -> Record:
    """The USERS record of ``login`` (kept if it exists) and a new IDENTITIES record for it."""
    user = await p.datasets.upsert("USERS", {"login": login})
    return await p.datasets.create("IDENTITIES", {"name": f"{login}@{domain}", "usr": user.id})


async def add_staff(p: Assembly, domain: str) -> Staff:
    """The nurse, the doctor and the technician, with JIDs at ``domain``."""
    return Staff(
        nurse=await add_person(p, "nurse", domain),
        doc=await add_person(p, "doc", domain),
        tech=await add_person(p, "tech", domain),
    )
