"""The Web Connectivity plan (core.wcplan): OONI's endpoints, tags, control request,
ip_info flags and fetch priority, decided without any I/O."""

from __future__ import annotations

import pytest

from blockproof.core.wcplan import (
    MAX_ADDRESSES,
    MAX_ENDPOINTS,
    DepthPlan,
    FetchPriority,
    HelperEndpoint,
    Source,
    control_only,
    control_ports,
    control_request,
    dialable,
    endpoints,
    helper_endpoints,
    helper_ports,
    ip_info,
    looks_up_over_udp,
    lookup_tags,
    may_dial,
    probe_addresses,
    udp_only,
)
from blockproof.model.control import ControlDNS, ControlResponse

IP = "104.244.42.1"


# (url, depth, source) -> [(port, tls, fetch, tags)] for one address
ENDPOINT_CASES = [
    ("https://x.com/", 0, Source.SYSTEM,
     [(443, True, True, ("classic", "tcptls_experiment", "depth=0", "fetch_body=true"))]),
    ("http://x.com/", 0, Source.SYSTEM,
     [(80, False, True, ("classic", "depth=0", "fetch_body=true")),
      (443, True, False, ("classic", "tcptls_experiment", "depth=0", "fetch_body=false"))]),
    ("http://x.com/", 0, Source.UDP,
     [(80, False, True, ("depth=0", "fetch_body=true")),
      (443, True, False, ("tcptls_experiment", "depth=0", "fetch_body=false"))]),
    ("https://x.com/", 0, Source.CONTROL,
     [(443, True, True, ("tcptls_experiment", "depth=0", "fetch_body=true"))]),
    ("https://x.com/", 2, Source.SYSTEM,
     [(443, True, True, ("classic", "depth=2", "fetch_body=true"))]),
    # an explicit port is the only one, with or without TLS by the scheme
    ("http://x.com:8080/", 0, Source.SYSTEM,
     [(8080, False, True, ("classic", "depth=0", "fetch_body=true"))]),
    ("https://x.com:8443/", 1, Source.SYSTEM,
     [(8443, True, True, ("classic", "depth=1", "fetch_body=true"))]),
    ("http://x.com:443/", 0, Source.SYSTEM,
     [(443, False, True, ("classic", "depth=0", "fetch_body=true"))]),
]  # fmt: skip


@pytest.mark.parametrize(("url", "depth", "source", "expected"), ENDPOINT_CASES)
def test_endpoints_ports_tls_fetch_and_tags(
    url: str, depth: int, source: Source, expected: list[tuple[object, ...]]
) -> None:
    planned = endpoints(url, [IP], depth, source)
    assert [(e.port, e.tls, e.fetch, e.tags) for e in planned] == expected
    assert all(e.ip == IP and e.source is source for e in planned)


def test_endpoints_go_address_by_address() -> None:
    planned = endpoints("http://x.com/", ["1.1.1.1", "2001:db8::1"], 0, Source.SYSTEM)
    assert [e.address for e in planned] == [
        "1.1.1.1:80", "1.1.1.1:443", "[2001:db8::1]:80", "[2001:db8::1]:443",
    ]  # fmt: skip


def test_lookups() -> None:
    assert lookup_tags(0, Source.SYSTEM) == ("classic", "depth=0")
    assert lookup_tags(3, Source.UDP) == ("depth=3",)
    assert looks_up_over_udp(0)
    assert not looks_up_over_udp(1)


def test_dialable_never_loopback_and_at_most_max_addresses() -> None:
    many = [f"93.184.215.{i}" for i in range(1, 20)]
    assert dialable(["127.0.0.1", "::1", "10.10.34.35", IP]) == ["10.10.34.35", IP]
    assert dialable(many) == many[:MAX_ADDRESSES]


def test_udp_only_and_control_only() -> None:
    assert udp_only(["1.1.1.1", "2.2.2.2", "127.0.0.1"], ["1.1.1.1"]) == ["2.2.2.2"]
    response = ControlResponse(dns=ControlDNS(addrs=("1.1.1.1", "3.3.3.3", "127.0.0.1")))
    assert control_only(response, {"1.1.1.1"}) == ["3.3.3.3"]
    assert control_only(None, set()) == []
    assert control_only(ControlResponse(), set()) == []


@pytest.mark.parametrize(
    ("url", "probe_ports", "helper"),
    [
        ("https://x.com/", (443,), (443,)),
        ("http://x.com/", (443, 80), (80, 443)),
        ("http://x.com:8080/", (8080,), (8080,)),
        ("https://x.com:8443/", (8443,), (8443,)),
    ],
)
def test_control_and_helper_ports(
    url: str, probe_ports: tuple[int, ...], helper: tuple[int, ...]
) -> None:
    assert control_ports(url) == probe_ports
    assert helper_ports(url) == helper


