"""The XMPP adapter's rule actions and their settings, field for field.

Expire Conversation, Leave Conversation, Send Alert, Send Mass Alert, Send
Invitation, Send New Accept/Decline System Message, Send New Message, Send
New System Message, Start Conversation and Update Presence.

Each handler renders its settings against the triggering record (``#{...}``
expressions, recipients as logins or JIDs, one or more per line) into a
request of :mod:`.gateway` and hands it to the running XMPP server's
:class:`~.gateway.ChatGateway`. Rendering errors (a Time-to-Live that is not
a number, no recipient at all) end the delivery in Error with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from carewire.adapters.xmpp.gateway import (
    AlertRequest,
    AlertSent,
    ChatGateway,
    GatewaySlot,
    MessageRequest,
)
from carewire.adapters.xmpp.settings import COMPONENT
from carewire.rules.actions import (
    ActionContext,
    ActionFailed,
    ActionHandler,
    ActionOutcome,
    ActionSpec,
)
from carewire.rules.settings import FieldKind, SettingField

MAX_BADGE_PHRASES = 5  # accept and decline phrases combined
MASS_ALERT_TTL = (1, 64800)  # minutes: up to 45 days


def _text(name: str, label: str, *, required: bool = False, long: bool = False) -> SettingField:
    return SettingField(
        name=name,
        label=label,
        kind=FieldKind.LONG_TEXT if long else FieldKind.TEXT,
        is_required=required,
        allows_expressions=True,
    )


def _flag(name: str, label: str) -> SettingField:
    return SettingField(name=name, label=label, kind=FieldKind.BOOLEAN, default=False)


RECIPIENTS = SettingField(
    name="recipients",
    label="Recipients",
    kind=FieldKind.LINES,
    is_required=True,
    allows_expressions=True,
    help="Jabber IDs or logins, one per line; a room's JID to reach an existing room.",
)
CONVERSATION = _text("conversation", "Conversation", required=True)
RE_ALERT = _flag("re_alert", "Re-Alert")
PRIORITY = SettingField(
    name="priority",
    label="Priority Level",
    kind=FieldKind.CHOICE,
    choices=("Normal", "Important", "Urgent", "Critical"),
    default="Normal",
    allows_expressions=True,
    help="One of the four, or an expression that evaluates to one (#{alert_priority}).",
)
_ALERT_PRESENTATION = (
    SettingField(name="badge_alert_sound", label="Badge Alert Sound"),
    _flag("vibrate", "Vibrate Enabled"),
    _flag("audible", "Audible Alert"),
    SettingField(name="alert_sound", label="Alert Sound"),
    _flag("always_play", "Always Play"),
    SettingField(name="custom_parameters", label="Custom Parameters", kind=FieldKind.PARAMETERS),
)
_UPDATES = dict(kind=FieldKind.UPDATES)
_COVERAGE = (
    SettingField(
        name="coverage",
        label="Coverage",
        kind=FieldKind.CHOICE,
        choices=("Record", "Reroute"),
        default="Record",
        help="Recipients off shift (no active assignment) or offline on every device: "
        "Record alerts them and records it; Reroute alerts the Covering Recipients instead.",
    ),
    SettingField(
        name="covering_recipients",
        label="Covering Recipients",
        kind=FieldKind.LINES,
        allows_expressions=True,
        help="Jabber IDs or logins, one per line, e.g. "
        "#{bed.locations.assignments[level=Backup,state=active].usr.login}.",
    ),
)

SEND_ALERT = (
    RECIPIENTS,
    RE_ALERT,
    _text("subject", "Subject", required=True),
    _text("alarm_time", "Alarm Time"),
    _text("message", "Message", required=True, long=True),
    SettingField(name="short_message", label="Short Message"),
    _text("patient_mrn", "Patient MRN"),
    _text("event_response_team", "Event Response Team"),
    SettingField(
        name="ttl",
        label="Time-to-Live",
        kind=FieldKind.INTEGER,
        is_required=True,
        minimum=1,
        allows_expressions=True,
    ),
    SettingField(name="accept", label="Accept", kind=FieldKind.UPDATES),
    SettingField(name="accept_badge_phrases", label="Accept Badge Phrases", kind=FieldKind.LINES),
    SettingField(name="accept_and_call", label="Accept and Call", kind=FieldKind.UPDATES),
    _text("callback_number", "Callback Number"),
    SettingField(name="decline", label="Decline", kind=FieldKind.UPDATES),
    SettingField(name="decline_badge_phrases", label="Decline Badge Phrases", kind=FieldKind.LINES),
    SettingField(
        name="responder_path", label="Store Responding User as", kind=FieldKind.EXPRESSION
    ),
    _text("additional_content", "Additional Content", long=True),
    PRIORITY,
    *_ALERT_PRESENTATION,
    *_COVERAGE,
)

SEND_MASS_ALERT = (
    RECIPIENTS,
    _text("subject", "Subject", required=True),
    _text("message", "Message", required=True, long=True),
    SettingField(name="short_message", label="Short Message"),
    SettingField(
        name="ttl",
        label="Time-to-Live",
        kind=FieldKind.INTEGER,
        is_required=True,
        minimum=MASS_ALERT_TTL[0],
        maximum=MASS_ALERT_TTL[1],
    ),
    _text("additional_content", "Additional Content", long=True),
    PRIORITY,
    *_ALERT_PRESENTATION,
    *_COVERAGE,
)

_SCHEMAS: dict[str, tuple[SettingField, ...]] = {
    "Expire Conversation": (CONVERSATION,),
    "Leave Conversation": (RECIPIENTS, CONVERSATION),
    "Send Alert": SEND_ALERT,
    "Send Mass Alert": SEND_MASS_ALERT,
    "Send Invitation": (RECIPIENTS, RE_ALERT, CONVERSATION, _text("reason", "Reason")),
    "Send New Accept/Decline System Message": (
        RECIPIENTS,
        _text("sender", "From", required=True),
        _flag("accept_message", "Accept Message"),
    ),
    "Send New Message": (
        RECIPIENTS,
        _text("sender", "From", required=True),
        _text("message", "Message", required=True, long=True),
        SettingField(name="short_message", label="Short Message"),
    ),
    "Send New System Message": (
        RECIPIENTS,
        _text("message", "Message", required=True, long=True),
        SettingField(name="short_message", label="Short Message"),
    ),
    "Start Conversation": (_text("subject", "Subject", required=True), RECIPIENTS),
    "Update Presence": (
        RECIPIENTS,
        SettingField(
            name="presence_type",
            label="Presence Type",
            kind=FieldKind.CHOICE,
            is_required=True,
            choices=("Available", "Unavailable", "Offline"),
        ),
        _text("status", "Status"),
    ),
}


_SEPARATORS = re.compile(r"[\s,;]+")


def _jids(rendered: Iterable[str], domain: str) -> tuple[str, ...]:
    """Logins and JIDs, one or more per rendered line, as bare JIDs (order kept, no repeats)."""
    out: dict[str, None] = {}
    for line in rendered:
        for item in _SEPARATORS.split(line.strip()):
            if not item:
                continue
            jid = item if "@" in item else f"{item}@{domain}"
            out[jid.split("/", 1)[0].lower()] = None
    return tuple(out)


async def _render(ctx: ActionContext, name: str) -> str:
    value = ctx.settings.get(name)
    if value is None:
        return ""
    return (await ctx.render(str(value))).strip()


async def _render_lines(ctx: ActionContext, name: str) -> list[str]:
    value = ctx.settings.get(name) or ()
    lines = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return [await ctx.render(str(line)) for line in lines]


async def _recipients(
    ctx: ActionContext, gateway: ChatGateway, *, required: bool
) -> tuple[str, ...]:
    found = _jids(await _render_lines(ctx, "recipients"), gateway.domain)
    if required and not found:
        raise ActionFailed(f"{ctx.rule.action}: the recipients rendered empty for this record")
    return found


async def _ttl(ctx: ActionContext, limits: tuple[int, int] | None) -> int:
    text = await _render(ctx, "ttl")
    try:
        ttl = int(text)
    except ValueError:
        raise ActionFailed(
            f"{ctx.rule.action}: Time-to-Live must evaluate to a whole number of minutes, "
            f"not {text!r}"
        ) from None
    low, high = limits or (1, None)
    if ttl < low or (high is not None and ttl > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ActionFailed(f"{ctx.rule.action}: Time-to-Live must be {span} minutes, not {ttl}")
    return ttl


async def _priority(ctx: ActionContext) -> str:
    text = await _render(ctx, "priority") or str(PRIORITY.default)
    if text not in PRIORITY.choices:
        raise ActionFailed(
            f"{ctx.rule.action}: Priority Level must evaluate to one of "
            f"{', '.join(PRIORITY.choices)}, not {text!r}"
        )
    return text


def _parameters(raw: object) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in raw or ():  # type: ignore[attr-defined]
        if isinstance(item, Mapping) and item.get("parameter"):
            out.append((str(item["parameter"]), str(item.get("value") or "")))
    return out


async def _custom_parameters(ctx: ActionContext) -> tuple[tuple[str, str], ...]:
    """The adapter's custom parameters, overridden (by name) by the rule's."""
    merged = dict(_parameters(ctx.adapter_settings.get("custom_parameters")))
    for name, value in _parameters(ctx.settings.get("custom_parameters")):
        merged[name] = await ctx.render(value)
    return tuple(merged.items())


def _has(ctx: ActionContext, name: str) -> bool:
    return bool(ctx.settings.get(name))


def _flag_value(ctx: ActionContext, name: str) -> bool:
    return bool(ctx.settings.get(name))


def _coverage_text(sent: AlertSent) -> str:
    """What coverage did, for the delivery's status text (who, why, where the alert went)."""
    if not sent.uncovered:
        return ""
    who = ", ".join(f"{jid} ({why})" for jid, why in sent.uncovered)
    if sent.rerouted_from:
        return f"; rerouted from {who} to {', '.join(sent.covering) or 'the other recipients'}"
    if sent.is_without_cover:
        return f"; no reachable cover for {who}: alerted them anyway"
    return f"; unreachable: {who}"


