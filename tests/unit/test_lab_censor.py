"""The censor's pure decisions: what a DPI box reads from a flow's opening, which rule acts."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from blockproof.lab.censor import Censor, DNSOutcome, read_opening
from blockproof.lab.scenario import parse_scenario
from blockproof.lab.sni import NotClientHello, parse_client_hello


def client_hello(server_name: str | None) -> bytes:
    """The real first flight of Python's TLS client for ``server_name``."""
    ctx = ssl.create_default_context()
    if server_name is None:
        ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("name", ["x.com", "pbs.twimg.com", "a" * 60 + ".example.org"])
def test_sni_of_a_real_client_hello(name: str) -> None:
    hello = parse_client_hello(client_hello(name))
    assert hello is not None
    assert hello.sni == name
    assert hello.complete


def test_client_hello_without_sni() -> None:
    hello = parse_client_hello(client_hello(None))
    assert hello is not None
    assert hello.sni is None


def test_sni_needs_the_bytes_that_carry_it() -> None:
    data = client_hello("x.com")
    assert parse_client_hello(data[:5]) is None
    assert parse_client_hello(data[:40]) is None
    for cut in range(1, len(data)):
        hello = parse_client_hello(data[:cut])
        assert hello is None or hello.sni == "x.com"


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x17\x03\x03\x00\x10" + b"\0" * 16])
def test_not_a_client_hello(data: bytes) -> None:
    with pytest.raises(NotClientHello):
        parse_client_hello(data)


HELLO = client_hello("x.com")
GET = b"GET / HTTP/1.1\r\nHost: X.com:80\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
PARTIAL = b"GET / HTTP/1.1\r\nHo"

OPENINGS: list[tuple[str, bytes, bytes, dict[str, Any]]] = [
    ("tls whole", HELLO, HELLO, {"protocol": "tls", "sni": "x.com", "sni_first_segment": "x.com"}),
    ("tls split before sni", HELLO[:20], HELLO,
     {"protocol": "tls", "sni": "x.com", "sni_first_segment": None}),
    ("tls incomplete", HELLO[:20], HELLO[:20], {"protocol": "incomplete"}),
    ("http", GET, GET, {"protocol": "http", "host": "x.com"}),
    ("http no host", GET10, GET10, {"protocol": "http", "host": None}),
    ("http incomplete", PARTIAL, PARTIAL, {"protocol": "incomplete"}),
    ("short method", b"GE", b"GE", {"protocol": "incomplete"}),
    ("garbage", b"\x00\x01hello", b"\x00\x01hello", {"protocol": "unknown"}),
    ("ssh", b"SSH-2.0-OpenSSH\r\n", b"SSH-2.0-OpenSSH\r\n", {"protocol": "unknown"}),
]  # fmt: skip


@pytest.mark.parametrize(("first", "buffered", "expected"), [o[1:] for o in OPENINGS],
                         ids=[o[0] for o in OPENINGS])  # fmt: skip
def test_read_opening(first: bytes, buffered: bytes, expected: dict[str, Any]) -> None:
    opening = read_opening(first, buffered)
    for key, value in expected.items():
        assert getattr(opening, key) == value


SCENARIO = parse_scenario(
    {
        "rule": [
            {"layer": "dns", "match": ["blocked.example.org"], "action": "nxdomain"},
            {"layer": "dns", "match": ["*.twimg.com"], "action": "inject", "answer": "10.0.0.1"},
            {"layer": "dns", "match": ["t.co"], "action": "forge", "answer": "127.0.0.1",
             "resolvers": "system"},
            {"layer": "dns", "match": ["*"], "action": "servfail", "resolvers": "udp"},
            {"layer": "tcp", "match": ["api.x.com"], "action": "blackhole", "ports": [443]},
            {"layer": "tcp", "ips": ["93.184.215.14"], "action": "refuse"},
            {"layer": "tls", "match": ["x.com"], "action": "reset", "inspect": "first_segment"},
            {"layer": "tls", "match": ["*.x.com", "x.com"], "action": "fin"},
            {"layer": "http", "match": ["twitter.com"], "action": "blockpage"},
            {"layer": "throttle", "match": ["*.twimg.com"], "rate_kbps": 150},
        ],
        "host": [{"name": "blocked.example.org", "addresses": ["198.51.100.7"]}],
    },
    source="table",
    name="table",
)  # fmt: skip
CENSOR = Censor(SCENARIO)

DNS_CASES = [
    ("nxdomain", "blocked.example.org", "system", DNSOutcome("NXDOMAIN")),
    ("untouched", "x.com", "system", DNSOutcome(addresses=("104.244.42.1", "104.244.42.129"))),
    ("unknown name", "nowhere.example", "system", DNSOutcome("NXDOMAIN")),
    ("inject keeps the truth", "pbs.twimg.com", "system",
     DNSOutcome(addresses=("151.101.36.159",), injected=("10.0.0.1",))),
    ("system-only forge", "t.co", "system", DNSOutcome(addresses=("127.0.0.1",))),
    ("system-only forge spares udp", "t.co", "udp", DNSOutcome("SERVFAIL")),
    ("udp-only servfail", "www.example.org", "udp", DNSOutcome("SERVFAIL")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "expected"), [c[1:] for c in DNS_CASES],
                         ids=[c[0] for c in DNS_CASES])  # fmt: skip
def test_dns_rules(name: str, path: str, expected: DNSOutcome) -> None:
    assert CENSOR.dns(name, path) == expected


def test_clean_path_sees_the_truth() -> None:
    assert CENSOR.dns("blocked.example.org", "system", censored=False) == DNSOutcome(
        addresses=("198.51.100.7",)
    )


