"""RFC 6121 Appendix A: the presence subscription state machine, as data.

Sans-IO and pure. A subscription between a user and one contact is in one of
the nine states of RFC 6121 §A.1 (the subscription none/to/from/both, plus
whether a request is pending out and/or in). Two tables give what the user's
server does with each subscription stanza:

* :data:`OUTBOUND` (§A.2): stanzas the *user* sends to the contact;
* :data:`INBOUND` (§A.3): stanzas *received* from the contact.

Each maps (state, stanza type) to a :class:`Transition`: the new state,
whether the stanza is routed (outbound) or delivered (inbound), whether the
user's interested resources get a roster push, and the server's own answers
(the auto-reply of §3.1.3, the pre-approvals of §3.4). Every (state, type)
pair has an entry, "no state change" ones included.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Subscription(StrEnum):
    """The 'subscription' attribute of a roster item (RFC 6121 §2.1.2.5)."""

    NONE = "none"
    TO = "to"  # the user receives the contact's presence
    FROM = "from"  # the contact receives the user's presence
    BOTH = "both"

    @property
    def has_to(self) -> bool:
        """Whether the user is subscribed to the contact's presence."""
        return self in (Subscription.TO, Subscription.BOTH)

    @property
    def has_from(self) -> bool:
        """Whether the contact is subscribed to the user's presence."""
        return self in (Subscription.FROM, Subscription.BOTH)


class StanzaType(StrEnum):
    """The four subscription-related presence types (RFC 6121 §3)."""

    SUBSCRIBE = "subscribe"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBE = "unsubscribe"
    UNSUBSCRIBED = "unsubscribed"


class State(StrEnum):
    """The subscription states of RFC 6121 §A.1, named as the RFC names them."""

    NONE = "None"
    NONE_PENDING_OUT = "None + Pending Out"
    NONE_PENDING_IN = "None + Pending In"
    NONE_PENDING_OUT_IN = "None + Pending Out/In"
    TO = "To"
    TO_PENDING_IN = "To + Pending In"
    FROM = "From"
    FROM_PENDING_OUT = "From + Pending Out"
    BOTH = "Both"

    @property
    def subscription(self) -> Subscription:
        """The roster item's 'subscription' attribute in this state."""
        return _PARTS[self][0]

    @property
    def pending_out(self) -> bool:
        """Whether the user's request awaits the contact's answer (ask='subscribe')."""
        return _PARTS[self][1]

    @property
    def pending_in(self) -> bool:
        """Whether the contact asked to subscribe and the user has not answered."""
        return _PARTS[self][2]

    @classmethod
    def of(cls, subscription: Subscription, *, pending_out: bool, pending_in: bool) -> State:
        """The state with these parts.

        A pending-out flag next to a 'to' subscription (or pending-in next to
        'from') cannot exist in §A.1 — the request was already granted — and
        is dropped, so stored data that drifted still maps to a valid state.
        """
        pending_out = pending_out and not subscription.has_to
        pending_in = pending_in and not subscription.has_from
        return _BY_PARTS[(subscription, pending_out, pending_in)]


