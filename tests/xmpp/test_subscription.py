"""The RFC 6121 Appendix A subscription state machine (carewire.xmpp.subscription)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.xmpp.subscription import (
    INBOUND,
    INBOUND_PRE_APPROVED,
    OUTBOUND,
    StanzaType,
    State,
    Subscription,
    Transition,
    inbound,
    outbound,
)

states = st.sampled_from(State)
types = st.sampled_from(StanzaType)

# The RFC's tables, transcribed: (existing state, route/deliver?, new state or
# "-" for "no state change"). Order of rows as in RFC 6121 §A.2 and §A.3.
RFC_TABLES: dict[tuple[str, StanzaType], str] = {
    ("A.2.1", StanzaType.SUBSCRIBE): """
        None                  | yes | None + Pending Out
        None + Pending Out    | yes | -
        None + Pending In     | yes | None + Pending Out/In
        None + Pending Out/In | yes | -
        To                    | yes | -
        To + Pending In       | yes | -
        From                  | yes | From + Pending Out
        From + Pending Out    | yes | -
        Both                  | yes | -
    """,
    ("A.2.2", StanzaType.UNSUBSCRIBE): """
        None                  | yes | -
        None + Pending Out    | yes | None
        None + Pending In     | yes | -
        None + Pending Out/In | yes | None + Pending In
        To                    | yes | None
        To + Pending In       | yes | None + Pending In
        From                  | yes | -
        From + Pending Out    | yes | From
        Both                  | yes | From
    """,
    ("A.2.3", StanzaType.SUBSCRIBED): """
        None                  | no  | -
        None + Pending Out    | no  | -
        None + Pending In     | yes | From
        None + Pending Out/In | yes | From + Pending Out
        To                    | no  | -
        To + Pending In       | yes | Both
        From                  | no  | -
        From + Pending Out    | no  | -
        Both                  | no  | -
    """,
    ("A.2.4", StanzaType.UNSUBSCRIBED): """
        None                  | no  | -
        None + Pending Out    | no  | -
        None + Pending In     | yes | None
        None + Pending Out/In | yes | None + Pending Out
        To                    | no  | -
        To + Pending In       | yes | To
        From                  | yes | None
        From + Pending Out    | yes | None + Pending Out
        Both                  | yes | To
    """,
    ("A.3.1", StanzaType.SUBSCRIBE): """
        None                  | yes | None + Pending In
        None + Pending Out    | yes | None + Pending Out/In
        None + Pending In     | no  | -
        None + Pending Out/In | no  | -
        To                    | yes | To + Pending In
        To + Pending In       | no  | -
        From                  | no  | -
        From + Pending Out    | no  | -
        Both                  | no  | -
    """,
    ("A.3.2", StanzaType.UNSUBSCRIBE): """
        None                  | no  | -
        None + Pending Out    | no  | -
        None + Pending In     | yes | None
        None + Pending Out/In | yes | None + Pending Out
        To                    | no  | -
        To + Pending In       | yes | To
        From                  | yes | None
        From + Pending Out    | yes | None + Pending Out
        Both                  | yes | To
    """,
    ("A.3.3", StanzaType.SUBSCRIBED): """
        None                  | no  | -
        None + Pending Out    | yes | To
        None + Pending In     | no  | -
        None + Pending Out/In | yes | To + Pending In
        To                    | no  | -
        To + Pending In       | no  | -
        From                  | no  | -
        From + Pending Out    | yes | Both
        Both                  | no  | -
    """,
    ("A.3.4", StanzaType.UNSUBSCRIBED): """
        None                  | no  | -
        None + Pending Out    | yes | None
        None + Pending In     | no  | -
        None + Pending Out/In | yes | None + Pending In
        To                    | yes | None
        To + Pending In       | yes | None + Pending In
        From                  | no  | -
        From + Pending Out    | yes | From
        Both                  | yes | From
    """,
}


def _rows(section: str, stanza: StanzaType) -> list[tuple[State, bool, State]]:
    rows = []
    for line in RFC_TABLES[(section, stanza)].strip().splitlines():
        old, forward, new = (cell.strip() for cell in line.split("|"))
        rows.append((State(old), forward == "yes", State(old) if new == "-" else State(new)))
    return rows


@pytest.mark.parametrize(("section", "stanza"), list(RFC_TABLES))
def test_tables_match_the_rfc(section: str, stanza: StanzaType) -> None:
    table = OUTBOUND if section.startswith("A.2") else INBOUND
    rows = _rows(section, stanza)
    assert [old for old, _, _ in rows] == list(State)  # every state, in the RFC's order
    for old, forward, new in rows:
        t = table[(old, stanza)]
        assert (t.forward, t.new) == (forward, new), f"{section} {old.value}"


def test_every_state_and_stanza_has_an_entry() -> None:
    pairs = set(itertools.product(State, StanzaType))
    assert set(OUTBOUND) == pairs
    assert set(INBOUND) == pairs
    assert len(State) == 9


@given(states, types)
def test_entries_are_keyed_by_their_old_state(state: State, stanza: StanzaType) -> None:
    assert outbound(state, stanza).old is state
    assert inbound(state, stanza).old is state


@given(states, types, st.booleans())
def test_transitions_never_produce_an_invalid_state(
    state: State, stanza: StanzaType, pre_approved: bool
) -> None:
    for t in (outbound(state, stanza), inbound(state, stanza, pre_approved=pre_approved)):
        assert isinstance(t.new, State)
        rebuilt = State.of(
            t.new.subscription, pending_out=t.new.pending_out, pending_in=t.new.pending_in
        )
        assert rebuilt is t.new
        # §A.1: a granted request is no longer pending.
        assert not (t.new.subscription.has_to and t.new.pending_out)
        assert not (t.new.subscription.has_from and t.new.pending_in)


@given(states, types)
def test_only_the_contact_creates_inbound_requests_and_grants_to(
    state: State, stanza: StanzaType
) -> None:
    out, inc = outbound(state, stanza), inbound(state, stanza)
    # What the user sends never makes the contact's request pending, nor grants 'to'.
    assert not (out.new.pending_in and not state.pending_in)
    assert not (out.new.subscription.has_to and not state.subscription.has_to)
    # What the contact sends never makes the user's request pending, nor grants 'from'.
    assert not (inc.new.pending_out and not state.pending_out)
    assert not (inc.new.subscription.has_from and not state.subscription.has_from)


@given(states, types, st.booleans())
def test_push_exactly_when_the_visible_item_changes(
    state: State, stanza: StanzaType, pre_approved: bool
) -> None:
    for t in (outbound(state, stanza), inbound(state, stanza, pre_approved=pre_approved)):
        visible_change = (t.old.subscription, t.old.pending_out) != (
            t.new.subscription,
            t.new.pending_out,
        )
        assert t.push == (visible_change or t.pre_approve)


@given(states, types)
def test_unchanged_inbound_stanzas_are_not_delivered(state: State, stanza: StanzaType) -> None:
    t = inbound(state, stanza)
    if not t.changed:
        assert not t.forward


def test_auto_reply_when_already_subscribed() -> None:
    # §3.1.3: the contact's server auto-replies 'subscribed' on the contact's behalf.
    for state in (State.FROM, State.FROM_PENDING_OUT, State.BOTH):
        t = inbound(state, StanzaType.SUBSCRIBE)
        assert t.auto_reply is StanzaType.SUBSCRIBED
        assert not t.forward
    assert inbound(State.NONE, StanzaType.SUBSCRIBE).auto_reply is None


def test_pre_approval_rows() -> None:
    # §3.4: 'subscribed' with no request pending records a pre-approval...
    for state in (State.NONE, State.NONE_PENDING_OUT, State.TO):
        t = outbound(state, StanzaType.SUBSCRIBED)
        assert t.pre_approve and not t.forward and not t.changed
        assert outbound(state, StanzaType.UNSUBSCRIBED).cancel_pre_approval
    # ...which approves the next request without bothering the user.
    assert INBOUND_PRE_APPROVED.keys() == {State.NONE, State.NONE_PENDING_OUT, State.TO}
    t = inbound(State.NONE, StanzaType.SUBSCRIBE, pre_approved=True)
    assert (t.new, t.forward, t.auto_reply) == (State.FROM, False, StanzaType.SUBSCRIBED)
    assert t.from_gained and t.push and t.cancel_pre_approval
    assert inbound(State.TO, StanzaType.SUBSCRIBE, pre_approved=True).new is State.BOTH
    assert (
        inbound(State.NONE_PENDING_OUT, StanzaType.SUBSCRIBE, pre_approved=True).new
        is State.FROM_PENDING_OUT
    )
    # A pre-approval means nothing for other stanzas or states.
    assert inbound(State.FROM, StanzaType.SUBSCRIBE, pre_approved=True) == inbound(
        State.FROM, StanzaType.SUBSCRIBE
    )
    assert inbound(State.NONE, StanzaType.SUBSCRIBED, pre_approved=True).new is State.NONE


def test_from_gained_and_lost() -> None:
    approve = outbound(State.NONE_PENDING_IN, StanzaType.SUBSCRIBED)
    assert approve.from_gained and not approve.from_lost
    cancel = outbound(State.BOTH, StanzaType.UNSUBSCRIBED)
    assert cancel.from_lost and cancel.new is State.TO
    contact_unsubscribes = inbound(State.FROM, StanzaType.UNSUBSCRIBE)
    assert contact_unsubscribes.from_lost and contact_unsubscribes.push


def test_state_parts() -> None:
    assert State.NONE_PENDING_OUT_IN.subscription is Subscription.NONE
    assert State.NONE_PENDING_OUT_IN.pending_out and State.NONE_PENDING_OUT_IN.pending_in
    assert State.of(Subscription.FROM, pending_out=True, pending_in=False) is State.FROM_PENDING_OUT
    # Impossible flag combinations collapse onto the granted subscription.
    assert State.of(Subscription.BOTH, pending_out=True, pending_in=True) is State.BOTH
    assert State.of(Subscription.TO, pending_out=True, pending_in=True) is State.TO_PENDING_IN
    assert Subscription.BOTH.has_to and Subscription.BOTH.has_from
    assert not Subscription.NONE.has_to


def _mirror(state: State) -> State:
    """The same relationship seen from the contact's side."""
    sub = state.subscription
    mirrored = {
        Subscription.NONE: Subscription.NONE,
        Subscription.TO: Subscription.FROM,
        Subscription.FROM: Subscription.TO,
        Subscription.BOTH: Subscription.BOTH,
    }[sub]
    return State.of(mirrored, pending_out=state.pending_in, pending_in=state.pending_out)


@given(st.lists(st.tuples(st.booleans(), types), max_size=30))
def test_two_servers_following_the_tables_stay_in_sync(
    steps: list[tuple[bool, StanzaType]],
) -> None:
    """Two users whose servers follow §A.2/§A.3 always hold mirror-image states."""
    sides = {True: State.NONE, False: State.NONE}  # True: alice's view of bob; False: bob's
    approved = {True: False, False: False}

    def receive(who: bool, stanza: StanzaType) -> None:
        t = inbound(sides[who], stanza, pre_approved=approved[who])
        sides[who] = t.new
        if t.cancel_pre_approval or t.new.subscription.has_from:
            approved[who] = False
        if t.auto_reply is not None:
            send(who, t.auto_reply, auto=True)

    def send(who: bool, stanza: StanzaType, *, auto: bool = False) -> None:
        t: Transition = outbound(sides[who], stanza)
        if not auto:  # a server's auto-reply does not go through the user's own table
            sides[who] = t.new
            if t.pre_approve:
                approved[who] = True
            if t.cancel_pre_approval:
                approved[who] = False
        if t.forward or auto:
            receive(not who, stanza)

    for who, stanza in steps:
        send(who, stanza)
        assert sides[False] is _mirror(sides[True]), steps