@pytest.mark.parametrize(
    ("ip", "port", "action"),
    [("104.244.42.66", 443, "blackhole"), ("104.244.42.66", 80, None),
     ("93.184.215.14", 80, "refuse"), ("104.244.42.1", 443, None)],
)  # fmt: skip
def test_tcp_rules(ip: str, port: int, action: str | None) -> None:
    rule = CENSOR.tcp(ip, port)
    assert (rule.action if rule else None) == action


@pytest.mark.parametrize(
    ("first", "buffered", "action"),
    [(HELLO, HELLO, "reset"),  # first-segment inspector sees x.com
     (HELLO[:20], HELLO, "fin"),  # split hello: only the reassembling rule sees it
     (client_hello("api.x.com"), client_hello("api.x.com"), "fin"),
     (client_hello("www.example.org"), client_hello("www.example.org"), None)],
    ids=["first-segment", "split", "subdomain", "other"],
)  # fmt: skip
def test_tls_rules(first: bytes, buffered: bytes, action: str | None) -> None:
    rule = CENSOR.tls(read_opening(first, buffered))
    assert (rule.action if rule else None) == action


def test_http_and_throttle_rules() -> None:
    request = b"GET / HTTP/1.1\r\nHost: twitter.com\r\n\r\n"
    rule = CENSOR.http(read_opening(request, request))
    assert rule is not None
    assert rule.action == "blockpage"
    throttle = CENSOR.throttle("video.twimg.com")
    assert throttle is not None
    assert throttle.rate_kbps == 150
    assert CENSOR.throttle("x.com") is None
    assert CENSOR.throttle(None) is None


ENDPOINTS = Censor(
    parse_scenario(
        {
            "rule": [
                # OONI's DPIResetTrafficForTLSSNI on one address of a name
                {"layer": "tls", "match": ["x.com"], "ips": ["104.244.42.129"],
                 "action": "reset"},
                # DPICloseConnectionForServerEndpoint: every ClientHello to an endpoint
                {"layer": "tls", "ips": ["93.184.215.14"], "ports": [443], "action": "fin"},
                {"layer": "http", "ips": ["93.184.215.14"], "ports": [80], "action": "fin"},
                {"layer": "http", "match": ["x.com"], "ports": [8080], "action": "blockpage",
                 "status": 451, "body": "<html>451</html>"},
                # DPIThrottleTrafficForTCPEndpoint
                {"layer": "throttle", "ips": ["185.15.59.224"], "ports": [80], "delay_ms": 300,
                 "loss": 0.1},
            ]
        },
        source="endpoints",
        name="endpoints",
    )
)  # fmt: skip
X_HELLO = read_opening(HELLO, HELLO)
EXAMPLE_HELLO = read_opening(client_hello("www.example.org"), client_hello("www.example.org"))
X_GET = read_opening(GET, GET)

# (id, layer, opening or name, ip, port, expected action or None)
ENDPOINT_CASES: list[tuple[str, str, Any, str, int, str | None]] = [
    ("second address of x.com reset", "tls", X_HELLO, "104.244.42.129", 443, "reset"),
    ("first address of x.com spared", "tls", X_HELLO, "104.244.42.1", 443, None),
    ("any SNI to the endpoint", "tls", EXAMPLE_HELLO, "93.184.215.14", 443, "fin"),
    ("same address, other port", "tls", EXAMPLE_HELLO, "93.184.215.14", 8443, None),
    ("http to the endpoint", "http", X_GET, "93.184.215.14", 80, "fin"),
    ("http elsewhere", "http", X_GET, "104.244.42.1", 80, None),
    ("http match and port", "http", X_GET, "104.244.42.1", 8080, "blockpage"),
    ("throttled endpoint", "throttle", None, "185.15.59.224", 80, "throttle"),
    ("throttled endpoint, other port", "throttle", None, "185.15.59.224", 443, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("layer", "what", "ip", "port", "action"),
    [c[1:] for c in ENDPOINT_CASES],
    ids=[c[0] for c in ENDPOINT_CASES],
)
def test_rules_on_server_endpoints(
    layer: str, what: Any, ip: str, port: int, action: str | None
) -> None:
    rule = getattr(ENDPOINTS, layer)(what, ip, port)
    assert (rule.action if rule else None) == action


def test_endpoint_rule_keys_reach_the_censor() -> None:
    rule = ENDPOINTS.http(X_GET, "104.244.42.1", 8080)
    assert rule is not None
    assert (rule.status, rule.body) == (451, "<html>451</html>")
    throttle = ENDPOINTS.throttle(None, "185.15.59.224", 80)
    assert throttle is not None
    assert (throttle.delay_ms, throttle.loss) == (300.0, 0.1)


def test_segment_loss_is_reproducible_and_backs_off() -> None:
    import random

    from blockproof.lab.lab import SegmentLoss

    def run(seed: str) -> list[float]:
        loss = SegmentLoss(0.3, 0.2, random.Random(seed))
        return [loss.penalty() for _ in range(2000)]

    first = run("s")
    assert first == run("s")
    assert first != run("t")
    lost = [p for p in first if p > 0]
    assert 0.25 < len(lost) / len(first) < 0.35
    # one loss costs the RTO, two in a row 3 RTOs (0.2 + 0.4), three 7 RTOs...
    assert set(round(p, 6) for p in lost) <= {round(0.2 * (2**n - 1), 6) for n in range(1, 30)}
    assert round(0.6, 6) in {round(p, 6) for p in lost}
    assert SegmentLoss(0.0, 0.2, random.Random(1)).penalty() == 0.0
