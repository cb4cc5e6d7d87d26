"""Lab scenarios: a censored internet described in a TOML file, checked on load.

A scenario says where the probe stands (``[probe]``), which sites exist beyond
the default internet (``[[host]]``), what the censor does to the probe's
traffic (``[[rule]]``, first match wins within a layer) and, optionally, what
the probe should conclude (``[[expect]]``). The format is documented for
researchers in docs/lab.md; this module is its single definition.

Loading is strict: an unknown key, a wrong type or an impossible value raises
``ScenarioError`` naming the file, the key (``rule[2].action``) and the
problem, so that a typo never silently turns a rule off.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from blockproof.core.idn import IDNAError, host_to_ascii
from blockproof.errors import ConfigError
from blockproof.lab.hostile import DNS_BEHAVIOURS, HOST_BEHAVIOURS, TLS_BEHAVIOURS
from blockproof.lab.internet import (
    DEFAULT_HOSTS,
    DEFAULT_PROBE,
    ROLE_ISP_PROXY,
    ROLE_SITE,
    Headers,
    Host,
    PathResponse,
    Probe,
    ProbeView,
)
from blockproof.tomlfile import located, read_toml

__all__ = [
    "LAYERS",
    "Expect",
    "HostileResolver",
    "Rule",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "shipped_scenario_groups",
    "shipped_scenarios",
]


class ScenarioError(ConfigError):
    """A scenario file is malformed: the message names the file, the key and the problem."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(located(source, key, problem))
        self.source = source
        self.key = key
        self.problem = problem


