"""The campaign simulator: OONI web_connectivity measurements from many probes, with known truth.

Theory of operation
-------------------

1. **The world.** Every measured host is a ``Site`` with stable, plausible public
   addresses, an AS, a title and a page (``KNOWN_SITES``; an unknown host gets a
   Cloudflare-like address derived from a hash of its name). A CDN site may give the
   probe (in the country) other addresses than the control (abroad), in the same AS.
   Certificates are made once per host, deterministically (Ed25519), and issued by a
   "blockproof simulator CA" that says in its name that it is not a real one.
2. **Interference.** What the path does to one measurement is an ``Interference``:
   an episode's method (``scenario.METHODS``: a forged or failed DNS answer, dropped or
   refused SYNs, a reset/close/silence after a ClientHello naming the site, a reset or
   a blockpage for a plain-HTTP request), a loss of connectivity (outage), or one of
   the baseline's spurious failures (``FALSE_POSITIVE_KINDS``), or nothing.
3. **The virtual probe.** ``_measure`` replays what ``experiments.web_connectivity``
   does, sans-IO: getaddrinfo and DNS-over-UDP lookups (depth 0), the control request
   with every ``ip:port`` about to be dialed, TCP (+ TLS with SNI for https, + TLS to
   :443 without fetching for http) to every resolved address, one fetch per redirect
   depth, the control's addresses when nothing could fetch (OONI's E005), redirects
   (``http://`` -> ``https://``), then the control's addresses, connect only. The
   control answers as ``control.measure`` would from an uncensored network. Times are
   affine in the measurement's round-trip time ``k`` (``a + b*k`` seconds; timeouts
   are the probe's own, fixed), so one run serves every ``k``.
4. **Templates.** A ``(url, interference)`` pair is measured once: the trace goes
   through the codec (``trace_to_test_keys``, ``control_response_to_json``), the
   classifier (``analyze``, its keys written with ``analysis_to_test_keys``, as the
   probe does) and the envelope (``Measurement``, ``measurement_to_json``, plus
   ``x_probe_id``) into one JSON line in which the per-measurement values (times,
   measurement and session times, report id, network, probe key, HTTP ``Date``) are
   slots. Each template's verdict is checked against what its interference must
   produce (``MethodInfo.rule_ids``; "ok" for none): a mismatch is a bug and raises
   ``SimulationError``, so the written data never contradicts the truth.
5. **The campaign** (dense, clean). Probes are apportioned to networks by share; a
   fraction stays for the whole window, the others join at a random time and stay for an
   exponentially distributed lifetime (churn). Each probe runs a session every
   ``mean_interval_hours`` (times 0.5 to 1.5), skipped with ``skip_probability``;
   some hours carry no data at all (``empty_hour_probability``). A session measures
   every URL in a random order, one after the other; each measurement looks up the
   interference active at its own start second (outages before platform blocks;
   restorations remove it), draws its spurious failure (only when nothing else
   interferes) and its ``k``, and fills its template: a string format, no JSON
   encoding per measurement.
6. **OONI-like campaigns** (``[density]``, ``scenario.Density``; docs/simulator.md).
   Instead of regular sessions of every URL, each network has a mean number of runs a
   day (``runs_per_day``); each day's volume is that times a Gamma draw (mean 1), and
   the runs are a Poisson process within the day, each attributed to one of the
   network's probes active then. A run lasts a lognormal duration and measures each
   URL with probability min(1, share * duration / pace) (front pages at OONI's
   front-page share, ``secondary_urls`` at an average listed URL's), at random
   moments of the run; it is one report id. A share of runs is flaky: about half
   their measurements fail (the probe's connectivity and its control request time
   out, ``FAILURE_KINDS``). Episodes catch only a share of the measurements they act
   on (``Episode.share``, default 60-95%, drawn per network) with a mix of methods
   (``Episode.mix``). Each measurement gets an arrival time (seconds later; a few runs
   a day or more later; after the end of an outage for what a blacked-out network
   measured) written as OONI's ``measurement_uid``; lines come out in arrival order
   (a heap). Every default comes from ``densities.json``, derived from a real sample
   of OONI's fastpath table by ``scripts/derive_densities.py``.
7. **Truth.** ``Campaign.truth()`` lists the window and every episode that
   intersects it (kind, networks, start, end or null when it outlasts the window,
   method and mix, the verdict methods the classifier gives, the share caught per
   network, restorations, affected URLs); ``simulate`` adds the counts of what the
   data holds besides the truth (``noise``: measurements that got through a partial
   block, stray anomalies, failures, late uploads).

Everything is deterministic given the scenario, the probe count, the window and the
seed; gzip output is written with a zero timestamp so that files compare equal.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import ipaddress
import json
import math
import os
import random
import re
import struct
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from blockproof import __version__
from blockproof.codec.jsonl import dumps_line
from blockproof.codec.ooni import (
    analysis_to_test_keys,
    control_request_to_json,
    control_response_to_json,
    measurement_to_json,
    trace_to_test_keys,
)
from blockproof.core.bogons import is_bogon, is_loopback
from blockproof.core.http import (
    InvalidRedirectLocation,
    browser_request,
    extract_title,
    redirect_location,
)
from blockproof.core.webconnectivity import analyze
from blockproof.errors import InputError
from blockproof.experiments.web_connectivity import MAX_ADDRESSES, TEST_NAME, TEST_VERSION
from blockproof.lab.scenario import blockpage_body
from blockproof.model.control import (
    IP_FLAG_BOGON,
    IP_FLAG_RESOLVED_BY_PROBE,
    IP_FLAG_RESOLVED_BY_TH,
    IP_FLAG_VALID_FOR_DOMAIN,
    ControlDNS,
    ControlHTTPRequest,
    ControlIPInfo,
    ControlRequest,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
)
from blockproof.model.measurement import Measurement
from blockproof.model.observations import (
    DNSAnswer,
    DNSQuery,
    HTTPResponse,
    HTTPTransaction,
    NetworkEvent,
    TCPConnect,
    TLSHandshake,
    Trace,
    join_endpoint,
)
from blockproof.model.verdict import WebConnectivityAnalysis
from blockproof.model.web import WebObservations
from blockproof.platforms import platform_of_url
from blockproof.simulate.scenario import (
    ALL_PLATFORMS,
    METHODS,
    Episode,
    Network,
    Scenario,
    format_time,
)

__all__ = [
    "FAILURE_KINDS",
    "KNOWN_SITES",
    "LATE_S",
    "Campaign",
    "Interference",
    "SimulationError",
    "SimulationResult",
    "Site",
    "Template",
    "simulate",
    "truth_path",
]

CONTROL_URL = "https://th.blockproof.example/"  # .example: never a real test helper
RESOLVER = "8.8.8.8:53"
TIMEOUT_DNS, TIMEOUT_TCP, TIMEOUT_TLS, TIMEOUT_HTTP = 4.0, 10.0, 10.0, 10.0  # the probe's
MEDIAN_RTT_FIXED, MEDIAN_RTT_MOBILE = 0.045, 0.085  # seconds; per measurement, lognormal
RTT_SIGMA = 0.35
K_REF = 0.06  # the round-trip time at which concurrent steps are put in order


class SimulationError(RuntimeError):
    """A bug: a generated measurement would contradict the truth."""


# --------------------------------------------------------------------------------------
# the world: sites and their addresses


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    addresses: tuple[str, ...]  # what the probe's resolver returns
    asn: int
    org: str
    title: str
    body_bytes: int = 3000
    server: str = "nginx"
    headers: tuple[tuple[str, str], ...] = ()  # site-specific response headers
    control_addresses: tuple[str, ...] = ()  # the control's resolver (a CDN); () = same

    @property
    def th_addresses(self) -> tuple[str, ...]:
        return self.control_addresses or self.addresses

    @property
    def all_addresses(self) -> frozenset[str]:
        return frozenset(self.addresses) | frozenset(self.th_addresses)


_TWITTER = (13414, "Twitter Inc.")
_FASTLY = (54113, "Fastly, Inc.")
_GOOGLE = (15169, "Google LLC")
_META = (32934, "Facebook, Inc.")
_X_TITLE = "X. It's what's happening / X"
_X_HEADERS = (("x-response-time", "42"), ("x-connection-hash", "a9c1e7"))


def _site(
    name: str,
    addresses: tuple[str, ...],
    owner: tuple[int, str],
    title: str,
    body_bytes: int,
    server: str,
    headers: tuple[tuple[str, str], ...] = (),
    control: tuple[str, ...] = (),
) -> Site:
    return Site(name, addresses, owner[0], owner[1], title, body_bytes, server, headers, control)


# Page sizes stay between 5 and 8 kB: far enough (more than 30%) from every shipped
# blockpage's size (0.8, 1.1, 3.1 and 50 kB) that a blockpage never passes for the page.
KNOWN_SITES: dict[str, Site] = {
    s.name: s
    for s in (
        _site("x.com", ("104.244.42.1", "104.244.42.129"), _TWITTER, _X_TITLE, 6200,
              "tsa_b", _X_HEADERS),
        _site("twitter.com", ("104.244.42.193", "104.244.42.6"), _TWITTER, _X_TITLE, 6200,
              "tsa_b", _X_HEADERS),
        _site("api.x.com", ("104.244.42.66",), _TWITTER, "X Developer Platform", 5000,
              "tsa_b", _X_HEADERS),
        _site("upload.x.com", ("104.244.42.72",), _TWITTER, "X upload", 5000, "tsa_b"),
        _site("t.co", ("104.244.42.69",), _TWITTER, "t.co / Twitter", 5000, "tsa_b", _X_HEADERS),
        _site("pbs.twimg.com", ("151.101.36.159",), _FASTLY, "pbs.twimg.com", 5000, "ECS",
              (("x-served-by", "cache-khi-1"),)),
        _site("abs.twimg.com", ("151.101.40.158",), _FASTLY, "abs.twimg.com", 5000, "ECS",
              (("x-served-by", "cache-khi-1"),)),
        _site("video.twimg.com", ("151.101.44.158",), _FASTLY, "video.twimg.com", 5000, "ECS",
              (("x-served-by", "cache-khi-1"),)),
        _site("www.wikipedia.org", ("103.102.166.224",), (14907, "Wikimedia Foundation Inc."),
              "Wikipedia", 7500, "ATS/9.1.4", (("x-cache", "cp5017 hit"),),
              ("185.15.59.224",)),
        _site("www.youtube.com", ("142.250.181.174", "142.250.181.206"), _GOOGLE, "YouTube",
              8000, "ESF", (("x-xss-protection", "0"), ("alt-svc", 'h3=":443"')),
              ("142.250.185.110", "142.250.185.142")),
        _site("m.youtube.com", ("142.250.181.170",), _GOOGLE, "YouTube", 7000, "ESF",
              (("alt-svc", 'h3=":443"'),), ("142.250.185.100",)),
        _site("www.facebook.com", ("157.240.227.35",), _META, "Facebook - log in or sign up",
              7500, "proxygen-bolt", (("x-fb-debug", "kq1"),), ("157.240.0.35",)),
        _site("www.instagram.com", ("157.240.227.174",), _META, "Instagram", 6500,
              "proxygen-bolt", (("x-fb-debug", "kq2"),), ("157.240.0.174",)),
        _site("web.whatsapp.com", ("157.240.227.60",), _META, "WhatsApp Web", 5500,
              "proxygen-bolt", (("x-fb-debug", "kq3"),), ("157.240.0.60",)),
        _site("telegram.org", ("149.154.167.99",), (62041, "Telegram Messenger Inc"),
              "Telegram Messenger", 6000, "nginx", (("x-frame-options", "SAMEORIGIN"),)),
        _site("web.telegram.org", ("149.154.167.99",), (62041, "Telegram Messenger Inc"),
              "Telegram Web", 5000, "nginx"),
        _site("www.example.org", ("93.184.215.14",), (15133, "Edgecast Inc."),
              "Example Domain", 5000, "ECAcc (nyd/D10E)"),
    )
}  # fmt: skip

_CLOUDFLARE = (13335, "Cloudflare, Inc.")
_AKAMAI = (20940, "Akamai International B.V.")


def _hash_int(*parts: str) -> int:
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _address_in(network: str, *parts: str) -> str:
    net = ipaddress.IPv4Network(network)
    span = net.num_addresses - 2
    return str(net.network_address + 1 + _hash_int(*parts) % span)


@cache
def site_for(host: str) -> Site:
    """The site of a host name: a known one, or a stable Cloudflare-like one."""
    host = host.lower().rstrip(".")
    if host in KNOWN_SITES:
        return KNOWN_SITES[host]
    address = _address_in("104.16.0.0/13", "site", host)
    return _site(
        host, (address,), _CLOUDFLARE, host, 6000, "cloudflare", (("x-served-by", "simulated"),)
    )


def _stale_address(host: str) -> str:
    """An address a flaky resolver returns for ``host``: another AS, and it does not answer."""
    return _address_in("23.32.0.0/11", "stale", host)


_WORDS = (
    "the", "people", "news", "world", "today", "live", "video", "photo", "post", "follow",
    "trending", "search", "home", "explore", "notifications", "messages", "profile",
    "settings", "help", "privacy", "terms", "about", "more", "update", "share", "comment",
    "like", "reply", "account", "sign", "log", "in", "up", "create", "new", "open", "read",
    "watch", "listen", "community",
)  # fmt: skip


@cache
def _page(site: Site) -> bytes:
    """A deterministic HTML page with the site's title, about ``body_bytes`` long."""
    head = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{site.title}</title></head>\n<body>\n<h1>{site.title}</h1>\n"
    )
    tail = "</body></html>\n"
    lines: list[str] = []
    size = len(head) + len(tail)
    counter = 0
    while size < site.body_bytes:  # markup as repetitive as real pages', so it compresses
        word = _WORDS[counter % len(_WORDS)]
        line = (
            f'<div class="item" data-i="{counter}"><a href="/{word}">{word.capitalize()}</a>'
            f'<span class="meta">{site.name}</span></div>\n'
        )
        lines.append(line)
        size += len(line)
        counter += 1
    return (head + "".join(lines) + tail).encode()


