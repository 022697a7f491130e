"""The XMPP rule actions: settings rendered against the record into gateway requests.

The gateway here records what it is asked; delivery through the real server
is covered by tests/features/test_chat_gateway.py and tests/interop/test_alert_loop.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from carewire.adapters.xmpp.gateway import (
    AlertRequest,
    AlertSent,
    Delivered,
    MessageRequest,
)
from carewire.assembly import Assembly
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.rules.model import Rule

DOMAIN = "h.example"


class RecordingGateway:
    """Answers like a server would and keeps every request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    @property
    def domain(self) -> str:
        return DOMAIN

    @property
    def room_domain(self) -> str:
        return f"chat.{DOMAIN}"

    async def send_alert(self, request: AlertRequest) -> AlertSent:
        self.calls.append(("alert", request))
        return AlertSent(room="r@chat.h.example", alert_id="a1", notified=request.recipients)

    async def send_message(self, request: MessageRequest) -> Delivered:
        self.calls.append(("message", request))
        return Delivered(text=f"sent to {len(request.recipients)}")

    async def start_conversation(self, recipients: Sequence[str], subject: str) -> str:
        self.calls.append(("start", (tuple(recipients), subject)))
        return "c1@chat.h.example"

    async def invite(
        self, recipients: Sequence[str], room: str, *, reason: str, re_alert: bool
    ) -> Delivered:
        self.calls.append(("invite", (tuple(recipients), room, reason, re_alert)))
        return Delivered(text="invited")

    async def expire_conversation(self, conversation: str) -> Delivered:
        self.calls.append(("expire", conversation))
        return Delivered(text="expired")

    async def leave_conversation(self, recipients: Sequence[str], conversation: str) -> Delivered:
        self.calls.append(("leave", (tuple(recipients), conversation)))
        return Delivered(text="left")

    async def update_presence(
        self, recipients: Sequence[str], kind: str, status: str, *, changed_by: str = "rule"
    ) -> Delivered:
        self.calls.append(("presence", (tuple(recipients), kind, status)))
        return Delivered(text="presence")


@pytest.fixture
async def chat(platform: Assembly) -> RecordingGateway:
    gateway = RecordingGateway()
    platform.chat.attach(gateway)
    await platform.adapters.create(
        "XMPP",
        "Chat",
        is_enabled=True,
        settings={
            "chat_domain": DOMAIN,
            "custom_parameters": [
                {"parameter": "site", "value": "north"},
                {"parameter": "unit", "value": "ICU"},
            ],
        },
    )
    await platform.datasets.create("USERS", {"login": "ana", "first_name": "Ana"})
    await platform.datasets.create("USERS", {"login": "ben", "first_name": "Ben"})
    while not platform.engine._queue.empty():  # no rule yet: nothing fires for them
        await platform.engine.process(platform.engine._queue.get_nowait())
        platform.engine._queue.task_done()
    return gateway


async def _fire(p: Assembly, action: str, settings: dict[str, object]) -> dict[str, object]:
    """Create a rule on USERS, create a user that triggers it, return its delivery."""
    await p.rules.create(
        Rule(name="r", dataset="USERS", adapter="Chat", action=action, settings=settings)
    )
    await p.datasets.create("USERS", {"login": "carl", "first_name": "Carl", "title": "RN"})
    while not p.engine._queue.empty():
        await p.engine.process(p.engine._queue.get_nowait())
        p.engine._queue.task_done()
    page = await p.datasets.query(
        "DELIVERIES", Query(filters=(Filter(field="rule", op=FilterOp.EQ, value="r"),))
    )
    [delivery] = page.records
    return dict(delivery.values)


async def test_send_alert_renders_every_field(platform: Assembly, chat: RecordingGateway) -> None:
    delivery = await _fire(
        platform,
        "Send Alert",
        {
            "recipients": "#{login}\nana, ben@h.example\nnurses@chat.h.example",
            "subject": "Call for #{first_name}",
            "message": "#{first_name} (#{title}) needs help",
            "short_message": "Help",
            "ttl": "#{id}",
            "priority": "Urgent",
            "accept": "title=Accepted",
            "decline": "title=Declined",
            "accept_badge_phrases": "yes\nok",
            "decline_badge_phrases": "no",
            "re_alert": True,
            "audible": True,
            "custom_parameters": [{"parameter": "unit", "value": "#{title}"}],
        },
    )
    assert delivery["status"] == "Delivered", delivery["status_text"]
    [(kind, request)] = chat.calls
    assert kind == "alert" and isinstance(request, AlertRequest)
    assert request.recipients == (
        "carl@h.example",
        "ana@h.example",
        "ben@h.example",
        "nurses@chat.h.example",
    )
    assert request.subject == "Call for Carl"
    assert request.message == "Carl (RN) needs help"
    assert request.priority == "Urgent"
    assert request.ttl == 3  # the triggering record's id
    assert (request.accept, request.decline, request.accept_and_call) == (True, True, False)
    assert request.accept_badge_phrases == ("yes", "ok")
    assert request.re_alert and request.audible and not request.vibrate
    # The adapter's parameters, with the rule's value winning for the same name.
    assert request.custom_parameters == (("site", "north"), ("unit", "RN"))
    assert request.source.startswith("USERS/")
    assert request.delivery_id > 0
    assert "alert a1" in str(delivery["status_text"])


