"""The simulated world: sites, their addresses, pages and certificates, and what the path
does to one measurement.

Theory of operation
-------------------

1. **Sites.** Every measured host is a ``Site`` with stable, plausible public
   addresses, an AS, a title and a page (``KNOWN_SITES``; an unknown host gets a
   Cloudflare-like address derived from a hash of its name). A CDN site may give the
   probe (in the country) other addresses than the control (abroad), in the same AS.
   Certificates are made once per host, deterministically (Ed25519), and issued by a
   "blockproof simulator CA" that says in its name that it is not a real one. Pages are
   deterministic HTML of the site's size; an http:// URL answers a 301 to https://.
2. **Interference.** What the path does to one measurement is an ``Interference``:
   an episode's method (``scenario.METHODS``: a forged or failed DNS answer, dropped or
   refused SYNs, a reset/close/silence after a ClientHello naming the site, a reset or
   a blockpage for a plain-HTTP request), a loss of connectivity (outage), or one of
   the baseline's spurious failures (``FALSE_POSITIVE_KINDS``), or nothing. A ``World``
   is one site under one interference: what a lookup, a connect, a TLS handshake and a
   fetch get on the probe's path, and what the control, on an uncensored network, gets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from blockproof.lab.scenario import blockpage_body
from blockproof.model.observations import HTTPResponse
from blockproof.simulate.scenario import METHODS


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


def hash_int(*parts: str) -> int:
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _address_in(network: str, *parts: str) -> str:
    net = ipaddress.IPv4Network(network)
    span = net.num_addresses - 2
    return str(net.network_address + 1 + hash_int(*parts) % span)


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
def certificates(host: str, not_before: datetime, not_after: datetime) -> tuple[bytes, ...]:
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
        .serial_number(hash_int("serial", host) >> 1 | 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, None)
    )
    return (leaf.public_bytes(serialization.Encoding.DER),)


def dns_wire(qid: int, host: str, addresses: Sequence[str], rcode: int) -> bytes:
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
            return FAILURE_RULES
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
FAILURE_RULES = frozenset({"wc.control.unavailable"})
OK_RULES = frozenset({"wc.ok.https", "wc.ok"})

GENERIC_TIMEOUT = "generic_timeout_error"
CONNECTION_RESET = "connection_reset"
CONNECTION_REFUSED = "connection_refused"


class World:
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
            return (), GENERIC_TIMEOUT, None
        if m in ("dns-bogon", "dns-blockpage-ip"):
            assert self.i is not None
            return (self.i.answer,), None, 0
        if m == "fp-dns-inconsistent":
            return (self.stale,), None, 0
        return self.site.addresses, None, 0

    def connect(self, ip: str, port: int) -> str | None:
        m, site = self.m, self.site
        if m == "blackout" or (m == "tcp-blackhole" and self.i is not None and self.i.everything):
            return GENERIC_TIMEOUT
        if ip in site.all_addresses:
            if m in ("tcp-blackhole", "fp-tcp-timeout", "fail-tcp"):
                return GENERIC_TIMEOUT
            if m == "tcp-refused":
                return CONNECTION_REFUSED
            return None
        if m == "dns-blockpage-ip" and self.i is not None and ip == self.i.answer:
            return None if port == 80 else CONNECTION_REFUSED
        return GENERIC_TIMEOUT  # a bogon, a stale address: nothing answers

    def tls(self, ip: str) -> str | None:
        return {
            "tls-reset": CONNECTION_RESET,
            "tls-eof": "eof_error",
            "tls-timeout": GENERIC_TIMEOUT,
            "fp-tls-timeout": GENERIC_TIMEOUT,
        }.get(self.m)

    def fetch(self, ip: str, url: str, date: str) -> tuple[HTTPResponse | None, str | None]:
        https = url.startswith("https:")
        if self.m == "dns-blockpage-ip" and self.i is not None and ip == self.i.answer:
            return _blockpage_response(self.i.blockpage, date, server=True), None
        if not https and self.m == "http-reset":
            return None, CONNECTION_RESET
        if not https and self.m == "http-blockpage" and self.i is not None:
            return _blockpage_response(self.i.blockpage, date, server=False), None
        return site_response(self.site, url, date), None

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
        return GENERIC_TIMEOUT


def site_response(site: Site, url: str, date: str) -> HTTPResponse:
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