# layer -> the actions it knows.
LAYERS: dict[str, tuple[str, ...]] = {
    "dns": ("nxdomain", "refused", "servfail", "no_answer", "forge", "bogon", "inject", "drop"),
    "tcp": ("blackhole", "refuse"),
    "tls": ("reset", "fin", "drop", "mitm"),
    "http": ("reset", "blockpage", "redirect", "drop", "fin"),
    "throttle": ("throttle",),
}
DNS_RESOLVERS = ("all", "system", "udp")
TLS_INSPECT = ("reassemble", "first_segment")
CERT_KINDS = ("valid", "expired", "wrong_host", "self_signed")
DOWN_KINDS = ("no", "refuse", "timeout")
HOST_ROLES = (ROLE_SITE, ROLE_ISP_PROXY)
GETADDRINFO_KINDS = ("default", "android")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
SCHEMES = ("http", "https")
MAX_BODY_BYTES = 64 << 20  # OONI's large-file cases serve 32 MiB
# Response headers whose framing belongs to the lab's HTTP server.
RESERVED_HEADERS = ("content-length", "transfer-encoding", "connection")
# Layers whose rules may also name server addresses and ports.
ENDPOINT_LAYERS = ("tcp", "tls", "http", "throttle")
DEFAULT_BOGON_ANSWER = "10.10.34.35"
DEFAULT_BLOCKPAGE = "isp_pk_nayatel_block_optin"
# Keys of an [[expect]] table that are not test_keys.
EXPECT_META = ("url", "null", "method", "rule_id")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One censor rule. ``match`` holds domain patterns: ``x.com``, ``*.twimg.com``, ``*``."""

    layer: str
    action: str
    match: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()  # server addresses (tcp: or-ed with match; else and-ed)
    ports: tuple[int, ...] = ()  # server ports: empty means every port
    answer: str = ""  # dns forge/bogon/inject
    resolvers: str = "all"  # dns: which resolution path is censored
    inspect: str = "reassemble"  # tls: how the DPI box reads the ClientHello
    blockpage: str = DEFAULT_BLOCKPAGE  # http blockpage, tls mitm page
    location: str = ""  # http redirect target
    rate_kbps: float = 0.0  # throttle: 0 means no cap
    delay_ms: float = 0.0  # throttle: added per delivery
    loss: float = 0.0  # throttle: fraction of segments lost (each costs a retransmission)
    status: int = 200  # http blockpage: the status line
    body: str = ""  # http blockpage: an inline page instead of the ``blockpage`` file

    def matches(self, name: str | None) -> bool:
        return name is not None and any(domain_matches(p, name) for p in self.match)

    def applies(self, name: str | None, ip: str | None, port: int | None) -> bool:
        """A tls/http/throttle rule: every criterion given (names, ips, ports) must hold."""
        if self.ports and port not in self.ports:
            return False
        if self.ips and ip not in self.ips:
            return False
        return not self.match or self.matches(name)


def domain_matches(pattern: str, name: str) -> bool:
    """``*`` matches everything, ``*.example.com`` every proper subdomain, else exact."""
    name = name.lower().rstrip(".")
    pattern = pattern.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


@dataclass(frozen=True, slots=True, kw_only=True)
class HostileResolver:
    """The public resolver misbehaves (``hostile``, see lab/hostile.py) for ``match``."""

    hostile: str
    match: tuple[str, ...] = ("*",)

    def matches(self, name: str) -> bool:
        return any(domain_matches(p, name) for p in self.match)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expect:
    """What the probe must conclude about one URL."""

    url: str
    keys: Mapping[str, Any] = field(default_factory=dict)  # test_keys that must be equal
    null: tuple[str, ...] = ()  # test_keys that must be null
    method: str | None = None  # x_verdict.method
    rule_id: str | None = None  # x_verdict.rule_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    description: str = ""
    source: str = "<scenario>"
    rtt_ms: float = 0.0
    probe: Probe = DEFAULT_PROBE
    hosts: tuple[Host, ...] = DEFAULT_HOSTS
    rules: tuple[Rule, ...] = ()
    resolver: tuple[HostileResolver, ...] = ()  # first match wins
    expect: tuple[Expect, ...] = ()

    def host(self, name: str) -> Host | None:
        name = name.lower().rstrip(".")
        if not name.isascii():
            try:
                name = host_to_ascii(name)
            except IDNAError:
                return None
        for host in self.hosts:
            if name == host.name or name in host.aliases:
                return host
        return None

    def rules_for(self, layer: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.layer == layer)

    def hostile_dns(self, name: str) -> str | None:
        """How the public resolver misbehaves for ``name`` (None: it does not)."""
        for entry in self.resolver:
            if entry.matches(name):
                return entry.hostile
        return None

    def with_hosts(self, hosts: Iterable[Host]) -> Scenario:
        """A copy with ``hosts`` added (a host of the same name is replaced)."""
        return replace(self, hosts=_merge_hosts(self.hosts, tuple(hosts)))


def _merge_hosts(base: tuple[Host, ...], extra: tuple[Host, ...]) -> tuple[Host, ...]:
    names = {h.name for h in extra}
    return tuple(h for h in base if h.name not in names) + extra


# --- strict reading ------------------------------------------------------------------


class _Reader:
    """Typed access to one TOML table, remembering where it is for error messages."""

    def __init__(self, source: str, path: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ScenarioError(source, path or "(top level)", "must be a table")
        self.source = source
        self.path = path
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, self.key(name), problem)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise self.fail(name, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(name, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def require(self, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in self.table:
            raise self.fail(name, "is required")
        return self.get(name, kind)

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value: str = self.get(name, str, default)
        if value not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name, (list, str), [])
        if isinstance(value, str):
            value = [value]
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{name}[{i}]", "expected a non-empty string")
        return tuple(value)

    def ips(self, name: str) -> tuple[str, ...]:
        values = self.strings(name)
        for i, value in enumerate(values):
            _check_ip(self, f"{name}[{i}]", value)
        return values

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key (see docs/lab.md for the format)")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}  # fmt: skip
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _check_ip(reader: _Reader, key: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        problem = f"{value!r} is not an IP address"
        raise ScenarioError(reader.source, reader.key(key), problem) from None


def _read_probe(source: str, table: Any) -> Probe:
    r = _Reader(source, "probe", table)
    cc = r.get("cc", str, DEFAULT_PROBE.cc)
    if len(cc) != 2 or not cc.isalpha() or not cc.isupper():
        raise r.fail("cc", f"{cc!r} is not a two-letter upper-case country code")
    asn = r.get("asn", int, DEFAULT_PROBE.asn)
    if not 0 <= asn < 2**32:
        raise r.fail("asn", f"{asn} is not an AS number")
    probe = Probe(
        cc=cc,
        asn=asn,
        network=r.get("network", str, DEFAULT_PROBE.network),
        getaddrinfo=r.choice("getaddrinfo", GETADDRINFO_KINDS, "default"),
    )
    r.finish()
    return probe


def idna_name(r: _Reader, key: str, name: str) -> str:
    """``name`` as the lab's DNS, certificates and Host routing know it: lowercase IDNA."""
    try:
        return host_to_ascii(name.rstrip(".")).rstrip(".")
    except IDNAError as exc:
        raise r.fail(key, str(exc)) from None


