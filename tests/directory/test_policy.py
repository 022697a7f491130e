"""The directory's pure rules: PINs, addresses, logins, invitation states, who may message whom."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.directory.model import (
    INVITATION_TRANSITIONS,
    DeviceState,
    GroupId,
    InvalidEmailError,
    InvalidFieldError,
    InvalidTransitionError,
    InvitationEvent,
    InvitationStatus,
    MemberStatus,
    OrganisationId,
    OrgKind,
    Permission,
    PermissionMode,
    PinPolicyError,
)
from carewire.directory.policy import (
    Link,
    OrgGraph,
    check_login,
    check_pin,
    device_state,
    login_base,
    login_candidates,
    may_message,
    may_reach,
    member_status,
    next_status,
    normalize_email,
    permits,
    pin_problem,
    slugify,
)

# -- PINs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["2580", "1357", "0852", "9630", "2100", "1899", "1235"])
def test_acceptable_four_digit_pins(pin: str) -> None:
    assert check_pin(pin, 4) == pin


@pytest.mark.parametrize(
    ("pin", "length", "why"),
    [
        ("1111", 4, "repeat"),
        ("0000", 4, "repeat"),
        ("1234", 4, "run"),
        ("4321", 4, "run"),
        ("0123", 4, "run"),
        ("9876", 4, "run"),
        ("1984", 4, "year"),
        ("2024", 4, "year"),
        ("1900", 4, "year"),
        ("2099", 4, "year"),
        ("123", 4, "exactly 4"),
        ("12345", 4, "exactly 4"),
        ("12a4", 4, "exactly 4"),
        ("١٢٣٤", 4, "exactly 4"),  # Arabic-Indic digits are not ASCII digits
        (" 258", 4, "exactly 4"),
        ("258013", 4, "exactly 4"),
        ("999999", 6, "repeat"),
        ("123456", 6, "run"),
        ("654321", 6, "run"),
        ("2580", 6, "exactly 6"),
    ],
)
def test_refused_pins(pin: str, length: int, why: str) -> None:
    with pytest.raises(PinPolicyError) as refused:
        check_pin(pin, length)
    assert why in refused.value.message
    assert refused.value.field == "pin"


def test_six_digit_pins_may_look_like_years() -> None:
    assert check_pin("198401", 6) == "198401"
    assert check_pin("258013", 6) == "258013"


@given(st.text(alphabet="0123456789", min_size=4, max_size=4))
def test_four_digit_policy_property(pin: str) -> None:
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in itertools.pairwise(digits)}
    trivial = len(set(digits)) == 1 or steps in ({1}, {-1}) or 1900 <= int(pin) <= 2099
    assert (pin_problem(pin, 4) is None) is not trivial


@given(st.text(max_size=8), st.sampled_from([4, 6]))
def test_non_digit_or_wrong_length_pins_are_refused(pin: str, length: int) -> None:
    if len(pin) != length or not all("0" <= c <= "9" for c in pin):
        assert pin_problem(pin, length) is not None


def test_pin_lengths_other_than_four_or_six_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        pin_problem("12345", 5)


# -- e-mail addresses and logins -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        ("JDoe@Example.ORG", "jdoe@example.org"),
        ("  a.b+tag@sub.example.co.uk ", "a.b+tag@sub.example.co.uk"),
        ("o'hara@example.org", "o'hara@example.org"),
    ],
)
def test_good_addresses_are_stored_lower_case(address: str, stored: str) -> None:
    assert normalize_email(address) == stored


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plainaddress",
        "@example.org",
        "jdoe@",
        "jdoe@example",
        "jdoe@@example.org",
        "j doe@example.org",
        "jdoe@exa mple.org",
        ".jdoe@example.org",
        "jdoe.@example.org",
        "j..doe@example.org",
        "jdoe@-example.org",
        "jdoe@example..org",
        '"quoted"@example.org',
        "jdoe@[192.0.2.1]",
        "jdoe@example.org>",
        "<jdoe@example.org>",
        "x" * 65 + "@example.org",
        "a@" + "b" * 250 + ".org",
        "jdoe@example.c0m",
    ],
)
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidEmailError) as refused:
        normalize_email(address)
    assert refused.value.message == (
        f"Invalid email address: {address.strip()}. No invitations were sent."
    )
    assert refused.value.code == "invalid-email"


@given(st.emails())
def test_generated_addresses_round_trip(address: str) -> None:
    try:
        stored = normalize_email(address)
    except InvalidEmailError:
        return  # quoted parts, IP literals and exotic TLDs are refused on purpose
    assert stored == stored.lower() == normalize_email(stored)


def test_login_suggestions() -> None:
    assert login_base("JDoe@example.org") == "jdoe"
    assert login_base("o'hara.m+x@example.org") == "ohara.mx"
    assert login_base("..@example.org") == "user"
    assert list(itertools.islice(login_candidates("jdoe@x.org"), 3)) == ["jdoe", "jdoe2", "jdoe3"]
    long = "a" * 80 + "@x.org"
    assert all(len(c) <= 64 for c in itertools.islice(login_candidates(long), 15))
    assert list(itertools.islice(login_candidates(long), 11))[10].endswith("11")


@given(st.emails())
def test_suggested_logins_are_valid_logins(address: str) -> None:
    for login in itertools.islice(login_candidates(address), 3):
        assert check_login(login) == login


@pytest.mark.parametrize("login", ["", "-x", "Jane Doe", "jane@doe", "é", "x" * 65])
def test_bad_logins(login: str) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        check_login(login)
    assert refused.value.field == "login"


def test_slugs() -> None:
    assert slugify("Physical Therapy") == "physical-therapy"
    assert slugify("  St. Dominic's  ") == "st-dominic-s"
    assert slugify("!!!") == "group"


# -- invitation statuses --------------------------------------------------------------------------


def test_the_seed_transitions() -> None:
    s, e = InvitationStatus, InvitationEvent
    assert next_status(s.PENDING, e.MAIL_ACCEPTED) is s.EMAIL_SENT
    assert next_status(s.PENDING, e.MAIL_REFUSED) is s.FAILURE
    assert next_status(s.EMAIL_SENT, e.CLICKED) is s.USER_CLICKED
    assert next_status(s.USER_CLICKED, e.REGISTERED) is s.REGISTERED
    for status in (s.PENDING, s.EMAIL_SENT, s.FAILURE, s.USER_CLICKED):
        assert next_status(status, e.RESENT) is s.PENDING
    with pytest.raises(InvalidTransitionError):
        next_status(s.REGISTERED, e.RESENT)  # "You can resend any invitation except …"
    with pytest.raises(InvalidTransitionError):
        next_status(s.EMAIL_SENT, e.REGISTERED)  # the click is recorded first


@given(st.sampled_from(InvitationStatus), st.sampled_from(InvitationEvent))
def test_every_pair_is_in_the_table_or_refused(
    status: InvitationStatus, event: InvitationEvent
) -> None:
    if (status, event) in INVITATION_TRANSITIONS:
        assert next_status(status, event) is INVITATION_TRANSITIONS[(status, event)]
    else:
        with pytest.raises(InvalidTransitionError):
            next_status(status, event)


def test_registered_is_terminal() -> None:
    assert not [k for k in INVITATION_TRANSITIONS if k[0] is InvitationStatus.REGISTERED]


# -- member status and devices ------------------------------------------------------------------


def test_member_status_from_presence() -> None:
    assert member_status("chat") is MemberStatus.AVAILABLE
    assert member_status("dnd") is MemberStatus.BUSY
    for show in ("away", "xa", "offline"):
        assert member_status(show) is MemberStatus.NOT_AVAILABLE
    assert member_status(None) is MemberStatus.NONE
    assert member_status("") is MemberStatus.NONE


def test_device_states() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert device_state("Registered", None, None) is DeviceState.ACTIVE_PUSH
    assert device_state("Disconnected", True, None) is DeviceState.ACTIVE_PUSH
    assert device_state("Registered", False, None) is DeviceState.ACTIVE_NO_PUSH
    assert device_state("Registered", True, now) is DeviceState.WIPE_REQUESTED
    assert device_state("Unregistered", True, now, now) is DeviceState.LOGGED_OUT  # wiped
    assert device_state(None, None, None) is DeviceState.LOGGED_OUT
    # A wipe asked for a logged-out device waits for it; a confirmed wipe is history.
    assert device_state("Unregistered", True, now) is DeviceState.WIPE_REQUESTED
    assert device_state("Registered", True, now, now) is DeviceState.ACTIVE_PUSH


# -- who may message whom ----------------------------------------------------------------------

H = OrgKind.HOSPITAL
P = OrgKind.PRACTICE
NOBODY: frozenset[GroupId] = frozenset()


def graph(kinds: dict[str, OrgKind], *links: str) -> tuple[OrgGraph, dict[str, OrganisationId]]:
    """Organisations named by letters; links like ``"A-B"`` (active, everyone on both sides)."""
    ids = {name: OrganisationId(i + 1) for i, name in enumerate(kinds)}
    pairs = {}
    for link in links:
        a, b = (ids[x] for x in link.split("-"))
        pairs[frozenset((a, b))] = Link(permissions={})
    return OrgGraph(kinds={ids[n]: k for n, k in kinds.items()}, links=pairs), ids


def talk(g: OrgGraph, x: OrganisationId, y: OrganisationId) -> bool:
    return may_message(g, (x, NOBODY), (y, NOBODY))


def test_seed_example_1_a_hospitals_community() -> None:
    """A—B, A—C (all hospitals) ⇒ B↔C allowed (A's community)."""
    g, o = graph({"A": H, "B": H, "C": H}, "A-B", "A-C")
    assert talk(g, o["B"], o["C"]) and talk(g, o["C"], o["B"])


def test_seed_example_2_two_levels_apart() -> None:
    """Add B—D ⇒ A↔D allowed (B's community); C↔D not (two levels apart, no shared hospital)."""
    g, o = graph({"A": H, "B": H, "C": H, "D": H}, "A-B", "A-C", "B-D")
    assert talk(g, o["A"], o["D"])
    assert not talk(g, o["C"], o["D"]) and not talk(g, o["D"], o["C"])


def test_seed_example_3_a_hospital_with_practices_and_a_hospital() -> None:
    """Hospital A—Practice 1, A—Hospital B, A—Practice 2 ⇒ all of them may communicate."""
    g, o = graph({"A": H, "P1": P, "B": H, "P2": P}, "A-P1", "A-B", "A-P2")
    for x, y in itertools.permutations(o.values(), 2):
        assert talk(g, x, y)


def test_seed_example_4_practices_have_no_community() -> None:
    """Add Practice 1—Hospital C ⇒ A↔C not allowed (only through a practice); C↔P1 allowed."""
    g, o = graph({"A": H, "P1": P, "B": H, "P2": P, "C": H}, "A-P1", "A-B", "A-P2", "P1-C")
    assert not talk(g, o["A"], o["C"])
    assert talk(g, o["C"], o["P1"])
    assert not may_reach(g, o["A"], o["C"])


def test_seed_example_5_a_second_hospitals_community() -> None:
    """Add Hospital B—Practice 3 ⇒ A↔Practice 3 allowed (B's community); P3↔P2 not."""
    g, o = graph(
        {"A": H, "P1": P, "B": H, "P2": P, "C": H, "P3": P},
        "A-P1",
        "A-B",
        "A-P2",
        "P1-C",
        "B-P3",
    )
    assert talk(g, o["A"], o["P3"])
    assert not talk(g, o["P3"], o["P2"])


def test_same_organisation_always() -> None:
    g, o = graph({"A": H})
    assert talk(g, o["A"], o["A"])


def test_permissions_filter_both_sides() -> None:
    g, o = graph({"A": H, "B": H})
    a, b = o["A"], o["B"]
    icu = GroupId(7)
    link = Link(
        permissions={
            a: Permission(mode=PermissionMode.GROUPS, groups=frozenset({icu})),
            b: Permission(),
        }
    )
    g = OrgGraph(kinds=g.kinds, links={frozenset((a, b)): link})
    assert may_message(g, (a, frozenset({icu})), (b, NOBODY))
    assert not may_message(g, (a, NOBODY), (b, NOBODY))
    assert may_message(g, (b, NOBODY), (a, frozenset({icu, GroupId(8)})))
    none = OrgGraph(
        kinds=g.kinds,
        links={frozenset((a, b)): Link(permissions={b: Permission(mode=PermissionMode.NONE)})},
    )
    assert not may_message(none, (a, NOBODY), (b, NOBODY))  # "temporarily ended"
    assert may_reach(none, a, b)


def test_community_members_use_their_permission_toward_the_hospital() -> None:
    g, o = graph({"H": H, "X": P, "Y": P})
    h, x, y = o["H"], o["X"], o["Y"]
    ward = GroupId(3)
    links = {
        frozenset((h, x)): Link(
            permissions={x: Permission(mode=PermissionMode.GROUPS, groups=frozenset({ward}))}
        ),
        frozenset((h, y)): Link(permissions={}),
    }
    g = OrgGraph(kinds=g.kinds, links=links)
    assert may_message(g, (x, frozenset({ward})), (y, NOBODY))
    assert not may_message(g, (x, NOBODY), (y, NOBODY))
    assert not may_message(g, (y, NOBODY), (x, NOBODY))  # symmetric


def test_a_direct_affiliation_decides_alone() -> None:
    g, o = graph({"H": H, "X": P, "Y": P}, "H-X", "H-Y")
    x, y = o["X"], o["Y"]
    links = dict(g.links)
    links[frozenset((x, y))] = Link(permissions={x: Permission(mode=PermissionMode.NONE)})
    g = OrgGraph(kinds=g.kinds, links=links)
    assert not talk(g, x, y)


kinds = st.lists(st.sampled_from([H, P]), min_size=1, max_size=6)


@given(kinds, st.data())
def test_the_rule_is_symmetric_and_needs_a_path(ks: list[OrgKind], data: st.DataObject) -> None:
    ids = [OrganisationId(i + 1) for i in range(len(ks))]
    pairs = [frozenset(p) for p in itertools.combinations(ids, 2)]
    chosen = data.draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    modes = st.sampled_from(list(PermissionMode))
    links = {}
    for pair in chosen:
        perms = {}
        for org in pair:
            mode = data.draw(modes)
            groups = frozenset({GroupId(1)}) if mode is PermissionMode.GROUPS else frozenset()
            perms[org] = Permission(mode=mode, groups=groups)
        links[pair] = Link(permissions=perms)
    g = OrgGraph(kinds=dict(zip(ids, ks, strict=True)), links=links)
    memberships = st.sampled_from([NOBODY, frozenset({GroupId(1)})])
    for x, y in itertools.product(ids, ids):
        u, v = data.draw(memberships), data.draw(memberships)
        allowed = may_message(g, (x, u), (y, v))
        assert allowed == may_message(g, (y, v), (x, u))
        if allowed and x != y:
            assert may_reach(g, x, y)
        if x != y and not may_reach(g, x, y):
            assert not allowed


def test_permits() -> None:
    assert permits(Permission(), NOBODY)
    assert not permits(Permission(mode=PermissionMode.NONE), frozenset({GroupId(1)}))
    only = Permission(mode=PermissionMode.GROUPS, groups=frozenset({GroupId(1), GroupId(2)}))
    assert permits(only, frozenset({GroupId(2)})) and not permits(only, frozenset({GroupId(3)}))