_MOVED = (
    b"<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n"
    b"<center><h1>301 Moved Permanently</h1></center>\r\n</body>\r\n</html>\r\n"
)


@cache
def _certificates(host: str, not_before: datetime, not_after: datetime) -> tuple[bytes, ...]:
    """A leaf certificate for ``host`` (DER) from a fake, plainly named CA. Deterministic.

    Only the leaf is recorded, as blockproof's probe does in the lab."""
    ca_key = ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.blake2b(b"blockproof simulator CA", digest_size=32).digest()
    )
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "blockproof simulation"),
            x509.NameAttribute(NameOID.COMMON_NAME, "blockproof simulator CA (not a real CA)"),
        ]
    )
    leaf_key = ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.blake2b(f"leaf/{host}".encode(), digest_size=32).digest()
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(_hash_int("serial", host) >> 1 | 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, None)
    )
    return (leaf.public_bytes(serialization.Encoding.DER),)


def _dns_wire(qid: int, host: str, addresses: Sequence[str], rcode: int) -> bytes:
    """A DNS response (A query, EDNS0), as the UDP resolver's raw_response."""
    question = b"".join(bytes([len(p)]) + p.encode() for p in host.split(".")) + b"\0"
    header = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(addresses), 0, 1)
    answers = b"".join(
        struct.pack(">HHHIH", 0xC00C, 1, 1, 300, 4) + ipaddress.IPv4Address(a).packed
        for a in addresses
    )
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return header + question + struct.pack(">HH", 1, 1) + answers + opt


# --------------------------------------------------------------------------------------
# interference


@dataclass(frozen=True, slots=True)
class Interference:
    """What the path does to one measurement. ``method`` is a METHODS name or ``fp-<kind>``."""

    method: str
    everything: bool = False  # an outage: every host and address
    answer: str = ""  # forged DNS answer
    answer_asn: int = 0
    answer_org: str = ""
    blockpage: str = ""

    @property
    def expected_rules(self) -> frozenset[str]:
        if self.method.startswith("fp-"):
            return _FP_RULES[self.method]
        if self.method.startswith("fail-"):
            return _FAIL_RULES
        return METHODS[self.method].rule_ids