def _idna_pattern(r: _Reader, key: str, pattern: str) -> str:
    _check_pattern(r, key, pattern)
    if pattern == "*":
        return pattern
    if pattern.startswith("*."):
        return "*." + idna_name(r, key, pattern[2:])
    return idna_name(r, key, pattern)


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _header_value_problem(value: str) -> str | None:
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        return "contains a control character (CR, LF, NUL...)"
    if value != value.strip(" \t"):
        return "starts or ends with white space"
    return None


def _read_headers(r: _Reader, name: str) -> Headers:
    table = r.get(name, dict, {})
    headers: list[tuple[str, str]] = []
    for header, value in table.items():
        key = f"{name}.{header}"
        if not _TOKEN.match(header):
            raise r.fail(key, f"{header!r} is not an HTTP header name")
        if header.lower() in RESERVED_HEADERS:
            raise r.fail(key, f"the lab's server sets {header} itself")
        if not isinstance(value, str) or isinstance(value, bool):
            raise r.fail(key, f"expected a string, got {type(value).__name__}")
        problem = _header_value_problem(value)
        if problem:
            raise r.fail(key, f"the value {problem}")
        headers.append((header, value))
    return tuple(headers)


def _read_location(r: _Reader, name: str) -> str | None:
    """A Location sent as is: any string (even a broken URL), but one header line."""
    value: str | None = r.get(name, str)
    if value is None:
        return None
    if not value:
        raise r.fail(name, "a location cannot be empty")
    problem = _header_value_problem(value)
    if problem:
        raise r.fail(name, f"the location {problem}")
    return value


def _read_status(r: _Reader, name: str, *, redirect: bool) -> int | None:
    status: int | None = r.get(name, int)
    if status is None:
        return None
    if redirect and status not in REDIRECT_STATUSES:
        choices = ", ".join(map(str, REDIRECT_STATUSES))
        raise r.fail(name, f"{status} is not a redirect status ({choices})")
    if not redirect and not 200 <= status <= 599:
        raise r.fail(name, f"{status} is not an HTTP status code of a page (200 to 599)")
    return status


def _read_body(r: _Reader) -> tuple[str | None, int | None]:
    body: str | None = r.get("body", str)
    body_bytes: int | None = r.get("body_bytes", int)
    if body is not None and body_bytes is not None:
        raise r.fail("body_bytes", "give either body (the exact page) or body_bytes, not both")
    if body_bytes is not None and not 0 <= body_bytes <= MAX_BODY_BYTES:
        raise r.fail("body_bytes", f"must be between 0 and {MAX_BODY_BYTES}")
    return body, body_bytes


def _read_redirect_url(r: _Reader, key: str) -> str | None:
    value: str | None = r.get(key, str)
    if value and not value.startswith(("http://", "https://")):
        raise r.fail(key, f"{value!r} is not an http:// or https:// URL")
    return value


def _read_path(source: str, key: str, table: Any) -> PathResponse:
    r = _Reader(source, key, table)
    path = r.require("path", str)
    if not path.startswith("/") or _header_value_problem(path) or " " in path:
        raise r.fail("path", f"{path!r} is not a request target (it starts with '/')")
    scheme = r.choice("scheme", ("", *SCHEMES), "")
    location = _read_location(r, "location")
    status = _read_status(r, "status", redirect=location is not None)
    if location is not None:
        for page_key in ("title", "body", "body_bytes"):
            if page_key in r.table:
                raise r.fail(page_key, "a redirect (location) has no page")
        entry = PathResponse(path=path, scheme=scheme, status=status, location=location)
    else:
        body, body_bytes = _read_body(r)
        entry = PathResponse(
            path=path, scheme=scheme, status=status, title=r.get("title", str),
            body=body, body_bytes=body_bytes,
        )  # fmt: skip
    r.finish()
    return entry


