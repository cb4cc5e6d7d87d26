"""The decision: which observation decides, by which row of OONI's table; our DNS view.

``blocking``/``accessible`` come from a walk over the classic observations
(``walk_order``: latest redirect first, then HTTP > TLS > TCP > DNS, successes
first): the first one matching a row of OONI's decision table (``OONI_ROWS``)
decides (``decide``); an inconsistent DNS turns any blocking string into
``"dns"`` (``apply_row``).

Our verdict reads DNS with a CDN guard (``dns_view``): a resolved address is also
valid when the probe completed a certificate-verified TLS handshake to it for the
URL's host, or when the control's ``ip_info`` marks it valid for the domain
(``validated_addresses``). It never changes OONI's keys.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from blockproof.core.bogons import is_bogon, is_loopback
from blockproof.core.webconnectivity.metrics import HTTPDiff, Metrics
from blockproof.core.webconnectivity.observations import (
    DNS,
    DNS_NO_ANSWER,
    HTTP,
    TCP,
    TLS,
    Observation,
    ObservationSet,
)
from blockproof.core.webconnectivity.rules import (
    DNS_RULE_BY_FAILURE,
    ROWS_BY_ID,
    OoniRow,
    Setter,
)
from blockproof.model.control import IP_FLAG_VALID_FOR_DOMAIN
from blockproof.model.observations import split_endpoint
from blockproof.model.web import WebObservations

_UNKNOWN_FAILURE = "unknown_failure"  # sorts undefined failures last, as OONI does


def walk_order(c: ObservationSet) -> list[Observation]:
    """The observations in decision order: latest redirect first, then HTTP > TLS > TCP >
    DNS, successes first (then failures by name, latest transaction first)."""
    return sorted([*c.dns_failures, *c.dns_successes, *c.endpoints.values()], key=_walk_key)


def first_in_walk_order(c: ObservationSet) -> Observation:
    """``walk_order(c)[0]`` without sorting the rest (``c`` must have an observation)."""
    return min([*c.dns_failures, *c.dns_successes, *c.endpoints.values()], key=_walk_key)


def _walk_key(e: Observation) -> tuple[int, int, str, int]:
    failure = _UNKNOWN_FAILURE if e.failure is None else e.failure
    return (-e.depth, -e.type, failure, -e.txid)


def _only_loopback(addrs: Iterable[str]) -> bool:
    count = 0
    for addr in addrs:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            continue
        if not is_loopback(addr):
            return False
        count += 1
    return count > 0


def decide(linear: list[Observation], diff: HTTPDiff) -> tuple[OoniRow | None, Observation | None]:
    """Walk the classic observations; the first one matching a row decides."""
    for e in linear:
        if e.http_final:
            if e.tls_failure == "":
                return ROWS_BY_ID["1.1"], e
            if e.ctrl_http_failure is None:
                return ROWS_BY_ID["1.2"], e
            return (ROWS_BY_ID["1.4"] if diff.differs() else ROWS_BY_ID["1.3"]), e
        if not e.failure:
            if (
                e.type == DNS
                and e.ctrl_dns_failure == ""
                and e.dns_addrs is not None
                and e.ctrl_dns_addrs is not None
                and _only_loopback(e.dns_addrs)
            ):
                return (ROWS_BY_ID["7"] if _only_loopback(e.ctrl_dns_addrs) else ROWS_BY_ID["6"]), e
            continue
        if e.type == HTTP:
            if e.ctrl_http_failure is None:
                return ROWS_BY_ID["2.1"], e
            return (ROWS_BY_ID["2.2"] if e.ctrl_http_failure else ROWS_BY_ID["2.3"]), e
        if e.type in (TLS, TCP):
            control = e.ctrl_tls_failure if e.type == TLS else e.ctrl_tcp_failure
            prefix = "3" if e.type == TLS else "4"
            if control is None:
                suffix = ".1.1" if e.ctrl_http_failure is None else ".1.2"
                return ROWS_BY_ID[prefix + suffix], e
            return ROWS_BY_ID[prefix + (".2" if control else ".3")], e
        if e.type == DNS:
            if e.ctrl_dns_failure is None:
                return (
                    ROWS_BY_ID["5.1.1"] if e.ctrl_http_failure is None else ROWS_BY_ID["5.1.2"]
                ), e
            if e.ctrl_dns_failure:
                return ROWS_BY_ID["5.2"], e
            if e.failure == DNS_NO_ANSWER and e.ctrl_dns_addrs is not None and not e.ctrl_dns_addrs:
                return ROWS_BY_ID["5.3"], e
            return ROWS_BY_ID["5.4"], e
    return None, None


def apply_row(row: OoniRow | None, inconsistent: bool) -> tuple[str | bool | None, bool | None]:
    """``blocking`` and ``accessible`` as ``row`` sets them, DNS inconsistency applied."""
    if row is None:
        return None, None
    if row.setter is Setter.FALSE:
        return False, True
    if row.setter is Setter.NIL:
        return ("dns", False) if inconsistent else (None, None)
    if row.setter is Setter.STRING:
        return ("dns" if inconsistent else row.blocking), False
    return ("dns" if inconsistent else False), False


@dataclass(frozen=True, slots=True)
class DNSView:
    """Our reading of the system resolver's answers, CDN guard included."""

    inconsistent: bool
    rule_id: str | None  # the DNS rule when inconsistent
    failed_lookup: Observation | None  # the unexpected failure, if that is the reason
    probe_addrs: tuple[str, ...]
    guarded: dict[str, str]  # address -> why it is valid despite the mismatch