def test_control_request() -> None:
    request = control_request("http://例え.テスト/path", ["1.1.1.1", "2001:db8::1"])
    assert request.http_request == "http://xn--r8jz45g.xn--zckzah/path"
    assert "Host" not in request.http_request_headers
    assert request.http_request_headers["User-Agent"]
    assert request.tcp_connect == (
        "1.1.1.1:443", "1.1.1.1:80", "[2001:db8::1]:443", "[2001:db8::1]:80",
    )  # fmt: skip
    assert probe_addresses(request) == ["1.1.1.1", "1.1.1.1", "2001:db8::1", "2001:db8::1"]


def test_helper_endpoints_probe_first_no_duplicates_only_dialable() -> None:
    planned = helper_endpoints(
        ["1.1.1.1:443", "1.1.1.1:80", "10.0.0.1:443"],
        ["1.1.1.1", "8.8.8.8"],
        (80, 443),
        host_is_name=True,
    )
    assert planned == [
        HelperEndpoint("1.1.1.1:443", "1.1.1.1", 443, tls=True),
        HelperEndpoint("1.1.1.1:80", "1.1.1.1", 80, tls=False),
        HelperEndpoint("8.8.8.8:80", "8.8.8.8", 80, tls=False),
        HelperEndpoint("8.8.8.8:443", "8.8.8.8", 443, tls=True),
    ]
    by_address = helper_endpoints([], ["1.1.1.1"], (443,), host_is_name=False)
    assert by_address == [HelperEndpoint("1.1.1.1:443", "1.1.1.1", 443, tls=False)]
    many = [f"93.184.{i // 250}.{i % 250 + 1}" for i in range(100)]
    assert len(helper_endpoints([], many, (443,), host_is_name=True)) == MAX_ENDPOINTS
    with pytest.raises(ValueError):
        helper_endpoints(["not an endpoint"], [], (443,), host_is_name=True)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("10.0.0.1", False),
        ("127.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("fe80::1%eth0", False),
        ("not an address", False),
    ],
)
def test_may_dial(address: str, allowed: bool) -> None:
    assert may_dial(address) is allowed


def test_ip_info_flags_in_order() -> None:
    info = ip_info(
        ["1.1.1.1", "1.1.1.1", "10.10.34.35"],
        ["1.1.1.1", "8.8.8.8"],
        {"1.1.1.1"},
        lambda ip: 13335 if ip == "1.1.1.1" else 0,
    )
    assert [(ip, i.flags, i.asn) for ip, i in info.items()] == [
        ("1.1.1.1", 1 | 2 | 8, 13335),
        ("10.10.34.35", 1 | 4, 0),
        ("8.8.8.8", 2, 0),
    ]


# -- the fetch priority


def test_the_first_asker_fetches_and_the_others_are_refused() -> None:
    priority = FetchPriority()
    priority.expect(Source.SYSTEM)
    priority.expect(Source.SYSTEM)
    assert priority.may_fetch(Source.SYSTEM) is True
    assert priority.claimed
    assert priority.may_fetch(Source.SYSTEM) is False
    assert priority.may_fetch(Source.CONTROL) is False


def test_a_lower_source_waits_for_every_higher_one() -> None:
    priority = FetchPriority()
    priority.expect(Source.SYSTEM)
    priority.expect(Source.UDP)
    priority.expect(Source.CONTROL)
    assert priority.may_fetch(Source.CONTROL) is None  # the system's may still fetch
    assert priority.may_fetch(Source.UDP) is None
    priority.finished(Source.SYSTEM)  # failed
    assert priority.may_fetch(Source.CONTROL) is None  # the UDP one's turn
    assert priority.may_fetch(Source.UDP) is True
    assert priority.may_fetch(Source.CONTROL) is False


def test_depth_plan_admits_each_address_once_and_expects_its_fetches() -> None:
    plan = DepthPlan("http://x.com/", 0)
    first = plan.admit(["1.1.1.1", "1.1.1.1", "2.2.2.2"], Source.SYSTEM)
    assert [e.address for e in first] == ["1.1.1.1:80", "1.1.1.1:443", "2.2.2.2:80", "2.2.2.2:443"]
    assert plan.admit(["2.2.2.2", "3.3.3.3"], Source.CONTROL)[0].address == "3.3.3.3:80"
    assert plan.dialed == {"1.1.1.1", "2.2.2.2", "3.3.3.3"}
    assert plan.priority.may_fetch(Source.CONTROL) is None  # two system fetches pending
    plan.priority.finished(Source.SYSTEM)
    plan.priority.finished(Source.SYSTEM)
    assert plan.priority.may_fetch(Source.CONTROL) is True
    assert DepthPlan("https://Ex\u00e4mple.COM/", 1).host == "xn--exmple-cua.com"
