"""A platform's verdicts folded by function: blocked how, reachable, down, or unknown."""

from __future__ import annotations

from typing import Any

import pytest

from blockproof.model.measurement import Measurement
from blockproof.platforms import Endpoint, Platform
from blockproof.probe.functions import by_function

PLATFORM = Platform(
    id="p",
    name="P",
    domains=("p.example",),
    tests=(),
    endpoints=(
        Endpoint("https://p.example/", "web"),
        Endpoint("https://www.p.example/", "web"),
        Endpoint("https://api.p.example/", "api"),
        Endpoint("https://img.p.example/", "media"),
    ),
)

BLOCKED_TLS = {"blocking": "http-failure", "accessible": False, "x_verdict": {"method": "tls"}}
BLOCKED_DNS = {"blocking": "dns", "accessible": False, "x_verdict": {"method": "dns"}}
OK = {"blocking": False, "accessible": True, "x_verdict": {"method": "none"}}
DOWN = {"blocking": False, "accessible": False, "x_verdict": {"method": "down"}}
UNDETERMINED = {"blocking": None, "accessible": None, "x_verdict": {"method": "undetermined"}}


def _m(url: str, keys: dict[str, Any]) -> Measurement:
    return Measurement(
        test_name="web_connectivity",
        test_version="0.5.28",
        input=url,
        measurement_start_time="2024-02-17 16:05:02",
        test_start_time="2024-02-17 16:05:00",
        test_keys=dict(keys),
    )


# (case, {url: test keys}, {function: expected text})
CASES = [
    ("all blocked by tls",
     {"https://p.example/": BLOCKED_TLS, "https://www.p.example/": BLOCKED_TLS,
      "https://api.p.example/": BLOCKED_TLS, "https://img.p.example/": BLOCKED_TLS},
     {"web": "blocked by tls", "api": "blocked by tls", "media": "blocked by tls"}),
    ("web blocked two ways, api reachable, media down",
     {"https://p.example/": BLOCKED_TLS, "https://www.p.example/": BLOCKED_DNS,
      "https://api.p.example/": OK, "https://img.p.example/": DOWN},
     {"web": "blocked by dns, tls", "api": "reachable",
      "media": "down for the control too (not censorship)"}),
    ("one of two web endpoints blocked",
     {"https://p.example/": OK, "https://www.p.example/": BLOCKED_TLS,
      "https://api.p.example/": UNDETERMINED, "https://img.p.example/": OK},
     {"web": "blocked by tls (1 of 2)", "api": "could not be determined",
      "media": "reachable"}),
    ("an endpoint not measured is not reachable",
     {"https://p.example/": OK},
     {"web": "could not be determined", "api": "could not be determined",
      "media": "could not be determined"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("verdicts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_by_function(verdicts: dict[str, dict[str, Any]], expected: dict[str, str]) -> None:
    statuses = by_function(PLATFORM, [_m(url, keys) for url, keys in verdicts.items()])
    assert [s.function for s in statuses] == ["web", "api", "media"]
    assert {s.function: s.text for s in statuses} == expected
