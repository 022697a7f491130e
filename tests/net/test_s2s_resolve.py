"""Where a remote domain is served: RFC 2782 ordering, static routes, and the routes' syntax.

SRV lookups against a real DNS server are in tests/interop/test_s2s_srv.py.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from carewire.config_s2s import coerce_routes
from carewire.errors import ConfigError
from carewire.net.s2s_resolve import Resolver, SrvRecord, Target, order_srv, parse_hostport


def rec(priority: int, weight: int, target: str) -> SrvRecord:
    return SrvRecord(priority, weight, 5269, target)


def test_lower_priority_always_comes_first() -> None:
    records = [rec(20, 100, "late"), rec(10, 0, "early-a"), rec(10, 0, "early-b"), rec(30, 5, "x")]
    for seed in range(50):
        ordered = order_srv(records, random.Random(seed))
        assert [r.priority for r in ordered] == [10, 10, 20, 30]
        assert sorted(r.target for r in ordered[:2]) == ["early-a", "early-b"]


def test_weights_share_first_place_proportionally() -> None:
    records = [rec(10, 60, "heavy"), rec(10, 20, "light-1"), rec(10, 20, "light-2")]
    rng = random.Random(7)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(4000))
    assert 0.55 < firsts["heavy"] / 4000 < 0.65
    assert 0.15 < firsts["light-1"] / 4000 < 0.25


def test_weight_zero_keeps_a_small_chance() -> None:
    records = [rec(0, 0, "zero"), rec(0, 10, "ten")]
    rng = random.Random(1)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(2000))
    assert 0 < firsts["zero"] < 400  # 1 in 11 by RFC 2782's selection
    assert all(len(order_srv(records, rng)) == 2 for _ in range(10))


def test_every_record_appears_once() -> None:
    records = [rec(p, w, f"h{p}{w}") for p in (1, 2) for w in (0, 1, 5)]
    ordered = order_srv(records, random.Random(3))
    assert sorted(ordered, key=repr) == sorted(records, key=repr)


async def test_static_routes_come_before_dns() -> None:
    resolver = Resolver(
        routes={"Partner.test": "10.0.0.1:5269"}, tls_routes={"partner.test": "[::1]:5270"}
    )
    assert await resolver.targets("partner.test") == [
        Target("::1", 5270, direct_tls=True),
        Target("10.0.0.1", 5269),
    ]
    assert await resolver.address("10.0.0.1") == "10.0.0.1"


@pytest.mark.parametrize("bad", ["host", "host:", ":5269", "host:port"])
def test_malformed_routes(bad: str) -> None:
    with pytest.raises(ValueError, match=r"s2s\.routes\.x"):
        parse_hostport(bad, "s2s.routes.x")
    with pytest.raises(ConfigError):
        coerce_routes("s2s.routes", {"x.test": bad}, False)


def test_routes_from_the_environment() -> None:
    assert coerce_routes("CAREWIRE_S2S_ROUTES", "A.test=h:1, b.test=[::1]:2", True) == {
        "a.test": "h:1",
        "b.test": "[::1]:2",
    }
    with pytest.raises(ConfigError):
        coerce_routes("CAREWIRE_S2S_ROUTES", "a.test", True)


def test_pins_from_the_environment_and_toml() -> None:
    fp = "AB:" * 31 + "AB"
    assert coerce_routes("CAREWIRE_S2S_PINS", f"a.test={fp} {'c' * 64}", True) == {
        "a.test": "ab" * 32 + " " + "c" * 64
    }
    with pytest.raises(ConfigError, match="SHA-256"):
        coerce_routes("s2s.pins", {"a.test": "not-hex"}, False)