async def test_a_ttl_that_is_not_a_number_fails_the_delivery(
    platform: Assembly, chat: RecordingGateway
) -> None:
    delivery = await _fire(
        platform,
        "Send Alert",
        {"recipients": "ana", "subject": "s", "message": "m", "ttl": "#{first_name}"},
    )
    assert delivery["status"] == "Error"
    assert "Time-to-Live must evaluate to a whole number of minutes, not 'Carl'" in str(
        delivery["status_text"]
    )
    assert chat.calls == []


async def test_a_priority_is_rendered_then_checked(
    platform: Assembly, chat: RecordingGateway
) -> None:
    alert = {"recipients": "ana", "subject": "s", "message": "m", "ttl": 5}
    # carl has no last name: the expression renders empty and leaves Critical
    await _fire(platform, "Send Alert", {**alert, "priority": "Critical#{last_name}"})
    [(_, request)] = chat.calls
    assert isinstance(request, AlertRequest) and request.priority == "Critical"


async def test_a_priority_that_renders_to_no_priority_fails_the_delivery(
    platform: Assembly, chat: RecordingGateway
) -> None:
    alert = {"recipients": "ana", "subject": "s", "message": "m", "ttl": 5}
    delivery = await _fire(platform, "Send Alert", {**alert, "priority": "#{title}"})
    assert delivery["status"] == "Error"
    assert (
        "Priority Level must evaluate to one of Normal, Important, Urgent, Critical, not 'RN'"
        in str(delivery["status_text"])
    )
    assert chat.calls == []


async def test_mass_alert_has_no_responses(platform: Assembly, chat: RecordingGateway) -> None:
    delivery = await _fire(
        platform,
        "Send Mass Alert",
        {"recipients": "ana\nben", "subject": "Tornado", "message": "Shelter", "ttl": 64800},
    )
    assert delivery["status"] == "Delivered"
    [(_, request)] = chat.calls
    assert isinstance(request, AlertRequest)
    assert request.is_mass and request.ttl == 64800
    assert not (request.accept or request.decline or request.accept_and_call)


async def test_empty_recipients_fail_messages(platform: Assembly, chat: RecordingGateway) -> None:
    delivery = await _fire(
        platform, "Send New System Message", {"recipients": "#{email}", "message": "hi"}
    )
    assert delivery["status"] == "Error"
    assert "the recipients rendered empty" in str(delivery["status_text"])


async def test_send_new_message_needs_exactly_one_sender(
    platform: Assembly, chat: RecordingGateway
) -> None:
    delivery = await _fire(
        platform,
        "Send New Message",
        {"recipients": "ana", "sender": "ben carl", "message": "hello"},
    )
    assert delivery["status"] == "Error"
    assert "From must render to exactly one" in str(delivery["status_text"])


async def test_send_new_message_from_a_user(platform: Assembly, chat: RecordingGateway) -> None:
    delivery = await _fire(
        platform,
        "Send New Message",
        {"recipients": "ana", "sender": "#{login}", "message": "from #{first_name}"},
    )
    assert delivery["status"] == "Delivered"
    [(_, request)] = chat.calls
    assert isinstance(request, MessageRequest)
    assert (request.sender, request.body, request.recipients) == (
        "carl@h.example",
        "from Carl",
        ("ana@h.example",),
    )


async def test_accept_decline_system_message(platform: Assembly, chat: RecordingGateway) -> None:
    await _fire(
        platform,
        "Send New Accept/Decline System Message",
        {"recipients": "ana", "sender": "#{login}", "accept_message": False},
    )
    [(_, request)] = chat.calls
    assert isinstance(request, MessageRequest)
    assert request.sender is None and request.accepted is False
    assert request.body == "carl declined"


@pytest.mark.parametrize(
    ("action", "settings", "expected"),
    [
        ("Start Conversation", {"recipients": "ana\nben", "subject": "Rounds"}, "start"),
        (
            "Send Invitation",
            {"recipients": "ana", "conversation": "c1@chat.h.example", "reason": "#{title}"},
            "invite",
        ),
        ("Expire Conversation", {"conversation": "c1@chat.h.example"}, "expire"),
        (
            "Leave Conversation",
            {"recipients": "#{login}", "conversation": "c1@chat.h.example"},
            "leave",
        ),
        (
            "Update Presence",
            {"recipients": "#{login}", "presence_type": "Unavailable", "status": "In surgery"},
            "presence",
        ),
    ],
)
async def test_conversation_and_presence_actions(
    platform: Assembly,
    chat: RecordingGateway,
    action: str,
    settings: dict[str, object],
    expected: str,
) -> None:
    delivery = await _fire(platform, action, settings)
    assert delivery["status"] == "Delivered", delivery["status_text"]
    [(kind, args)] = chat.calls
    assert kind == expected
    if kind == "invite":
        assert args == (("ana@h.example",), "c1@chat.h.example", "RN", False)
    if kind == "presence":
        assert args == (("carl@h.example",), "Unavailable", "In surgery")
