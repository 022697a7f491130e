"""The XMPP adapter's rule actions and their settings, field for field.

Expire Conversation, Leave Conversation, Send Alert, Send Mass Alert, Send
Invitation, Send New Accept/Decline System Message, Send New Message, Send
New System Message, Start Conversation and Update Presence. Their schemas are
complete, so rules can be written, validated and exported now; the delivery
of each is implemented by the clinical messaging module (conversations,
alerts and presence as records). Until then a firing ends in Error with a
message saying exactly that, rather than pretending to have delivered.
"""

from __future__ import annotations

from carewire.rules.actions import ActionContext, ActionFailed, ActionOutcome, ActionSpec
from carewire.rules.settings import FieldKind, SettingField

COMPONENT = "XMPP"

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
    ),
}


async def _not_installed(ctx: ActionContext) -> ActionOutcome:
    raise ActionFailed(
        f"{ctx.rule.action}: the clinical messaging module that delivers XMPP rule actions "
        "is not installed in this release; nothing was sent"
    )


ACTIONS = tuple(
    ActionSpec(name=name, component=COMPONENT, fields=fields, handler=_not_installed)
    for name, fields in _SCHEMAS.items()
)