def _read_view(source: str, key: str, table: Any) -> ProbeView:
    r = _Reader(source, key, table)
    location = _read_location(r, "location")
    status = _read_status(r, "status", redirect=location is not None)
    if location is not None:
        for page_key in ("title", "body", "body_bytes", "redirect_http", "redirect_https"):
            if page_key in r.table:
                raise r.fail(page_key, "a redirect (location) has no page")
    body, body_bytes = _read_body(r)
    view = ProbeView(
        status=status,
        title=r.get("title", str),
        body=body,
        body_bytes=body_bytes,
        headers=_read_headers(r, "headers"),
        location=location,
        redirect_http=_read_redirect_url(r, "redirect_http"),
        redirect_https=_read_redirect_url(r, "redirect_https"),
    )
    r.finish()
    return view


# Keys that make no sense on a transparent ISP proxy: it serves nothing itself.
_PROXY_EXCLUDED = ("body", "body_bytes", "title", "status", "headers", "path", "probe",
                   "redirect_http", "redirect_https", "blockpage", "hostile", "cert")  # fmt: skip


def _read_host(source: str, index: int, table: Any, blockpages: frozenset[str]) -> Host:
    r = _Reader(source, f"host[{index}]", table)
    written = r.require("name", str).rstrip(".")
    name = idna_name(r, "name", written)
    addresses = r.ips("addresses")
    if not addresses:
        raise r.fail("addresses", "a host needs at least one address")
    role = r.choice("role", HOST_ROLES, ROLE_SITE)
    if role == ROLE_ISP_PROXY:
        for key in _PROXY_EXCLUDED:
            if key in r.table:
                raise r.fail(key, "an isp_proxy host relays to the real sites; it serves nothing")
    redirects = {
        key: _read_redirect_url(r, key) or "" for key in ("redirect_http", "redirect_https")
    }
    page = r.get("blockpage", str, "")
    if page and page not in blockpages:
        raise r.fail(
            "blockpage", f"unknown blockpage {page!r}; known: {', '.join(sorted(blockpages))}"
        )
    status = r.get("status", int, 200)
    if not 100 <= status <= 599:
        raise r.fail("status", f"{status} is not an HTTP status code")
    body, body_bytes = _read_body(r)
    hostile = r.get("hostile", str, "")
    if hostile and hostile not in HOST_BEHAVIOURS:
        raise r.fail("hostile", f"{hostile!r} is not one of {', '.join(HOST_BEHAVIOURS)}")
    if hostile in TLS_BEHAVIOURS and not r.get("https", bool, True):
        raise r.fail("hostile", f"{hostile!r} misbehaves on :443, but the host has https = false")
    if hostile and page:
        raise r.fail("hostile", "a host is either hostile or a blockpage server, not both")
    paths: list[PathResponse] = []
    seen: set[tuple[str, str]] = set()
    for i, entry_table in enumerate(r.get("path", list, [])):
        entry = _read_path(source, f"{r.path}.path[{i}]", entry_table)
        schemes = (entry.scheme,) if entry.scheme else SCHEMES
        if any((entry.path, s) in seen for s in schemes):
            raise ScenarioError(
                source, f"{r.path}.path[{i}].path", f"{entry.path!r} is defined twice"
            )
        seen.update((entry.path, s) for s in schemes)
        paths.append(entry)
    probe_table = r.get("probe", dict)
    view = _read_view(source, f"{r.path}.probe", probe_table) if probe_table is not None else None
    if (paths or view or body is not None) and (page or hostile):
        raise r.fail(
            "path" if paths else "probe" if view else "body",
            "a blockpage server or a hostile host answers in its own way",
        )
    host = Host(
        name=name,
        addresses=addresses,
        aliases=tuple(idna_name(r, f"aliases[{i}]", a) for i, a in enumerate(r.strings("aliases"))),
        asn=r.get("asn", int, 0),
        org=r.get("org", str, ""),
        title=r.get("title", str, written),
        body_bytes=6000 if body_bytes is None else body_bytes,
        status=status,
        cert=r.choice("cert", CERT_KINDS, "valid"),
        down=r.choice("down", DOWN_KINDS, "no"),
        http=r.get("http", bool, True),
        https=r.get("https", bool, True),
        redirect_http=redirects["redirect_http"],
        redirect_https=redirects["redirect_https"],
        blockpage=page,
        hostile=hostile,
        role=role,
        body=body,
        headers=_read_headers(r, "headers"),
        paths=tuple(paths),
        probe=view,
    )
    r.finish()
    return host