def validated_addresses(obs: WebObservations, host: str) -> dict[str, str]:
    """Addresses proven to serve ``host``: our CDN guard."""
    proofs: dict[str, str] = {}
    for h in obs.tls_handshakes:
        if h.failure is not None or h.no_tls_verify or h.server_name.lower() != host.lower():
            continue
        try:
            ip, _ = split_endpoint(h.address)
        except ValueError:
            continue
        proofs.setdefault(ip, f"a verified TLS handshake for {host}")
    if obs.control is not None:
        for ip, info in obs.control.ip_info.items():
            if info.flags & IP_FLAG_VALID_FOR_DOMAIN:
                proofs.setdefault(ip, f"the control's TLS handshake for {host}")
    return proofs


def dns_view(m: Metrics, proofs: dict[str, str]) -> DNSView:
    probe_addrs: list[str] = []
    for entry in m.dns_success.values():
        probe_addrs.extend(a for a in sorted(entry.dns_addrs or ()) if a not in probe_addrs)
    if m.dns_unexpected_failure:
        entry = next(iter(m.dns_unexpected_failure.values()))
        rule = DNS_RULE_BY_FAILURE.get(entry.dns_failure or "", "wc.dns.failure")
        return DNSView(True, rule, entry, tuple(probe_addrs), {})
    guarded: dict[str, str] = {}
    invalid: list[Observation] = []
    for entry in m.dns_invalid_classic.values():
        proven = {a: proofs[a] for a in entry.dns_addrs or () if a in proofs}
        if proven:
            guarded.update(proven)
        else:
            invalid.append(entry)
    ghost = False
    if m.expectations is not None and not m.expectations.dns_addrs:
        for entry in m.dns_success.values():
            proven = {a: proofs[a] for a in entry.dns_addrs or () if a in proofs}
            guarded.update(proven)
            ghost = ghost or not proven
    if invalid:
        addrs = [a for e in invalid for a in sorted(e.dns_addrs or ())]
        if _only_loopback(addrs):
            rule = "wc.dns.localhost"
        elif any(is_bogon(a) for a in addrs):
            rule = "wc.dns.bogon"
        else:
            rule = "wc.dns.inconsistent"
        return DNSView(True, rule, None, tuple(probe_addrs), guarded)
    if ghost:
        return DNSView(True, "wc.dns.ghost", None, tuple(probe_addrs), guarded)
    return DNSView(False, None, None, tuple(probe_addrs), guarded)
