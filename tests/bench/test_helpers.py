"""The benchmarks' pure helpers: generated directory data, request mixes, reports, comparisons."""

from __future__ import annotations

from typing import Any

from bench.directory import (
    department_names,
    invitation_csv,
    invitation_requests,
    page_report,
    person_name,
    user_requests,
)
from bench.orgsetup import (
    directory_names,
    group_jid,
    group_member_names,
    is_ready,
    teams_of,
)
from bench.run import LOGIN_PARITY, login_comparison

from carewire.directory.csvfiles import parse_csv


def test_invitation_csv_is_read_by_the_product_as_generated() -> None:
    text = invitation_csv(1200, 60, "inv.example")
    rows, problems = parse_csv(text)
    assert problems == [] and len(rows) == 1200
    assert len({r.email for r in rows}) == 1200
    assert {r.department for r in rows} == set(department_names(60))
    assert rows[0].email == "i00001@inv.example"
    assert (rows[0].first_name, rows[0].last_name) == person_name(0)


def test_names_are_deterministic_and_varied() -> None:
    assert person_name(7) == person_name(7)
    assert len({person_name(i)[1] for i in range(15_000)}) == 3125
    assert len(set(department_names(60))) == 60


def test_request_mixes_interleave_their_kinds() -> None:
    users = user_requests(4, 3)
    assert len(users) == 15
    assert [k for k, _ in users[:5]] == [k for k, _ in users[5:10]]
    assert ("page 50 of 10", "/orgs/4/users?page=50") in users
    invitations = invitation_requests(9, 2, 15_000)
    assert {k for k, _ in invitations} == {
        "first page",
        "last name filter",
        "email filter",
        "status filter",
        "page 50",
    }
    assert all(path.startswith("/orgs/9/invitations") for _, path in invitations)
    assert ("email filter", "/orgs/9/invitations?email=i0037") in invitations


def test_page_report_gives_the_worst_kind() -> None:
    report = page_report({"a": [0.010] * 20, "b": [0.001] * 19 + [0.5]})
    assert report["kinds"]["a"]["p95"] == 10.0
    assert report["kinds"]["b"]["p95"] == 1.0 and report["kinds"]["b"]["max"] == 500.0
    assert report["worst_p95_ms"] == 10.0
    assert report["overall"]["count"] == 40


def test_directory_pools_and_teams() -> None:
    assert directory_names(2) == ["dir00001", "dir00002"]
    assert group_member_names(1) == ["grp00001"]
    teams = teams_of(directory_names(45), size=20)
    assert list(teams) == ["Bench Team 001", "Bench Team 002", "Bench Team 003"]
    assert [len(t) for t in teams.values()] == [20, 20, 5]


def test_prepared_state() -> None:
    state: dict[str, Any] = {
        "organisation": 3,
        "password": "pw",
        "directory_users": 2000,
        "groups": {"200": {"id": 7, "slug": "bench-group-200", "members": 200}},
    }
    assert is_ready(state, directory=2000, members=200, password="pw")
    assert not is_ready(state, directory=2001, members=0, password="pw")
    assert not is_ready(state, directory=0, members=50, password="pw")
    assert not is_ready(state, directory=10, members=0, password="other")
    assert group_jid(state, 200, "d.example") == "bench-group-200@groups.d.example"
    assert group_jid(state, 50, "d.example") is None


def _login(rate: float, p99: float, failed: int = 0) -> dict[str, Any]:
    return {
        "params": {"accounts": 2000},
        "metrics": {
            "completed": 2000 - failed,
            "failed": failed,
            "logins_per_s": rate,
            "latency_ms": {"p50": p99 / 2, "p99": p99},
            "phase_ms": {"bind": {"p50": 10.0}},
            "other_cpu_pct": 2.0,
        },
    }


def test_login_comparison_targets() -> None:
    same = login_comparison(_login(600, 400), _login(580, 420))
    assert all(t["pass"] for t in same["targets"].values())
    assert same["metrics"]["logins_per_s_ratio"] == round(580 / 600, 3)
    slower = login_comparison(_login(600, 400), _login(600 * LOGIN_PARITY - 1, 400))
    assert not slower["targets"]["logins_per_s_vs_plain"]["pass"]
    worse_p99 = login_comparison(_login(600, 400), _login(600, 400 / LOGIN_PARITY + 1))
    assert not worse_p99["targets"]["p99_vs_plain"]["pass"]
    failing = login_comparison(_login(600, 400), _login(600, 400, failed=3))
    assert not failing["targets"]["directory_logins_per_s"]["pass"]


def test_cpu_per_message_from_the_window_share_and_rate() -> None:
    from bench.clinical.chat_tracking import _us_per_msg

    assert _us_per_msg(33.0, 3000.0) == 110.0  # a third of a core at 3,000 msg/s
    assert _us_per_msg(None, 3000.0) is None and _us_per_msg(50.0, 0) is None