def _read_ports(r: _Reader) -> tuple[int, ...]:
    ports = r.get("ports", list, [])
    for i, port in enumerate(ports):
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise r.fail(f"ports[{i}]", f"{port!r} is not a port number")
    return tuple(ports)


def _read_rule(source: str, index: int, table: Any, blockpages: frozenset[str]) -> Rule:
    r = _Reader(source, f"rule[{index}]", table)
    layer = r.require("layer", str)
    if layer not in LAYERS:
        raise r.fail("layer", f"{layer!r} is not one of {', '.join(LAYERS)}")
    actions = LAYERS[layer]
    action = r.choice("action", actions, actions[0]) if layer == "throttle" else ""
    if layer != "throttle":
        action = r.require("action", str)
        if action not in actions:
            raise r.fail("action", f"{action!r} is not a {layer} action ({', '.join(actions)})")
    match = tuple(_idna_pattern(r, f"match[{i}]", p) for i, p in enumerate(r.strings("match")))
    ips = r.ips("ips") if layer in ENDPOINT_LAYERS else ()
    if not match and not ips:
        where = f" (or ips, on {', '.join(ENDPOINT_LAYERS)})" if layer != "dns" else ""
        raise r.fail("match", f"a rule needs domain patterns to match{where}")
    kwargs: dict[str, Any] = {"layer": layer, "action": action, "match": match, "ips": ips}
    if layer in ENDPOINT_LAYERS:
        kwargs["ports"] = _read_ports(r)
    if layer == "dns":
        kwargs["resolvers"] = r.choice("resolvers", DNS_RESOLVERS, "all")
        answer = r.get("answer", str, DEFAULT_BOGON_ANSWER if action == "bogon" else "")
        if action in ("forge", "bogon", "inject"):
            if not answer:
                raise r.fail("answer", f"a {action} rule needs the forged address")
            _check_ip(r, "answer", answer)
        kwargs["answer"] = answer
    elif layer == "tls":
        kwargs["inspect"] = r.choice("inspect", TLS_INSPECT, "reassemble")
        kwargs["blockpage"] = r.get("blockpage", str, DEFAULT_BLOCKPAGE)
    elif layer == "http":
        kwargs["blockpage"] = r.get("blockpage", str, DEFAULT_BLOCKPAGE)
        kwargs["location"] = r.get("location", str, "")
        if action == "redirect" and not kwargs["location"].startswith(("http://", "https://")):
            raise r.fail("location", "a redirect rule needs an http:// or https:// location")
        if action == "blockpage":
            status = r.get("status", int, 200)
            if not 200 <= status <= 599:
                raise r.fail("status", f"{status} is not an HTTP status code (200 to 599)")
            kwargs["status"] = status
            kwargs["body"] = r.get("body", str, "")
            if "body" in r.table and "blockpage" in r.table:
                raise r.fail("body", "give either blockpage (a shipped page) or body, not both")
    elif layer == "throttle":
        kwargs["rate_kbps"] = r.get("rate_kbps", float, 0.0)
        kwargs["delay_ms"] = r.get("delay_ms", float, 0.0)
        kwargs["loss"] = r.get("loss", float, 0.0)
        if kwargs["rate_kbps"] < 0 or kwargs["delay_ms"] < 0:
            raise r.fail("rate_kbps", "rates and delays cannot be negative")
        if not 0 <= kwargs["loss"] < 1:
            raise r.fail("loss", "must be a fraction of segments, at least 0 and below 1")
        if not kwargs["rate_kbps"] and not kwargs["delay_ms"] and not kwargs["loss"]:
            raise r.fail("rate_kbps", "a throttle rule needs rate_kbps or delay_ms (or loss)")
    if layer in ("tls", "http") and kwargs["blockpage"] not in blockpages:
        raise r.fail(
            "blockpage",
            f"unknown blockpage {kwargs['blockpage']!r}; known: {', '.join(sorted(blockpages))}",
        )
    r.finish()
    return Rule(**kwargs)


def _read_resolver(source: str, index: int, table: Any) -> HostileResolver:
    r = _Reader(source, f"resolver[{index}]", table)
    hostile = r.require("hostile", str)
    if hostile not in DNS_BEHAVIOURS:
        raise r.fail("hostile", f"{hostile!r} is not one of {', '.join(DNS_BEHAVIOURS)}")
    match = tuple(_idna_pattern(r, f"match[{i}]", p) for i, p in enumerate(r.strings("match")))
    r.finish()
    return HostileResolver(hostile=hostile, match=match or ("*",))