_S = Subscription
_PARTS: dict[State, tuple[Subscription, bool, bool]] = {
    State.NONE: (_S.NONE, False, False),
    State.NONE_PENDING_OUT: (_S.NONE, True, False),
    State.NONE_PENDING_IN: (_S.NONE, False, True),
    State.NONE_PENDING_OUT_IN: (_S.NONE, True, True),
    State.TO: (_S.TO, False, False),
    State.TO_PENDING_IN: (_S.TO, False, True),
    State.FROM: (_S.FROM, False, False),
    State.FROM_PENDING_OUT: (_S.FROM, True, False),
    State.BOTH: (_S.BOTH, False, False),
}
_BY_PARTS = {parts: state for state, parts in _PARTS.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """What the user's server does with one subscription stanza in one state.

    Attributes:
        old: the state before the stanza.
        new: the state after it (``new == old`` is the RFC's "no state change").
        forward: outbound: route the stanza to the contact; inbound: deliver
            it to the user's available resources.
        push: send a roster push to the user's interested resources: the item
            as a client sees it (subscription, ask, approved) changed. Rows
            with ``cancel_pre_approval`` change the item only if a
            pre-approval existed, which the caller knows and adds.
        auto_reply: a stanza the server sends back to the contact on the
            user's behalf (§3.1.3: 'subscribed' when already subscribed).
        pre_approve: record a subscription pre-approval (§3.4).
        cancel_pre_approval: forget a subscription pre-approval (§3.4).
    """

    old: State
    new: State
    forward: bool
    push: bool
    auto_reply: StanzaType | None = None
    pre_approve: bool = False
    cancel_pre_approval: bool = False

    @property
    def changed(self) -> bool:
        """Whether the state changes."""
        return self.new is not self.old

    @property
    def from_gained(self) -> bool:
        """The contact became subscribed to the user: send it the user's current presence."""
        return self.new.subscription.has_from and not self.old.subscription.has_from

    @property
    def from_lost(self) -> bool:
        """The contact's subscription to the user ended: send it unavailable presence."""
        return self.old.subscription.has_from and not self.new.subscription.has_from


def _visible(state: State) -> tuple[Subscription, bool]:
    # What a roster item shows of a state; pending-in is not part of the item.
    return state.subscription, state.pending_out


def _row(
    old: State,
    new: State | None,
    forward: bool,
    *,
    auto_reply: StanzaType | None = None,
    pre_approve: bool = False,
    cancel_pre_approval: bool = False,
) -> Transition:
    target = old if new is None else new
    return Transition(
        old=old,
        new=target,
        forward=forward,
        push=_visible(old) != _visible(target) or pre_approve,
        auto_reply=auto_reply,
        pre_approve=pre_approve,
        cancel_pre_approval=cancel_pre_approval,
    )


SAME = None  # the RFC's "no state change"
St = State
T = StanzaType

# RFC 6121 §A.2: the user's server processing stanzas the user sends.
OUTBOUND: dict[tuple[State, StanzaType], Transition] = {
    # §A.2.1 subscribe: always routed (the contact's server answers for itself).
    (St.NONE, T.SUBSCRIBE): _row(St.NONE, St.NONE_PENDING_OUT, True),
    (St.NONE_PENDING_OUT, T.SUBSCRIBE): _row(St.NONE_PENDING_OUT, SAME, True),
    (St.NONE_PENDING_IN, T.SUBSCRIBE): _row(St.NONE_PENDING_IN, St.NONE_PENDING_OUT_IN, True),
    (St.NONE_PENDING_OUT_IN, T.SUBSCRIBE): _row(St.NONE_PENDING_OUT_IN, SAME, True),
    (St.TO, T.SUBSCRIBE): _row(St.TO, SAME, True),
    (St.TO_PENDING_IN, T.SUBSCRIBE): _row(St.TO_PENDING_IN, SAME, True),
    (St.FROM, T.SUBSCRIBE): _row(St.FROM, St.FROM_PENDING_OUT, True),
    (St.FROM_PENDING_OUT, T.SUBSCRIBE): _row(St.FROM_PENDING_OUT, SAME, True),
    (St.BOTH, T.SUBSCRIBE): _row(St.BOTH, SAME, True),
    # §A.2.2 unsubscribe: always routed.
    (St.NONE, T.UNSUBSCRIBE): _row(St.NONE, SAME, True),
    (St.NONE_PENDING_OUT, T.UNSUBSCRIBE): _row(St.NONE_PENDING_OUT, St.NONE, True),
    (St.NONE_PENDING_IN, T.UNSUBSCRIBE): _row(St.NONE_PENDING_IN, SAME, True),
    (St.NONE_PENDING_OUT_IN, T.UNSUBSCRIBE): _row(St.NONE_PENDING_OUT_IN, St.NONE_PENDING_IN, True),
    (St.TO, T.UNSUBSCRIBE): _row(St.TO, St.NONE, True),
    (St.TO_PENDING_IN, T.UNSUBSCRIBE): _row(St.TO_PENDING_IN, St.NONE_PENDING_IN, True),
    (St.FROM, T.UNSUBSCRIBE): _row(St.FROM, SAME, True),
    (St.FROM_PENDING_OUT, T.UNSUBSCRIBE): _row(St.FROM_PENDING_OUT, St.FROM, True),
    (St.BOTH, T.UNSUBSCRIBE): _row(St.BOTH, St.FROM, True),
    # §A.2.3 subscribed: routed only when it answers a pending request; in
    # None, None + Pending Out and To it is a pre-approval (§3.4).
    (St.NONE, T.SUBSCRIBED): _row(St.NONE, SAME, False, pre_approve=True),
    (St.NONE_PENDING_OUT, T.SUBSCRIBED): _row(St.NONE_PENDING_OUT, SAME, False, pre_approve=True),
    (St.NONE_PENDING_IN, T.SUBSCRIBED): _row(St.NONE_PENDING_IN, St.FROM, True),
    (St.NONE_PENDING_OUT_IN, T.SUBSCRIBED): _row(St.NONE_PENDING_OUT_IN, St.FROM_PENDING_OUT, True),
    (St.TO, T.SUBSCRIBED): _row(St.TO, SAME, False, pre_approve=True),
    (St.TO_PENDING_IN, T.SUBSCRIBED): _row(St.TO_PENDING_IN, St.BOTH, True),
    (St.FROM, T.SUBSCRIBED): _row(St.FROM, SAME, False),
    (St.FROM_PENDING_OUT, T.SUBSCRIBED): _row(St.FROM_PENDING_OUT, SAME, False),
    (St.BOTH, T.SUBSCRIBED): _row(St.BOTH, SAME, False),
    # §A.2.4 unsubscribed: denies a pending request or cancels a subscription;
    # in None, None + Pending Out and To it cancels a pre-approval (§3.4).
    (St.NONE, T.UNSUBSCRIBED): _row(St.NONE, SAME, False, cancel_pre_approval=True),
    (St.NONE_PENDING_OUT, T.UNSUBSCRIBED): _row(
        St.NONE_PENDING_OUT, SAME, False, cancel_pre_approval=True
    ),
    (St.NONE_PENDING_IN, T.UNSUBSCRIBED): _row(St.NONE_PENDING_IN, St.NONE, True),
    (St.NONE_PENDING_OUT_IN, T.UNSUBSCRIBED): _row(
        St.NONE_PENDING_OUT_IN, St.NONE_PENDING_OUT, True
    ),
    (St.TO, T.UNSUBSCRIBED): _row(St.TO, SAME, False, cancel_pre_approval=True),
    (St.TO_PENDING_IN, T.UNSUBSCRIBED): _row(St.TO_PENDING_IN, St.TO, True),
    (St.FROM, T.UNSUBSCRIBED): _row(St.FROM, St.NONE, True),
    (St.FROM_PENDING_OUT, T.UNSUBSCRIBED): _row(St.FROM_PENDING_OUT, St.NONE_PENDING_OUT, True),
    (St.BOTH, T.UNSUBSCRIBED): _row(St.BOTH, St.TO, True),
}

_AUTO = StanzaType.SUBSCRIBED

# RFC 6121 §A.3: the user's server processing stanzas received from the contact.
INBOUND: dict[tuple[State, StanzaType], Transition] = {
    # §A.3.1 subscribe: when the contact is already subscribed the server
    # answers 'subscribed' itself and does not bother the user (§3.1.3).
    (St.NONE, T.SUBSCRIBE): _row(St.NONE, St.NONE_PENDING_IN, True),
    (St.NONE_PENDING_OUT, T.SUBSCRIBE): _row(St.NONE_PENDING_OUT, St.NONE_PENDING_OUT_IN, True),
    (St.NONE_PENDING_IN, T.SUBSCRIBE): _row(St.NONE_PENDING_IN, SAME, False),
    (St.NONE_PENDING_OUT_IN, T.SUBSCRIBE): _row(St.NONE_PENDING_OUT_IN, SAME, False),
    (St.TO, T.SUBSCRIBE): _row(St.TO, St.TO_PENDING_IN, True),
    (St.TO_PENDING_IN, T.SUBSCRIBE): _row(St.TO_PENDING_IN, SAME, False),
    (St.FROM, T.SUBSCRIBE): _row(St.FROM, SAME, False, auto_reply=_AUTO),
    (St.FROM_PENDING_OUT, T.SUBSCRIBE): _row(St.FROM_PENDING_OUT, SAME, False, auto_reply=_AUTO),
    (St.BOTH, T.SUBSCRIBE): _row(St.BOTH, SAME, False, auto_reply=_AUTO),
    # §A.3.2 unsubscribe: the contact no longer wants the user's presence.
    (St.NONE, T.UNSUBSCRIBE): _row(St.NONE, SAME, False),
    (St.NONE_PENDING_OUT, T.UNSUBSCRIBE): _row(St.NONE_PENDING_OUT, SAME, False),
    (St.NONE_PENDING_IN, T.UNSUBSCRIBE): _row(St.NONE_PENDING_IN, St.NONE, True),
    (St.NONE_PENDING_OUT_IN, T.UNSUBSCRIBE): _row(
        St.NONE_PENDING_OUT_IN, St.NONE_PENDING_OUT, True
    ),
    (St.TO, T.UNSUBSCRIBE): _row(St.TO, SAME, False),
    (St.TO_PENDING_IN, T.UNSUBSCRIBE): _row(St.TO_PENDING_IN, St.TO, True),
    (St.FROM, T.UNSUBSCRIBE): _row(St.FROM, St.NONE, True),
    (St.FROM_PENDING_OUT, T.UNSUBSCRIBE): _row(St.FROM_PENDING_OUT, St.NONE_PENDING_OUT, True),
    (St.BOTH, T.UNSUBSCRIBE): _row(St.BOTH, St.TO, True),
    # §A.3.3 subscribed: accepted only as the answer to the user's request.
    (St.NONE, T.SUBSCRIBED): _row(St.NONE, SAME, False),
    (St.NONE_PENDING_OUT, T.SUBSCRIBED): _row(St.NONE_PENDING_OUT, St.TO, True),
    (St.NONE_PENDING_IN, T.SUBSCRIBED): _row(St.NONE_PENDING_IN, SAME, False),
    (St.NONE_PENDING_OUT_IN, T.SUBSCRIBED): _row(St.NONE_PENDING_OUT_IN, St.TO_PENDING_IN, True),
    (St.TO, T.SUBSCRIBED): _row(St.TO, SAME, False),
    (St.TO_PENDING_IN, T.SUBSCRIBED): _row(St.TO_PENDING_IN, SAME, False),
    (St.FROM, T.SUBSCRIBED): _row(St.FROM, SAME, False),
    (St.FROM_PENDING_OUT, T.SUBSCRIBED): _row(St.FROM_PENDING_OUT, St.BOTH, True),
    (St.BOTH, T.SUBSCRIBED): _row(St.BOTH, SAME, False),
    # §A.3.4 unsubscribed: the request was denied or the subscription cancelled.
    (St.NONE, T.UNSUBSCRIBED): _row(St.NONE, SAME, False),
    (St.NONE_PENDING_OUT, T.UNSUBSCRIBED): _row(St.NONE_PENDING_OUT, St.NONE, True),
    (St.NONE_PENDING_IN, T.UNSUBSCRIBED): _row(St.NONE_PENDING_IN, SAME, False),
    (St.NONE_PENDING_OUT_IN, T.UNSUBSCRIBED): _row(
        St.NONE_PENDING_OUT_IN, St.NONE_PENDING_IN, True
    ),
    (St.TO, T.UNSUBSCRIBED): _row(St.TO, St.NONE, True),
    (St.TO_PENDING_IN, T.UNSUBSCRIBED): _row(St.TO_PENDING_IN, St.NONE_PENDING_IN, True),
    (St.FROM, T.UNSUBSCRIBED): _row(St.FROM, SAME, False),
    (St.FROM_PENDING_OUT, T.UNSUBSCRIBED): _row(St.FROM_PENDING_OUT, St.FROM, True),
    (St.BOTH, T.UNSUBSCRIBED): _row(St.BOTH, St.FROM, True),
}

# RFC 6121 §3.4: a 'subscribe' from a contact the user pre-approved is
# approved by the server: auto-reply 'subscribed', not delivered to the user.
INBOUND_PRE_APPROVED: dict[State, Transition] = {
    St.NONE: _row(St.NONE, St.FROM, False, auto_reply=_AUTO, cancel_pre_approval=True),
    St.NONE_PENDING_OUT: _row(
        St.NONE_PENDING_OUT, St.FROM_PENDING_OUT, False, auto_reply=_AUTO, cancel_pre_approval=True
    ),
    St.TO: _row(St.TO, St.BOTH, False, auto_reply=_AUTO, cancel_pre_approval=True),
}

del St, T


def outbound(state: State, stanza: StanzaType) -> Transition:
    """RFC 6121 §A.2: the user sent ``stanza`` to a contact the user is in ``state`` with."""
    return OUTBOUND[(state, stanza)]


def inbound(state: State, stanza: StanzaType, *, pre_approved: bool = False) -> Transition:
    """RFC 6121 §A.3: ``stanza`` arrived from a contact the user is in ``state`` with.

    Args:
        state: the subscription state from the user's side.
        stanza: the subscription stanza's type.
        pre_approved: whether the user pre-approved the contact's subscription (§3.4).
    """
    if pre_approved and stanza is StanzaType.SUBSCRIBE and state in INBOUND_PRE_APPROVED:
        return INBOUND_PRE_APPROVED[state]
    return INBOUND[(state, stanza)]