_FP_RULES = {
    "fp-tcp-timeout": frozenset({"wc.tcp.timeout"}),
    "fp-tls-timeout": frozenset({"wc.tls.timeout"}),
    "fp-dns-timeout": frozenset({"wc.dns.timeout"}),
    "fp-dns-inconsistent": frozenset({"wc.dns.inconsistent"}),
}
# Failed measurements ([density]): the probe's own connectivity fails and so does its
# request to the control: nothing to compare with (OONI's msm_failure).
FAILURE_KINDS: dict[str, str] = {
    "fail-tcp": "every TCP connect and the control request time out",
    "fail-dns": "the system resolver and the control request time out",
}
_FAIL_RULES = frozenset({"wc.control.unavailable"})
_OK_RULES = frozenset({"wc.ok.https", "wc.ok"})

_TIMEOUT = "generic_timeout_error"
_RESET = "connection_reset"
_REFUSED = "connection_refused"

Time = tuple[float, float]  # a + b*k seconds since the measurement started


def _at(t: Time) -> float:
    return t[0] + t[1] * K_REF


def _after(t: Time, a: float, b: float = 0.0) -> Time:
    return (t[0] + a, t[1] + b)


def _latest(*times: Time) -> Time:
    return max(times, key=_at)


class _World:
    """One site under one interference: what the probe's path and the control see."""

    def __init__(self, site: Site, interference: Interference | None) -> None:
        self.site = site
        self.i = interference
        self.m = interference.method if interference else ""
        self.stale = _stale_address(site.name)

    # -- the probe's side

    def resolve(self, host: str) -> tuple[tuple[str, ...], str | None, int | None]:
        """(addresses, failure, rcode of the UDP resolver)."""
        m = self.m
        if m == "dns-nxdomain":
            return (), "dns_nxdomain_error", 3
        if m in ("dns-timeout", "blackout", "fp-dns-timeout", "fail-dns"):
            return (), _TIMEOUT, None
        if m in ("dns-bogon", "dns-blockpage-ip"):
            assert self.i is not None
            return (self.i.answer,), None, 0
        if m == "fp-dns-inconsistent":
            return (self.stale,), None, 0
        return self.site.addresses, None, 0

    def connect(self, ip: str, port: int) -> str | None:
        m, site = self.m, self.site
        if m == "blackout" or (m == "tcp-blackhole" and self.i is not None and self.i.everything):
            return _TIMEOUT
        if ip in site.all_addresses:
            if m in ("tcp-blackhole", "fp-tcp-timeout", "fail-tcp"):
                return _TIMEOUT
            if m == "tcp-refused":
                return _REFUSED
            return None
        if m == "dns-blockpage-ip" and self.i is not None and ip == self.i.answer:
            return None if port == 80 else _REFUSED
        return _TIMEOUT  # a bogon, a stale address: nothing answers

    def tls(self, ip: str) -> str | None:
        return {
            "tls-reset": _RESET,
            "tls-eof": "eof_error",
            "tls-timeout": _TIMEOUT,
            "fp-tls-timeout": _TIMEOUT,
        }.get(self.m)

    def fetch(self, ip: str, url: str, date: str) -> tuple[HTTPResponse | None, str | None]:
        https = url.startswith("https:")
        if self.m == "dns-blockpage-ip" and self.i is not None and ip == self.i.answer:
            return _blockpage_response(self.i.blockpage, date, server=True), None
        if not https and self.m == "http-reset":
            return None, _RESET
        if not https and self.m == "http-blockpage" and self.i is not None:
            return _blockpage_response(self.i.blockpage, date, server=False), None
        return _site_response(self.site, url, date), None

    def asn_of(self, ip: str) -> tuple[int, str]:
        if ip in self.site.all_addresses:
            return self.site.asn, self.site.org
        if ip == self.stale:
            return _AKAMAI
        if self.i is not None and ip == self.i.answer:
            return self.i.answer_asn, self.i.answer_org
        return 0, ""

    # -- the control's side: an uncensored network

    def control_connect(self, ip: str, port: int) -> str | None:
        if ip in self.site.all_addresses:
            return None
        if self.m == "dns-blockpage-ip" and self.i is not None and ip == self.i.answer:
            return None if port == 80 else "connection_refused_error"
        return _TIMEOUT