def _check_pattern(r: _Reader, key: str, pattern: str) -> None:
    if (
        "*" in pattern
        and pattern != "*"
        and not (pattern.startswith("*.") and "*" not in pattern[2:])
    ):
        raise r.fail(key, f"{pattern!r}: '*' is only allowed as '*' or '*.domain'")


def _read_expect(source: str, index: int, table: Any) -> Expect:
    r = _Reader(source, f"expect[{index}]", table)
    url = r.require("url", str)
    if not url.startswith(("http://", "https://")):
        raise r.fail("url", f"{url!r} is not an http:// or https:// URL")
    null = r.strings("null")
    method = r.get("method", str)
    rule_id = r.get("rule_id", str)
    keys = {k: v for k, v in r.table.items() if k not in EXPECT_META}
    for key in keys:
        if key in null:
            raise r.fail(key, "is both given a value and listed in null")
    return Expect(url=url, keys=keys, null=null, method=method, rule_id=rule_id)


def parse_scenario(data: Mapping[str, Any], *, source: str, name: str) -> Scenario:
    """A Scenario from parsed TOML; ScenarioError on any problem."""
    blockpages = frozenset(blockpage_names())
    r = _Reader(source, "", dict(data))
    name = r.get("name", str, name)
    description = r.get("description", str, "")
    rtt_ms = r.get("rtt_ms", float, 0.0)
    if not 0 <= rtt_ms <= 5000:
        raise r.fail("rtt_ms", "must be between 0 and 5000")
    probe = _read_probe(source, r.get("probe", dict, {}))
    hosts = tuple(
        _read_host(source, i, t, blockpages) for i, t in enumerate(r.get("host", list, []))
    )
    rules = tuple(
        _read_rule(source, i, t, blockpages) for i, t in enumerate(r.get("rule", list, []))
    )
    resolver = tuple(
        _read_resolver(source, i, t) for i, t in enumerate(r.get("resolver", list, []))
    )
    expect = tuple(_read_expect(source, i, t) for i, t in enumerate(r.get("expect", list, [])))
    r.finish()
    seen: dict[str, int] = {}
    for i, host in enumerate(hosts):
        if host.name in seen:
            raise ScenarioError(source, f"host[{i}].name", f"{host.name!r} is defined twice")
        seen[host.name] = i
    return Scenario(
        name=name,
        description=description,
        source=source,
        rtt_ms=rtt_ms,
        probe=probe,
        hosts=_merge_hosts(DEFAULT_HOSTS, hosts),
        rules=rules,
        resolver=resolver,
        expect=expect,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file."""
    source, data = read_toml(path, ScenarioError)
    return parse_scenario(data, source=source, name=Path(path).stem)


# Subfolders of scenarios/ with their headings in ``blockproof lab list``, after ours.
SCENARIO_GROUPS = (("ooni-qa", "OONI QA catalogue (probe-cli internal/webconnectivityqa)"),)


def shipped_scenario_groups() -> list[tuple[str, list[Path]]]:
    """The shipped scenarios by group: ours first, then each subfolder's, sorted by name."""
    folder = resources.files("blockproof.lab") / "scenarios"
    groups = [("blockproof's scenarios", _toml_files(folder))]
    for name, heading in SCENARIO_GROUPS:
        sub = folder / name
        groups.append((heading, _toml_files(sub) if sub.is_dir() else []))
    return groups


def _toml_files(folder: Any) -> list[Path]:
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def shipped_scenarios() -> list[Path]:
    """The scenario files that come with blockproof: ours, then the subfolders' (the OONI
    QA catalogue), each sorted by name. A name is found in any group."""
    return [path for _, paths in shipped_scenario_groups() for path in paths]


def blockpage_names() -> list[str]:
    folder = resources.files("blockproof.lab") / "blockpages"
    return sorted(
        p.name.removesuffix(".html") for p in folder.iterdir() if p.name.endswith(".html")
    )


def blockpage_body(name: str) -> bytes:
    return (resources.files("blockproof.lab") / "blockpages" / f"{name}.html").read_bytes()
