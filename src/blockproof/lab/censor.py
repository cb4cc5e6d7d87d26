"""The censor's decisions, without I/O: which rule applies to a name, an address, a flow.

``Censor`` answers the questions the lab's wire and DNS servers ask (``dns``,
``tcp``, ``tls``, ``http``, ``throttle``) from a scenario's rules, first match
wins within a layer. ``resolve`` is the uncensored truth (the lab's
authoritative DNS). ``read_opening`` tells, from the first bytes a client sent,
what a DPI box can see: the SNI of a TLS ClientHello or the Host of an HTTP
request. Everything here is pure and table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from blockproof.lab.internet import Host
from blockproof.lab.scenario import Rule, Scenario
from blockproof.lab.sni import NotClientHello, parse_client_hello

# How much of a client's opening the censor buffers before giving up on finding
# a ClientHello's SNI or an HTTP request's Host.
MAX_OPENING = 1 << 16

_HTTP_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ",
                 b"PATCH ", b"TRACE ")  # fmt: skip


@dataclass(frozen=True, slots=True)
class DNSOutcome:
    """What a resolver path answers: ``rcode`` is NOERROR, NXDOMAIN, REFUSED or SERVFAIL."""

    rcode: str = "NOERROR"
    addresses: tuple[str, ...] = ()
    injected: tuple[str, ...] | None = None  # an injector's forged reply, sent first
    drop: bool = False


@dataclass(frozen=True, slots=True)
class Opening:
    """What a DPI box learned from the first bytes of a flow."""

    protocol: str  # "tls", "http", "unknown", or "incomplete" (read more)
    sni_first_segment: str | None = None  # SNI visible in the first segment alone
    sni: str | None = None  # SNI of the reassembled ClientHello
    host: str | None = None  # HTTP Host header


def read_opening(first_segment: bytes, buffered: bytes) -> Opening:
    """Classify the client's opening bytes; ``buffered`` includes ``first_segment``."""
    if not buffered:
        return Opening("incomplete")
    if buffered[0] == 0x16:
        try:
            hello = parse_client_hello(buffered)
            first = parse_client_hello(first_segment)
        except NotClientHello:
            return Opening("unknown")
        if hello is None:
            return Opening("incomplete" if len(buffered) < MAX_OPENING else "unknown")
        return Opening("tls", sni_first_segment=first.sni if first else None, sni=hello.sni)
    if buffered.startswith(_HTTP_METHODS) or any(m.startswith(buffered) for m in _HTTP_METHODS):
        end = buffered.find(b"\r\n\r\n")
        if end < 0:
            return Opening("incomplete" if len(buffered) < MAX_OPENING else "unknown")
        return Opening("http", host=_host_header(buffered[:end]))
    return Opening("unknown")


def _host_header(head: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            host = value.strip().decode("latin-1").lower()
            if host.startswith("["):
                return host.partition("]")[0] + "]"
            return host.partition(":")[0]
    return None


class Censor:
    """The scenario's rules, indexed for the questions the lab asks."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._by_ip: dict[str, Host] = {}
        for host in scenario.hosts:
            for ip in host.addresses:
                self._by_ip.setdefault(ip, host)
        self._layers = {
            layer: scenario.rules_for(layer) for layer in ("dns", "tcp", "tls", "http", "throttle")
        }

    def host_by_ip(self, ip: str) -> Host | None:
        return self._by_ip.get(ip)

    def resolve(self, name: str) -> tuple[str, ...] | None:
        """The true A records of ``name`` (None: the name does not exist)."""
        host = self.scenario.host(name)
        if host is None:
            return None
        return tuple(a for a in host.addresses if ":" not in a)

    def dns_rule(self, name: str, path: str) -> Rule | None:
        """The ``dns`` rule that censors ``name`` on the resolution ``path``, if any."""
        for rule in self._layers["dns"]:
            if rule.resolvers in ("all", path) and rule.matches(name):
                return rule
        return None

    def dns(self, name: str, path: str, *, censored: bool = True) -> DNSOutcome:
        """What the resolver ``path`` ("system" or "udp") answers for an A query."""
        truth = self.resolve(name)
        real = DNSOutcome("NXDOMAIN") if truth is None else DNSOutcome(addresses=truth)
        rule = self.dns_rule(name, path) if censored else None
        if rule is None:
            return real
        match rule.action:
            case "nxdomain":
                return DNSOutcome("NXDOMAIN")
            case "refused":
                return DNSOutcome("REFUSED")
            case "servfail":
                return DNSOutcome("SERVFAIL")
            case "no_answer":
                return DNSOutcome()
            case "forge" | "bogon":
                return DNSOutcome(addresses=(rule.answer,))
            case "inject":
                return DNSOutcome(real.rcode, real.addresses, injected=(rule.answer,))
            case "drop":
                return DNSOutcome(drop=True)
        return real

    def tcp(self, ip: str, port: int) -> Rule | None:
        host = self._by_ip.get(ip)
        for rule in self._layers["tcp"]:
            if rule.ports and port not in rule.ports:
                continue
            if ip in rule.ips or (host is not None and any(rule.matches(n) for n in host.names)):
                return rule
        return None

    def tls(self, opening: Opening, ip: str | None = None, port: int | None = None) -> Rule | None:
        """The rule for a ClientHello sent to ``ip``:``port`` (rules naming ``ips`` or
        ``ports`` need them to match too)."""
        for rule in self._layers["tls"]:
            sni = opening.sni_first_segment if rule.inspect == "first_segment" else opening.sni
            if rule.applies(sni, ip, port):
                return rule
        return None

    def http(self, opening: Opening, ip: str | None = None, port: int | None = None) -> Rule | None:
        for rule in self._layers["http"]:
            if rule.applies(opening.host, ip, port):
                return rule
        return None

    def throttle(
        self, name: str | None, ip: str | None = None, port: int | None = None
    ) -> Rule | None:
        for rule in self._layers["throttle"]:
            if rule.applies(name, ip, port):
                return rule
        return None
