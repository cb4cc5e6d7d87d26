"""Bypasses in the lab: which methods restore access to a blocked URL, and which do not.

Table-driven: each row is a lab scenario, a blocked URL, and the expected outcome of
each bypass: DNS over HTTPS (to a resolver outside the censor), ClientHello
fragmentation, and the SOCKS5 and HTTP CONNECT proxies outside the censor
(``vpn.proxy.example`` in the lab's internet).
"""

from __future__ import annotations

import asyncio

import pytest

from blockproof.lab.check import resolve_scenario_path
from blockproof.lab.run import run_scenario
from blockproof.netx.proxy import parse_proxy
from blockproof.probe.followups import FollowUps

pytestmark = pytest.mark.lab

VIAS = (
    parse_proxy("socks5://vpn.proxy.example:1080"),
    parse_proxy("http://vpn.proxy.example:3128"),
)

CASES = [
    # scenario, URL, {bypass: restored?}
    ("dns-nxdomain", "https://x.com/",
     {"doh": True, "fragment": False, "socks5 proxy": True, "http proxy": True}),
    ("tls-reset", "https://x.com/",
     {"doh": False, "fragment": False, "socks5 proxy": True, "http proxy": True}),
    ("tls-reset-first-segment", "https://x.com/",
     {"doh": False, "fragment": True, "socks5 proxy": True, "http proxy": True}),
]  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("scenario", "url", "expected"), CASES, ids=[c[0] for c in CASES])
def test_which_bypass_restores_access(scenario: str, url: str, expected: dict[str, bool]) -> None:
    follow = FollowUps(bypass=True, vias=VIAS)
    [m] = asyncio.run(run_scenario(resolve_scenario_path(scenario), [url], follow_up=follow))
    assert m.test_keys["blocking"] not in (False, None), "the direct measurement is blocked"
    attempts = {a["method"]: a for a in m.test_keys["x_circumvention"]}
    assert {k: a["restored"] for k, a in attempts.items()} == expected, attempts


@pytest.mark.timeout(60)
def test_an_accessible_url_gets_no_bypass_attempts() -> None:
    follow = FollowUps(bypass=True, vias=VIAS)
    [m] = asyncio.run(
        run_scenario(
            resolve_scenario_path("tls-reset"), ["https://www.example.org/"], follow_up=follow
        )
    )
    assert m.test_keys["accessible"] is True
    assert "x_circumvention" not in m.test_keys


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ftp://h:1", "must be socks5://HOST:PORT or http://HOST:PORT"),
        ("socks5://h", "needs a host and a port"),
        ("socks5://:1080", "needs a host and a port"),
        ("http://h:3128/path", "takes no path"),
        ("socks5://u:p@h:1080", "takes no path, query or credentials"),
    ],
)
def test_bad_via_is_refused_with_a_sentence(text: str, problem: str) -> None:
    from blockproof.errors import InputError

    with pytest.raises(InputError, match=problem):
        parse_proxy(text)