def _source(ctx: ActionContext) -> str:
    return f"{ctx.record.dataset}/{ctx.record.id}"


class _Actions:
    """The ten handlers, bound to the slot the server attaches its gateway to."""

    def __init__(self, slot: GatewaySlot) -> None:
        self.slot = slot

    def _gateway(self, ctx: ActionContext) -> ChatGateway:
        gateway = self.slot.gateway
        if gateway is None:
            raise ActionFailed(
                f"{ctx.rule.action}: no XMPP server runs in this process; "
                "start `carewire serve` (firings from the command line are handed to it)"
            )
        return gateway

    async def send_alert(self, ctx: ActionContext, *, is_mass: bool = False) -> ActionOutcome:
        gateway = self._gateway(ctx)
        recipients = await _recipients(ctx, gateway, required=False)
        phrases_a = tuple(await _render_lines(ctx, "accept_badge_phrases"))
        phrases_d = tuple(await _render_lines(ctx, "decline_badge_phrases"))
        if len(phrases_a) + len(phrases_d) > MAX_BADGE_PHRASES:
            raise ActionFailed(
                f"{ctx.rule.action}: at most {MAX_BADGE_PHRASES} accept and decline badge "
                "phrases combined"
            )
        request = AlertRequest(
            recipients=recipients,
            source=_source(ctx),
            delivery_id=ctx.delivery_id,
            subject=await _render(ctx, "subject"),
            message=await _render(ctx, "message"),
            ttl=await _ttl(ctx, MASS_ALERT_TTL if is_mass else None),
            is_mass=is_mass,
            re_alert=_flag_value(ctx, "re_alert"),
            short_message=await _render(ctx, "short_message"),
            alarm_time=await _render(ctx, "alarm_time"),
            patient_mrn=await _render(ctx, "patient_mrn"),
            event_response_team=_jids([await _render(ctx, "event_response_team")], gateway.domain),
            additional_content=await _render(ctx, "additional_content"),
            priority=await _priority(ctx),
            accept=not is_mass and _has(ctx, "accept"),
            decline=not is_mass and _has(ctx, "decline"),
            accept_and_call=not is_mass and _has(ctx, "accept_and_call"),
            callback_number=await _render(ctx, "callback_number"),
            accept_badge_phrases=phrases_a,
            decline_badge_phrases=phrases_d,
            badge_alert_sound=str(ctx.settings.get("badge_alert_sound") or ""),
            vibrate=_flag_value(ctx, "vibrate"),
            audible=_flag_value(ctx, "audible"),
            alert_sound=str(ctx.settings.get("alert_sound") or ""),
            always_play=_flag_value(ctx, "always_play"),
            custom_parameters=await _custom_parameters(ctx),
            coverage=str(ctx.settings.get("coverage") or "Record"),
            covering=_jids(await _render_lines(ctx, "covering_recipients"), gateway.domain),
        )
        sent = await gateway.send_alert(request)
        text = f"alert {sent.alert_id} in {sent.room}: notified {len(sent.notified)}"
        if sent.skipped:
            text += f", {len(sent.skipped)} already alerted (no Re-Alert)"
        text += _coverage_text(sent)
        if not recipients:
            text += "; no recipients (the room waits for a Send Invitation rule)"
        # Nobody alerted (no one assigned to the bed): the escalation need not wait. An
        # offline recipient is alerted all the same (offline storage, push): the delay holds.
        return ActionOutcome(text=text, has_reached=bool(sent.notified))

    async def send_mass_alert(self, ctx: ActionContext) -> ActionOutcome:
        return await self.send_alert(ctx, is_mass=True)

    async def _message(
        self, ctx: ActionContext, *, body: str, sender: bool, accepted: bool | None = None
    ) -> ActionOutcome:
        gateway = self._gateway(ctx)
        from_jid: str | None = None
        if sender:
            found = _jids([await _render(ctx, "sender")], gateway.domain)
            if len(found) != 1:
                raise ActionFailed(
                    f"{ctx.rule.action}: From must render to exactly one Jabber ID or login"
                )
            from_jid = found[0]
        done = await gateway.send_message(
            MessageRequest(
                recipients=await _recipients(ctx, gateway, required=True),
                body=body,
                short_message=await _render(ctx, "short_message"),
                sender=from_jid,
                accepted=accepted,
                source=_source(ctx),
            )
        )
        return ActionOutcome(text=done.text)

    async def send_new_message(self, ctx: ActionContext) -> ActionOutcome:
        return await self._message(ctx, body=await _render(ctx, "message"), sender=True)

    async def send_system_message(self, ctx: ActionContext) -> ActionOutcome:
        return await self._message(ctx, body=await _render(ctx, "message"), sender=False)

    async def send_accept_decline(self, ctx: ActionContext) -> ActionOutcome:
        gateway = self._gateway(ctx)
        accepted = _flag_value(ctx, "accept_message")
        who = _jids([await _render(ctx, "sender")], gateway.domain)
        name = who[0].split("@", 1)[0] if who else "someone"
        body = f"{name} {'accepted' if accepted else 'declined'}"
        return await self._message(ctx, body=body, sender=False, accepted=accepted)

    async def start_conversation(self, ctx: ActionContext) -> ActionOutcome:
        gateway = self._gateway(ctx)
        recipients = await _recipients(ctx, gateway, required=False)
        room = await gateway.start_conversation(recipients, await _render(ctx, "subject"))
        return ActionOutcome(text=f"conversation {room} with {len(recipients)} members")

    async def _conversation(self, ctx: ActionContext) -> str:
        conversation = await _render(ctx, "conversation")
        if not conversation:
            raise ActionFailed(f"{ctx.rule.action}: the conversation rendered empty")
        return conversation

    async def send_invitation(self, ctx: ActionContext) -> ActionOutcome:
        gateway = self._gateway(ctx)
        done = await gateway.invite(
            await _recipients(ctx, gateway, required=True),
            await self._conversation(ctx),
            reason=await _render(ctx, "reason"),
            re_alert=_flag_value(ctx, "re_alert"),
        )
        return ActionOutcome(text=done.text)

    async def expire_conversation(self, ctx: ActionContext) -> ActionOutcome:
        gateway = self._gateway(ctx)
        done = await gateway.expire_conversation(await self._conversation(ctx))
        return ActionOutcome(text=done.text)

    async def leave_conversation(self, ctx: ActionContext) -> ActionOutcome:
        gateway = self._gateway(ctx)
        done = await gateway.leave_conversation(
            await _recipients(ctx, gateway, required=True), await self._conversation(ctx)
        )
        return ActionOutcome(text=done.text)

    async def update_presence(self, ctx: ActionContext) -> ActionOutcome:
        gateway = self._gateway(ctx)
        kind = str(ctx.settings.get("presence_type") or "")
        done = await gateway.update_presence(
            await _recipients(ctx, gateway, required=True), kind, await _render(ctx, "status")
        )
        return ActionOutcome(text=done.text)


def make_actions(slot: GatewaySlot) -> tuple[ActionSpec, ...]:
    """The ten XMPP actions, delivering through the gateway attached to ``slot``."""
    handlers = _Actions(slot)
    by_name: dict[str, ActionHandler] = {
        "Expire Conversation": handlers.expire_conversation,
        "Leave Conversation": handlers.leave_conversation,
        "Send Alert": handlers.send_alert,
        "Send Mass Alert": handlers.send_mass_alert,
        "Send Invitation": handlers.send_invitation,
        "Send New Accept/Decline System Message": handlers.send_accept_decline,
        "Send New Message": handlers.send_new_message,
        "Send New System Message": handlers.send_system_message,
        "Start Conversation": handlers.start_conversation,
        "Update Presence": handlers.update_presence,
    }
    return tuple(
        ActionSpec(name=name, component=COMPONENT, fields=fields, handler=by_name[name])
        for name, fields in _SCHEMAS.items()
    )