def _site_response(site: Site, url: str, date: str) -> HTTPResponse:
    if url.startswith("http:"):
        parts = urlsplit(url)
        location = f"https://{parts.netloc}{parts.path or '/'}"
        headers: tuple[tuple[str, str], ...] = (
            ("server", site.server),
            ("date", date),
            ("content-type", "text/html"),
            ("location", location),
            ("content-length", str(len(_MOVED))),
            ("connection", "close"),
        )
        return HTTPResponse(code=301, headers_list=headers, body=_MOVED)
    body = _page(site)
    headers = (
        ("server", site.server),
        ("date", date),
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
        *site.headers,
        ("strict-transport-security", "max-age=631138519"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    )
    return HTTPResponse(code=200, headers_list=headers, body=body)


def _blockpage_response(name: str, date: str, *, server: bool) -> HTTPResponse:
    body = blockpage_body(name)
    if not server:  # injected by a filtering box: a bare page
        return HTTPResponse(code=200, headers_list=(("content-type", "text/html"),), body=body)
    headers = (
        ("server", "nginx"),
        ("date", date),
        ("content-type", "text/html"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    )
    return HTTPResponse(code=200, headers_list=headers, body=body)


# --------------------------------------------------------------------------------------
# the virtual probe

_SENTINEL = 900_000_000_000.0  # time slot i is written as 900000000000+i, then replaced
_DATE = "\u00a7date\u00a7"  # string slots: "§name§"
_SLOT_NAMES = ("mst", "tst", "rid", "asn", "net", "ntype", "key", "date", "uid")
FROM_SYSTEM, FROM_CONTROL = 0, 2


class _Recorder:
    def __init__(self) -> None:
        self.times: list[Time] = []
        self.trace = Trace()
        self._ids: dict[int, int] = {}

    def stamp(self, t: Time) -> float:
        self.times.append(t)
        return _SENTINEL + len(self.times) - 1

    def ref(self, stamp: float) -> float:
        return _at(self.times[int(stamp - _SENTINEL)]) if stamp else 0.0

    def next_id(self, base: int) -> int:
        n = self._ids.get(base, base)
        self._ids[base] = n + 1
        return n

    def event(
        self,
        operation: str,
        t0: Time,
        t: Time,
        address: str,
        tags: tuple[str, ...],
        tid: int,
        failure: str | None = None,
        num_bytes: int = 0,
    ) -> None:
        self.trace.network_events.append(
            NetworkEvent(
                operation=operation,
                address=address,
                failure=failure,
                num_bytes=num_bytes,
                proto="tcp",
                t0=self.stamp(t0),
                t=self.stamp(t),
                tags=tags,
                transaction_id=tid,
            )
        )


@dataclass(slots=True)
class _Depth:
    url: str
    depth: int
    host: str
    addresses: list[str] = field(default_factory=list)
    dialed: set[str] = field(default_factory=set)
    claimed: bool = False


class _Probe:
    """``experiments.web_connectivity.measure_url``, replayed against a ``_World``."""

    def __init__(self, url: str, world: _World, certs: tuple[bytes, ...]) -> None:
        self.url = url
        self.world = world
        self.certs = certs
        self.rec = _Recorder()
        self.ends: list[Time] = []

    def resolve(self, d: _Depth, start: Time) -> Time:
        rec, world = self.rec, self.world
        addresses, failure, rcode = world.resolve(d.host)
        tags = ("classic", f"depth={d.depth}")
        dns_end = _after(start, TIMEOUT_DNS) if failure == _TIMEOUT else _after(start, 0.0004, 1)
        answers = tuple(
            DNSAnswer(
                answer_type="A", ipv4=a, asn=world.asn_of(a)[0], as_org_name=world.asn_of(a)[1]
            )
            for a in addresses
        )
        rec.trace.queries.append(
            DNSQuery(
                engine="getaddrinfo",
                resolver_address="",
                hostname=d.host,
                query_type="ANY",
                answers=answers,
                failure=failure,
                t0=rec.stamp(start),
                t=rec.stamp(dns_end),
                tags=tags,
                transaction_id=rec.next_id(10001),
            )
        )
        end = dns_end
        if d.depth == 0:
            udp_end = (
                _after(start, TIMEOUT_DNS) if failure == _TIMEOUT else _after(start, 0.0003, 1.3)
            )
            qid = _hash_int("qid", d.host, world.m) & 0xFFFF
            raw = None if rcode is None else _dns_wire(qid, d.host, addresses, rcode)
            rec.trace.queries.append(
                DNSQuery(
                    engine="udp",
                    resolver_address=RESOLVER,
                    hostname=d.host,
                    query_type="A",
                    answers=tuple(
                        DNSAnswer(
                            answer_type="A",
                            ipv4=a.ipv4,
                            ttl=300,
                            asn=a.asn,
                            as_org_name=a.as_org_name,
                        )
                        for a in answers
                    ),
                    failure=failure,
                    rcode=rcode,
                    raw_response=raw,
                    t0=rec.stamp(start),
                    t=rec.stamp(udp_end),
                    tags=("depth=0",),
                    transaction_id=rec.next_id(20001),
                )
            )
            end = _latest(dns_end, udp_end)
        d.addresses = [a for a in addresses if not is_loopback(a)][:MAX_ADDRESSES]
        self.ends.append(end)
        return end

    def endpoints(self, d: _Depth, ip: str) -> list[tuple[int, bool, bool]]:
        """(port, use_tls, may_fetch) of every connection to ``ip``."""
        if d.url.startswith("https:"):
            return [(443, True, True)]
        return [(80, False, True), (443, True, False)]

    def dial(
        self, d: _Depth, sources: list[tuple[str, int]], start: Time
    ) -> tuple[HTTPTransaction | None, Time]:
        """Connect to every new address; the first connection up fetches (if not taken)."""
        rec, world = self.rec, self.world
        ups: list[tuple[Time, str, int, bool, tuple[str, ...], int]] = []
        end = start
        for ip, source in sources:
            if ip in d.dialed:
                continue
            d.dialed.add(ip)
            for port, use_tls, fetch in self.endpoints(d, ip):
                tags_list = [f"depth={d.depth}", f"fetch_body={'true' if fetch else 'false'}"]
                if source == FROM_SYSTEM:
                    tags_list.insert(0, "classic")
                if use_tls and d.depth == 0:
                    tags_list.insert(1 if source == FROM_SYSTEM else 0, "tcptls_experiment")
                tags = tuple(tags_list)
                tid = rec.next_id(50001 if use_tls else 40001)
                address = join_endpoint(ip, port)
                failure = world.connect(ip, port)
                tcp_end = (
                    _after(start, TIMEOUT_TCP) if failure == _TIMEOUT else _after(start, 0.0002, 1)
                )
                rec.trace.tcp_connect.append(
                    TCPConnect(
                        ip=ip,
                        port=port,
                        failure=failure,
                        t0=rec.stamp(start),
                        t=rec.stamp(tcp_end),
                        tags=tags,
                        transaction_id=tid,
                    )
                )
                rec.event("connect", start, tcp_end, address, tags, tid, failure)
                up = tcp_end
                end = _latest(end, tcp_end)
                if failure is not None:
                    continue
                if use_tls:
                    tls_failure = world.tls(ip)
                    rec.event("tls_handshake_start", tcp_end, tcp_end, address, tags, tid)
                    rec.event("write", tcp_end, tcp_end, address, tags, tid, num_bytes=517)
                    if tls_failure is None:
                        tls_end = _after(tcp_end, 0.002, 1)
                        rec.event(
                            "read",
                            tcp_end,
                            tls_end,
                            address,
                            tags,
                            tid,
                            num_bytes=sum(map(len, self.certs)) + 330,
                        )
                        rec.event("write", tls_end, tls_end, address, tags, tid, num_bytes=80)
                    elif tls_failure == _TIMEOUT:
                        tls_end = _after(tcp_end, TIMEOUT_TLS)
                        rec.event("read", tcp_end, tls_end, address, tags, tid, tls_failure)
                    else:
                        tls_end = _after(tcp_end, 0.0003, 0.6)
                        rec.event("read", tcp_end, tls_end, address, tags, tid, tls_failure)
                    rec.event(
                        "tls_handshake_done", tcp_end, tls_end, address, tags, tid, tls_failure
                    )
                    rec.trace.tls_handshakes.append(
                        TLSHandshake(
                            address=address,
                            server_name=d.host,
                            failure=tls_failure,
                            tls_version="" if tls_failure else "TLSv1.3",
                            cipher_suite="" if tls_failure else "TLS_AES_128_GCM_SHA256",
                            negotiated_protocol="" if tls_failure else "http/1.1",
                            peer_certificates=() if tls_failure else self.certs,
                            t0=rec.stamp(tcp_end),
                            t=rec.stamp(tls_end),
                            tags=tags,
                            transaction_id=tid,
                        )
                    )
                    up = tls_end
                    end = _latest(end, tls_end)
                    if tls_failure is not None:
                        continue
                if fetch:
                    ups.append((up, ip, port, use_tls, tags, tid))
        last: HTTPTransaction | None = None
        if ups and not d.claimed:
            d.claimed = True
            up, ip, port, use_tls, tags, tid = min(ups, key=lambda u: _at(u[0]))
            last, http_end = self.fetch(d, ip, port, use_tls, tags, tid, up)
            end = _latest(end, http_end)
        self.ends.append(end)
        return last, end

    def fetch(
        self,
        d: _Depth,
        ip: str,
        port: int,
        use_tls: bool,
        tags: tuple[str, ...],
        tid: int,
        start: Time,
    ) -> tuple[HTTPTransaction, Time]:
        rec = self.rec
        address = join_endpoint(ip, port)
        request = browser_request(d.url)
        response, failure = self.world.fetch(ip, d.url, _DATE)
        request_bytes = 40 + sum(len(k) + len(v) + 4 for k, v in request.headers_list)
        rec.event("write", start, start, address, tags, tid, num_bytes=request_bytes)
        if response is None:
            end = _after(start, TIMEOUT_HTTP) if failure == _TIMEOUT else _after(start, 0.0003, 0.6)
            rec.event("read", start, end, address, tags, tid, failure)
        else:
            size = (
                len(response.body) + 30 + sum(len(k) + len(v) + 4 for k, v in response.headers_list)
            )
            end = _after(start, 0.001 + size / 4e6, 1)
            rec.event("read", start, end, address, tags, tid, num_bytes=size)
            rec.event("bytes_received_cumulative", end, end, address, tags, tid, num_bytes=size)
        tx = HTTPTransaction(
            request=request,
            response=response,
            failure=failure,
            network="tcp",
            address=address,
            alpn="http/1.1" if use_tls else "",
            t0=rec.stamp(start),
            t=rec.stamp(end),
            tags=tags,
            transaction_id=tid,
        )
        rec.trace.requests.append(tx)
        return tx, end

    def control(
        self, addresses: list[str], start: Time
    ) -> tuple[ControlRequest, ControlResponse | None, str | None, Time]:
        """The control request (every ip:port about to be dialed) and the control's answer
        (or its failure)."""
        world, site, url = self.world, self.world.site, self.url
        https = url.startswith("https:")
        ports = [443] if https else [443, 80]
        request = ControlRequest(
            http_request=url,
            http_request_headers={
                k: [v] for k, v in browser_request(url).headers_list if k != "Host"
            },
            tcp_connect=tuple(join_endpoint(ip, p) for ip in addresses for p in ports),
        )
        if world.m.startswith("fail-"):  # the probe's connectivity failed: no answer
            return request, None, _TIMEOUT, _after(start, TIMEOUT_HTTP)
        flags: dict[str, int] = {}
        endpoints: dict[str, tuple[str, int]] = {}
        for ip in addresses:
            flags[ip] = flags.get(ip, 0) | IP_FLAG_RESOLVED_BY_PROBE
            for p in ports:
                endpoints.setdefault(join_endpoint(ip, p), (ip, p))
        for ip in site.th_addresses:
            flags[ip] = flags.get(ip, 0) | IP_FLAG_RESOLVED_BY_TH
            for p in [443] if https else [80, 443]:
                endpoints.setdefault(join_endpoint(ip, p), (ip, p))
        for ip in flags:
            if is_bogon(ip):
                flags[ip] |= IP_FLAG_BOGON
        tcp: dict[str, ControlTCPConnect] = {}
        tls: dict[str, ControlTLSHandshake] = {}
        for endpoint, (ip, port) in endpoints.items():
            if is_bogon(ip):
                continue
            failure = world.control_connect(ip, port)
            tcp[endpoint] = ControlTCPConnect(status=failure is None, failure=failure)
            if failure is None and port == 443:
                tls[endpoint] = ControlTLSHandshake(server_name=site.name, status=True)
                flags[ip] |= IP_FLAG_VALID_FOR_DOMAIN
        final = _site_response(site, "https://" + url.split("://", 1)[1], _DATE)
        http = ControlHTTPRequest(
            body_length=len(final.body),
            failure=None,
            title=extract_title(final.body),
            headers={k: v for k, v in reversed(final.headers_list)},
            status_code=final.code,
        )
        response = ControlResponse(
            tcp_connect=tcp,
            tls_handshake=tls,
            http_request=http,
            dns=ControlDNS(failure=None, addrs=site.th_addresses),
            ip_info={
                ip: ControlIPInfo(asn=world.asn_of(ip)[0], flags=f) for ip, f in flags.items()
            },
        )
        return request, response, None, _after(start, 0.45, 2)

    def run(self) -> tuple[ControlRequest, ControlResponse | None, str | None, Time]:
        host = urlsplit(self.url).hostname or ""
        depth0 = _Depth(self.url, 0, host)
        dns_end = self.resolve(depth0, (0.001, 0.0))
        request, response, control_failure, control_end = self.control(depth0.addresses, dns_end)
        last, end = self.dial(depth0, [(a, FROM_SYSTEM) for a in depth0.addresses], dns_end)
        if last is None:  # nothing fetched: the control's addresses too (E005)
            only = (
                [(a, FROM_CONTROL) for a in response.dns.addrs if a not in depth0.dialed]
                if response is not None and response.dns
                else []
            )
            last, end = self.dial(depth0, only, _latest(end, control_end))
        current = depth0
        while last is not None and last.response is not None:
            try:
                next_url = redirect_location(current.url, last.response)
            except InvalidRedirectLocation:
                break  # the simulator's pages never send one
            if next_url is None:
                break
            next_host = urlsplit(next_url).hostname or ""
            current = _Depth(next_url, current.depth + 1, next_host)
            dns_end = self.resolve(current, end)
            last, end = self.dial(current, [(a, FROM_SYSTEM) for a in current.addresses], dns_end)
        if response is not None and response.dns is not None:  # connect only: fetch is taken
            only = [(a, FROM_CONTROL) for a in response.dns.addrs if a not in depth0.dialed]
            depth0.claimed = True
            self.dial(depth0, only, _latest(end, control_end))
        self.ends.append(control_end)
        return request, response, control_failure, max(self.ends, key=_at)


# --------------------------------------------------------------------------------------
# templates: one classified JSON line per (url, interference), with slots

_SLOT_RE = re.compile(r'"\u00a7(\w+)\u00a7"|900000(\d{6})\.0')
_TIME_FORMAT = "%.6f"


@dataclass(frozen=True, slots=True)
class Template:
    url: str
    interference: Interference | None
    fmt: str  # the JSON line with %s for every slot
    order: tuple[int, ...]  # slot -> index into (string values..., time values...)
    times: tuple[Time, ...]
    runtime: Time
    analysis: WebConnectivityAnalysis

    @property
    def rule_id(self) -> str:
        return self.analysis.verdict.rule_id if self.analysis.verdict else ""

    @property
    def method(self) -> str:
        return str(self.analysis.verdict.method) if self.analysis.verdict else ""


def _build_template(
    url: str,
    interference: Interference | None,
    cc: str,
    label: str,
    validity: tuple[datetime, datetime],
    *,
    uid: bool = False,
    probe_id: bool = True,
) -> Template:
    """``uid``: write OONI's ``measurement_uid`` (its arrival); ``probe_id``: ``x_probe_id``."""
    host = urlsplit(url).hostname or ""
    site = site_for(host)
    probe = _Probe(url, _World(site, interference), _certificates(site.name, *validity))
    request, response, control_failure, runtime = probe.run()
    rec = probe.rec
    trace = rec.trace
    trace.tcp_connect.sort(key=lambda c: rec.ref(c.t))
    trace.tls_handshakes.sort(key=lambda h: rec.ref(h.t))
    trace.requests.sort(key=lambda r: rec.ref(r.t0))
    trace.network_events.sort(key=lambda e: rec.ref(e.t))
    observations = WebObservations(
        input=url,
        queries=tuple(trace.queries),
        tcp_connect=tuple(trace.tcp_connect),
        tls_handshakes=tuple(trace.tls_handshakes),
        requests=tuple(trace.requests),
        control=response,
        control_failure=control_failure,
    )
    analysis = analyze(observations)
    expected = interference.expected_rules if interference else _OK_RULES
    rule = analysis.verdict.rule_id if analysis.verdict else ""
    if rule not in expected:
        what = interference.method if interference else "no interference"
        raise SimulationError(
            f"{url} under {what}: the classifier says {rule!r}, expected one of {sorted(expected)}"
        )
    runtime_stamp = rec.stamp(runtime)
    test_keys: dict[str, Any] = {
        "agent": "redirect",
        "client_resolver": None,
        "retries": None,
        "socksproxy": None,
        **trace_to_test_keys(trace),
        "x_control_request": control_request_to_json(request),
        "control": control_response_to_json(response) if response is not None else None,
        "control_failure": control_failure,
        **analysis_to_test_keys(analysis),
    }
    if rule in _FAIL_RULES:  # as the probe writes it: no control, no claim of access
        test_keys["blocking"] = None  # (experiments.web_connectivity, OONI's row 5.1.1)
        test_keys["accessible"] = None
    slot = {name: f"\u00a7{name}\u00a7" for name in _SLOT_NAMES}
    measurement = Measurement(
        test_name=TEST_NAME,
        test_version=TEST_VERSION,
        input=url,
        measurement_start_time=slot["mst"],
        test_start_time=slot["tst"],
        probe_cc=cc,
        probe_asn=slot["asn"],
        probe_network_name=slot["net"],
        report_id=slot["rid"],
        software_name="blockproof",
        software_version=__version__,
        test_runtime=runtime_stamp,
        annotations={
            "engine_name": "blockproof",
            "network_type": slot["ntype"],
            "simulation": label,
        },
        test_helpers={"backend": {"address": CONTROL_URL, "type": "https"}},
        test_keys=test_keys,
    )
    obj = measurement_to_json(measurement)
    if uid:  # where OONI's files have it: right after report_id
        obj = {
            k: v
            for key, value in obj.items()
            for k, v in (
                ((key, value), ("measurement_uid", slot["uid"]))
                if key == "report_id"
                else ((key, value),)
            )
        }
    if probe_id:
        obj["x_probe_id"] = slot["key"]
    line = dumps_line(obj)
    pieces: list[str] = []
    order: list[int] = []
    seen_times: set[int] = set()
    position = 0
    for match in _SLOT_RE.finditer(line):
        pieces.append(line[position : match.start()].replace("%", "%%"))
        position = match.end()
        if match.group(1) is not None:
            order.append(_SLOT_NAMES.index(match.group(1)))
        else:
            index = int(match.group(2))
            seen_times.add(index)
            order.append(len(_SLOT_NAMES) + index)
    pieces.append(line[position:].replace("%", "%%"))
    if seen_times != set(range(len(rec.times))):
        raise SimulationError(f"{url}: time slots lost in the template")
    return Template(
        url=url,
        interference=interference,
        fmt="%s".join(pieces),
        order=tuple(order),
        times=tuple(rec.times),
        runtime=runtime,
        analysis=analysis,
    )


# --------------------------------------------------------------------------------------
# the campaign

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class _SimProbe:
    index: int
    network: Network
    key_id: str
    active_start: float
    active_end: float


@dataclass(frozen=True, slots=True)
class _Acting:
    """An episode acting on one (network, URL): what it does to one measurement."""

    episode: int  # index into Campaign.episodes
    outage: bool
    interferences: tuple[Interference, ...]  # the main method's first
    cumulative: tuple[float, ...]  # cumulative shares of the methods (the last is 1)
    share: float  # share of the measurements the censor catches on this network
    end: float  # when this stretch of it ends (epoch seconds): uploads resume after an outage

    def draw(self, rng: random.Random) -> Interference | None:
        """The interference one measurement meets (None: this one got through).

        Draws nothing when every measurement is caught by the one method, so that a
        clean scenario's output does not depend on this."""
        if self.share < 1.0 and rng.random() >= self.share:
            return None
        if len(self.interferences) == 1:
            return self.interferences[0]
        x = rng.random()
        for interference, bound in zip(self.interferences, self.cumulative, strict=True):
            if x < bound:
                return interference
        return self.interferences[-1]


@dataclass(frozen=True, slots=True)
class _Segment:
    start: float
    end: float
    acting: _Acting

    @property
    def interference(self) -> Interference:
        return self.acting.interferences[0]


def _apportion(total: int, networks: Sequence[Network]) -> list[int]:
    """Largest remainder: ``total`` probes shared by the networks' shares."""
    weight = sum(n.share for n in networks)
    exact = [total * n.share / weight for n in networks]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(networks)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _epoch(when: datetime) -> float:
    return when.timestamp()


def _minus(
    start: float, end: float, holes: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """``[start, end)`` without the ``holes`` (sorted, disjoint)."""
    out: list[tuple[float, float]] = []
    cursor = start
    for hole_start, hole_end in holes:
        if hole_end <= cursor or hole_start >= end:
            continue
        if hole_start > cursor:
            out.append((cursor, hole_start))
        cursor = max(cursor, hole_end)
    if cursor < end:
        out.append((cursor, end))
    return out


def _uid_stamp(when: float) -> str:
    """OONI's measurement_uid time: ``20240217170512.123456``."""
    g = time.gmtime(int(when))
    micro = int((when - int(when)) * 1e6)
    return (
        f"{g.tm_year:04d}{g.tm_mon:02d}{g.tm_mday:02d}{g.tm_hour:02d}{g.tm_min:02d}"
        f"{g.tm_sec:02d}.{micro:06d}"
    )


LATE_S = 3600.0  # an upload later than this after the measurement is "late"


class Campaign:
    """One simulated campaign: its probes, sessions, measurements (as JSON lines) and truth.

    With ``[density]`` (``scenario.density``) the campaign is OONI-like: runs per network
    and day from the networks' ``runs_per_day``, one report id per run, each URL measured
    in a share of the runs, failures, stray anomalies, partial blocks and late uploads,
    written in the order they arrive (see the module docstring and docs/simulator.md)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        probes: int | None = None,
        days: int | None = None,
        seed: int = 0,
    ) -> None:
        self.scenario = scenario
        self.probe_count = scenario.probes if probes is None else probes
        self.days = scenario.days if days is None else days
        if not 1 <= self.probe_count <= 1_000_000:
            raise InputError(f"--probes {self.probe_count}: must be between 1 and 1000000")
        if not 1 <= self.days <= 3660:
            raise InputError(f"--days {self.days}: must be between 1 and 3660")
        self.seed = seed
        self.window_start = scenario.start
        self.window_end = scenario.start + timedelta(days=self.days)
        self.episodes = tuple(
            e
            for e in scenario.episodes
            if e.start < self.window_end and (e.end is None or e.end > self.window_start)
        )
        self.validity = (
            self.window_start - timedelta(days=60),
            self.window_end + timedelta(days=90),
        )
        self.density = scenario.density
        self.params: dict[str, Any] = self.density.parameters() if self.density else {}
        self.templates: dict[tuple[str, Interference | None], Template] = {}
        self.platforms = {url: platform_of_url(url) for url in scenario.urls}
        self.measurements = 0
        self.sessions = 0
        self.noise: Counter[str] = Counter()  # what the data holds besides the truth
        self.shares = self._draw_shares()
        self._segments = self._build_segments()
        self._fp = [Interference(method=f"fp-{k}") for k in scenario.false_positive_kinds]
        self._fail = [Interference(method=k) for k in FAILURE_KINDS]
        self.empty_hours: list[int] = []

    # -- interference over time

    def _interference_of(self, episode: Episode, method: str) -> Interference:
        org = ""
        for network in self.scenario.networks:
            if network.asn == episode.answer_asn:
                org = network.name
        info = METHODS[method]
        takes = method == episode.method  # only the main method forges answers, pages
        return Interference(
            method=method,
            everything=episode.platform == ALL_PLATFORMS,
            answer=episode.answer if takes and info.answer is not None else "",
            answer_asn=episode.answer_asn if takes and info.answer is not None else 0,
            answer_org=org if takes and info.answer is not None else "",
            blockpage=episode.blockpage if takes else "",
        )

    def _draw_shares(self) -> dict[tuple[int, int], float]:
        """Per (episode, ASN): the share of measurements the censor catches there."""
        out: dict[tuple[int, int], float] = {}
        for i, episode in enumerate(self.episodes):
            low, high = 1.0, 1.0
            if episode.share is not None:
                low, high = episode.share
            elif self.density is not None and episode.platform != ALL_PLATFORMS:
                low, high = self.params["block_share"]
            for asn in episode.networks:
                rng = random.Random(
                    f"blockproof-simulate/{self.scenario.name}/{self.seed}/share/{i}/{asn}"
                )
                out[(i, asn)] = round(low + (high - low) * rng.random(), 4)
        return out

    def acts_on(self, episode: Episode, url: str) -> bool:
        """Does ``episode`` change the measurements of ``url`` (on its networks)?"""
        if episode.platform == ALL_PLATFORMS:
            return True
        if self.platforms.get(url, platform_of_url(url)) != episode.platform:
            return False
        info = METHODS[episode.method]
        return info.https if url.startswith("https:") else info.http

    def _build_segments(self) -> dict[tuple[int, str], tuple[_Segment, ...]]:
        """Per (ASN, URL): when an interference acts, outages first."""
        out: dict[tuple[int, str], tuple[_Segment, ...]] = {}
        far = _epoch(self.window_end) + 86400.0
        for network in self.scenario.networks:
            for url in self.scenario.urls:
                outages: list[_Segment] = []
                blocks: list[_Segment] = []
                for index, episode in enumerate(self.episodes):
                    if network.asn not in episode.networks or not self.acts_on(episode, url):
                        continue
                    start = _epoch(episode.start)
                    end = _epoch(episode.end) if episode.end else far
                    holes = [
                        (_epoch(r.start), _epoch(r.end) if r.end else far)
                        for r in episode.restorations
                    ]
                    methods = [
                        (m, w)
                        for m, w in episode.methods
                        if (METHODS[m].https if url.startswith("https:") else METHODS[m].http)
                    ]
                    total = sum(w for _, w in methods)
                    cumulative, running = [], 0.0
                    for _, w in methods:
                        running += w / total
                        cumulative.append(running)
                    cumulative[-1] = 1.0
                    outage = episode.platform == ALL_PLATFORMS
                    target = outages if outage else blocks
                    for a, b in _minus(start, end, holes):
                        acting = _Acting(
                            episode=index,
                            outage=outage,
                            interferences=tuple(
                                self._interference_of(episode, m) for m, _ in methods
                            ),
                            cumulative=tuple(cumulative),
                            share=self.shares[(index, network.asn)],
                            end=b,
                        )
                        target.append(_Segment(a, b, acting))
                out[(network.asn, url)] = tuple(outages + blocks)
        return out

    def acting_at(self, asn: int, url: str, when: float) -> _Acting | None:
        for segment in self._segments.get((asn, url), ()):
            if segment.start <= when < segment.end:
                return segment.acting
        return None

    def interference_at(self, asn: int, url: str, when: float) -> Interference | None:
        """The main interference acting at ``when`` (None: none)."""
        acting = self.acting_at(asn, url, when)
        return acting.interferences[0] if acting is not None else None

    def template(self, url: str, interference: Interference | None) -> Template:
        key = (url, interference)
        found = self.templates.get(key)
        if found is None:
            found = _build_template(
                url,
                interference,
                self.scenario.country,
                self.scenario.name,
                self.validity,
                uid=self.density is not None,
                probe_id=self.density is None or self.density.probe_ids,
            )
            self.templates[key] = found
        return found

    # -- probes and sessions

    def _probes(self, rng: random.Random) -> list[_SimProbe]:
        scenario = self.scenario
        behaviour = scenario.behaviour
        counts = _apportion(self.probe_count, scenario.networks)
        assignment = [n for n, c in zip(scenario.networks, counts, strict=True) for _ in range(c)]
        rng.shuffle(assignment)
        ws, we = _epoch(self.window_start), _epoch(self.window_end)
        out: list[_SimProbe] = []
        for index, network in enumerate(assignment):
            key = hashlib.blake2b(
                f"{scenario.name}/{self.seed}/{index}".encode(), digest_size=8
            ).hexdigest()
            if rng.random() < behaviour.stable_fraction:
                start, end = ws, we
            else:
                lifetime = rng.expovariate(1.0 / (behaviour.mean_lifetime_days * 86400.0))
                join = rng.uniform(ws - lifetime, we)
                start, end = max(join, ws), min(join + lifetime, we)
            out.append(_SimProbe(index, network, key, start, end))
        return out

    def _empty_hours(self, rng: random.Random) -> set[int]:
        p = self.scenario.behaviour.empty_hour_probability
        empty = {h for h in range(self.days * 24) if rng.random() < p}
        self.empty_hours = sorted(empty)
        return empty

    def _sessions(self, rng: random.Random, probes: list[_SimProbe]) -> list[tuple[float, int]]:
        behaviour = self.scenario.behaviour
        interval = behaviour.mean_interval_hours * 3600.0
        ws = _epoch(self.window_start)
        empty = self._empty_hours(rng)
        sessions: list[tuple[float, int]] = []
        for probe in probes:
            t = probe.active_start + rng.uniform(0.0, interval)
            while t < probe.active_end:
                if (
                    rng.random() >= behaviour.skip_probability
                    and int((t - ws) // 3600) not in empty
                ):
                    sessions.append((t, probe.index))
                t += interval * rng.uniform(0.5, 1.5)
        sessions.sort()
        return sessions

    def runs_per_day(self, network: Network) -> float:
        """[density]: the network's mean web_connectivity runs a day."""
        if network.runs_per_day is not None:
            return network.runs_per_day
        return float(self.params["runs_per_network_day_median"])

    def _runs(self, rng: random.Random, probes: list[_SimProbe]) -> list[tuple[float, int]]:
        """[density]: every run, (start, probe index), in time order. A network's runs on
        one day are a Poisson process whose rate is its ``runs_per_day`` times that day's
        Gamma-distributed volume (mean 1); a run belongs to one of the network's probes
        active then (none active: no run), and never starts in an empty hour."""
        ws = _epoch(self.window_start)
        empty = self._empty_hours(rng)
        shape = float(self.params["day_shape"])
        by_network: dict[int, list[_SimProbe]] = {}
        for probe in probes:
            by_network.setdefault(probe.network.asn, []).append(probe)
        runs: list[tuple[float, int]] = []
        for network in self.scenario.networks:
            level = self.runs_per_day(network) / 86400.0
            mine = by_network.get(network.asn, [])
            for day in range(self.days):
                day_start = ws + day * 86400.0
                rate = level * rng.gammavariate(shape, 1.0 / shape) if level > 0 else 0.0
                if rate <= 0:
                    continue
                t = day_start + rng.expovariate(rate)
                while t < day_start + 86400.0:
                    active = [p for p in mine if p.active_start <= t < p.active_end]
                    if active and int((t - ws) // 3600) not in empty:
                        runs.append((t, active[int(rng.random() * len(active))].index))
                    t += rng.expovariate(rate)
        runs.sort()
        return runs

    # -- measurements

    def lines(self) -> Iterator[str]:
        """Every measurement as one JSON line (no newline): in time order of sessions, or,
        OONI-like ([density]), in the order they arrive."""
        if self.density is not None:
            yield from self._ooni_lines()
            return
        scenario = self.scenario
        rng = random.Random(f"blockproof-simulate/{scenario.name}/{self.seed}")
        probes = self._probes(rng)
        sessions = self._sessions(rng, probes)
        cc = scenario.country
        fp_rate = scenario.false_positive_rate
        fps = self._fp
        urls = list(scenario.urls)
        net_values = self._net_values()
        key_values = [dumps_line(p.key_id) for p in probes]
        self.measurements = 0
        self.sessions = len(sessions)
        self.noise.clear()
        for start, index in sessions:
            probe = probes[index]
            network = probe.network
            rtt = MEDIAN_RTT_MOBILE if network.mobile else MEDIAN_RTT_FIXED
            session_values = _run_header(rng, start, cc, network.asn, net_values, key_values[index])
            rng.shuffle(urls)
            clock = start
            for url in urls:
                second = int(clock)
                acting = self.acting_at(network.asn, url, second)
                interference = acting.draw(rng) if acting is not None else None
                if acting is not None and interference is None:
                    self.noise["leaked"] += 1
                if acting is None and fp_rate and rng.random() < fp_rate:
                    interference = fps[int(rng.random() * len(fps))]
                    self.noise["stray_anomalies"] += 1
                tmpl = self.template(url, interference)
                k = rtt * rng.lognormvariate(0.0, RTT_SIGMA)
                values = [*_time_values(second, session_values), '""']
                values.extend([_TIME_FORMAT % (a + b * k) for a, b in tmpl.times])
                yield tmpl.fmt % tuple([values[i] for i in tmpl.order])
                self.measurements += 1
                runtime = tmpl.runtime[0] + tmpl.runtime[1] * k
                clock += runtime + rng.uniform(0.5, 2.0)

    def _net_values(self) -> dict[int, tuple[str, str, str]]:
        return {
            n.asn: (
                dumps_line(n.asn_string),
                dumps_line(n.name),
                dumps_line("mobile" if n.mobile else "wifi"),
            )
            for n in self.scenario.networks
        }

    def _ooni_lines(self) -> Iterator[str]:
        """[density]: runs, each measuring some URLs; noise; arrival order (a heap)."""
        scenario, p = self.scenario, self.params
        assert self.density is not None
        rng = random.Random(f"blockproof-simulate/{scenario.name}/{self.seed}/ooni")
        probes = self._probes(rng)
        runs = self._runs(rng, probes)
        cc = scenario.country
        fp_rate = scenario.false_positive_rate
        fps, fails = self._fp, self._fail
        secondary = set(self.density.secondary_urls)
        shares = [
            (url, p["secondary_share"] if url in secondary else p["front_page_share"])
            for url in scenario.urls
        ]
        pace = float(p["pace_s"])
        mu_d, sigma_d = math.log(p["run_duration_median_s"]), float(p["run_duration_sigma"])
        max_d = float(p["run_duration_max_s"])
        p_flaky, p_fail = float(p["flaky_run_probability"]), float(p["flaky_failure_share"])
        p_late = float(p["late_upload_probability"])
        mu_late = math.log(float(p["late_delay_median_h"]) * 3600.0)
        sigma_late = float(p["late_delay_sigma"])
        mu_up, sigma_up = math.log(p["upload_delay_median_s"]), float(p["upload_delay_sigma"])
        net_values = self._net_values()
        key_values = [dumps_line(pr.key_id) for pr in probes]
        self.measurements = 0
        self.sessions = 0
        self.noise.clear()
        pending: list[tuple[float, int, str]] = []  # (arrival, sequence, line)
        sequence = 0
        for start, index in runs:
            while pending and pending[0][0] <= start:
                yield heapq.heappop(pending)[2]
            duration = min(max_d, max(1.0, rng.lognormvariate(mu_d, sigma_d)))
            chosen = [url for url, s in shares if rng.random() < min(1.0, s * duration / pace)]
            if not chosen:
                continue  # a run of other URLs: nothing of ours
            rng.shuffle(chosen)
            offsets = sorted(rng.uniform(0.0, duration) for _ in chosen)
            flaky = rng.random() < p_flaky
            late = rng.random() < p_late
            late_delay = max(LATE_S, rng.lognormvariate(mu_late, sigma_late)) if late else 0.0
            probe = probes[index]
            network = probe.network
            rtt = MEDIAN_RTT_MOBILE if network.mobile else MEDIAN_RTT_FIXED
            session_values = _run_header(rng, start, cc, network.asn, net_values, key_values[index])
            self.sessions += 1
            clock = float(int(start))
            for url, offset in zip(chosen, offsets, strict=True):
                begin = max(start + offset, clock)
                second = int(begin)
                acting = self.acting_at(network.asn, url, second)
                outage_end: float | None = None
                interference: Interference | None = None
                if acting is not None:
                    interference = acting.draw(rng)
                    if acting.outage:
                        outage_end = acting.end
                    if interference is None:
                        self.noise["leaked"] += 1
                elif fp_rate and rng.random() < fp_rate:
                    interference = fps[int(rng.random() * len(fps))]
                    self.noise["stray_anomalies"] += 1
                if flaky and outage_end is None and rng.random() < p_fail:
                    interference = fails[int(rng.random() * len(fails))]
                    self.noise["failures"] += 1
                tmpl = self.template(url, interference)
                k = rtt * rng.lognormvariate(0.0, RTT_SIGMA)
                runtime = tmpl.runtime[0] + tmpl.runtime[1] * k
                done = second + runtime
                upload = late_delay if late else rng.lognormvariate(mu_up, sigma_up)
                arrival = done + upload
                if outage_end is not None:  # nothing leaves the network until it is back
                    back = outage_end + rng.uniform(0.0, 3600.0)
                    arrival = max(arrival, back + rng.lognormvariate(mu_up, sigma_up))
                if arrival - done > LATE_S:
                    self.noise["late_uploads"] += 1
                uid = dumps_line(
                    f"{_uid_stamp(arrival)}_{cc}_webconnectivity_{rng.getrandbits(64):016x}"
                )
                values = [*_time_values(second, session_values), uid]
                values.extend([_TIME_FORMAT % (a + b * k) for a, b in tmpl.times])
                line = tmpl.fmt % tuple([values[i] for i in tmpl.order])
                heapq.heappush(pending, (arrival, sequence, line))
                sequence += 1
                self.measurements += 1
                clock = done + rng.uniform(0.5, 2.0)
        while pending:
            yield heapq.heappop(pending)[2]

    # -- truth

    def truth(self) -> dict[str, Any]:
        scenario = self.scenario
        window_end = self.window_end
        episodes = []
        for index, episode in enumerate(self.episodes):
            end = episode.end if episode.end is not None and episode.end <= window_end else None
            restorations = [
                {"start": format_time(r.start), "end": format_time(r.end)}
                for r in episode.restorations
                if r.start < window_end
            ]
            info = METHODS[episode.method]
            episodes.append(
                {
                    "label": episode.label,
                    "platform": episode.platform,
                    "kind": episode.kind,
                    "networks": [f"AS{asn}" for asn in episode.networks],
                    "start": format_time(episode.start),
                    "end": format_time(end),
                    "method": episode.method,
                    "verdict_method": info.verdict_method,
                    "rule_ids": sorted(info.rule_ids),
                    "restorations": restorations,
                    "affected_urls": [u for u in scenario.urls if self.acts_on(episode, u)],
                    "methods": [
                        {
                            "method": m,
                            "share": w,
                            "verdict_method": METHODS[m].verdict_method,
                            "rule_ids": sorted(METHODS[m].rule_ids),
                        }
                        for m, w in episode.methods
                    ],
                    "block_share": {
                        f"AS{asn}": self.shares[(index, asn)] for asn in episode.networks
                    },
                }
            )
        counts = _apportion(self.probe_count, scenario.networks)
        truth: dict[str, Any] = {
            "scenario": scenario.name,
            "description": scenario.description,
            "country": scenario.country,
            "window": {"start": format_time(self.window_start), "end": format_time(window_end)},
            "seed": self.seed,
            "probes": self.probe_count,
            "networks": [
                {"asn": n.asn_string, "name": n.name, "mobile": n.mobile, "probes": c}
                for n, c in zip(scenario.networks, counts, strict=True)
            ],
            "urls": list(scenario.urls),
            "false_positive_rate": scenario.false_positive_rate,
            "false_positive_kinds": list(scenario.false_positive_kinds),
            "episodes": episodes,
        }
        if self.density is not None:
            for row, network in zip(truth["networks"], scenario.networks, strict=True):
                row["runs_per_day"] = self.runs_per_day(network)
            truth["density"] = {
                "profile": self.density.profile,
                "probe_ids": self.density.probe_ids,
                "secondary_urls": list(self.density.secondary_urls),
                "parameters": self.params,
                "failure_kinds": list(FAILURE_KINDS),
            }
        return truth


def _time_values(second: int, session_values: list[str]) -> list[str]:
    """The string slots of one measurement: start time, the session's, the HTTP Date."""
    g = time.gmtime(second)
    mst = (
        f'"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}'
        f' {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}"'
    )
    date = (
        f'"{_DAYS[g.tm_wday]}, {g.tm_mday:02d} {_MONTHS[g.tm_mon - 1]} {g.tm_year:04d}'
        f' {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} GMT"'
    )
    return [mst, *session_values, date]


# --------------------------------------------------------------------------------------
# files


def _batches(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def truth_path(out: str | os.PathLike[str]) -> Path:
    """``out.jsonl.gz`` -> ``out.truth.json`` (next to it)."""
    path = Path(out)
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return path.with_name(f"{name}.truth.json")


@dataclass(frozen=True, slots=True)
class SimulationResult:
    out: Path
    truth: Path
    measurements: int
    sessions: int
    probes: int
    templates: int
    bytes_written: int  # on disk (compressed when gzipped)
    bytes_json: int  # the JSON lines before compression
    seconds: float

    @property
    def per_second(self) -> float:
        return self.measurements / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.measurements} measurements ({self.sessions} sessions, {self.probes} probes)"
            f" -> {self.out} ({self.bytes_written / 1e6:.1f} MB), truth -> {self.truth};"
            f" {self.seconds:.1f} s, {self.per_second:.0f} measurements/s"
        )


def simulate(
    scenario: Scenario,
    out: str | os.PathLike[str],
    *,
    probes: int | None = None,
    days: int | None = None,
    seed: int = 0,
    compresslevel: int = 3,
) -> SimulationResult:
    """Write the campaign's measurements to ``out`` (gzipped if it ends in ``.gz``) and its
    truth next to it (``truth_path``). Deterministic given the arguments."""
    started = time.perf_counter()
    campaign = Campaign(scenario, probes=probes, days=days, seed=seed)
    path = Path(out)
    json_bytes = 0
    # Compression runs in a second thread (zlib releases the GIL), one batch behind the
    # generator: with one core it costs what it costs, with two it overlaps.
    with open(path, "wb") as raw, ThreadPoolExecutor(max_workers=1) as writer:
        stream: IO[bytes] = raw
        if path.name.endswith(".gz"):
            stream = cast(
                IO[bytes],
                gzip.GzipFile(
                    filename=path.name.removesuffix(".gz"),
                    mode="wb",
                    fileobj=raw,
                    compresslevel=compresslevel,
                    mtime=0,
                ),
            )
        pending: Future[int] | None = None
        try:
            for batch in _batches(campaign.lines(), 256):
                data = ("\n".join(batch) + "\n").encode("utf-8")
                json_bytes += len(data)
                if pending is not None:
                    pending.result()
                pending = writer.submit(stream.write, data)
            if pending is not None:
                pending.result()
        finally:
            if stream is not raw:
                stream.close()
    truth = campaign.truth()
    truth["measurements"] = campaign.measurements
    truth["sessions"] = campaign.sessions
    truth["empty_hours"] = [
        format_time(campaign.window_start + timedelta(hours=h)) for h in campaign.empty_hours
    ]
    truth["noise"] = {
        key: campaign.noise[key]
        for key in ("leaked", "stray_anomalies", "failures", "late_uploads")
    }
    target = truth_path(path)
    target.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return SimulationResult(
        out=path,
        truth=target,
        measurements=campaign.measurements,
        sessions=campaign.sessions,
        probes=campaign.probe_count,
        templates=len(campaign.templates),
        bytes_written=path.stat().st_size,
        bytes_json=json_bytes,
        seconds=time.perf_counter() - started,
    )


def _run_header(
    rng: random.Random,
    start: float,
    cc: str,
    asn: int,
    net_values: dict[int, tuple[str, str, str]],
    key_value: str,
) -> list[str]:
    """The JSON values one run's measurements share: test start time, the run's report
    id (a new one per run, as OONI Probe makes), network, probe key."""
    g = time.gmtime(int(start))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", g)
    rid = "".join(rng.choices(_ID_ALPHABET, k=16))
    report_id = f"{stamp}_webconnectivity_{cc}_{asn}_n1_{rid}"
    tst = dumps_line(time.strftime("%Y-%m-%d %H:%M:%S", g))
    asn_v, net_v, ntype_v = net_values[asn]
    return [tst, dumps_line(report_id), asn_v, net_v, ntype_v, key_value]
