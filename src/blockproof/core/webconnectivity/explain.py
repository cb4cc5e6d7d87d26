"""Our verdict (``x_verdict``): the rule that fired and its one-sentence explanation.

The decisive observation is OONI's (``decision.decide``), read with finer
methods: TLS apart from HTTP, "down" when the control fails too. Three rules of
our own never change OONI's keys: the CDN guard (``decision.dns_view``); shared
transport headers (``content-length``...) do not make two pages alike; and a
mere address mismatch does not explain a failure the control shares. Each rule
(``rules.RULES``) yields one sentence with the concrete failure and addresses,
followed by notes where OONI's keys and ours part ways.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from blockproof.core.webconnectivity.decision import (
    DNSView,
    dns_view,
    first_in_walk_order,
    validated_addresses,
)
from blockproof.core.webconnectivity.metrics import TRANSPORT_HEADERS, Asn, HTTPDiff, Metrics
from blockproof.core.webconnectivity.observations import (
    DNS,
    HTTP,
    TCP,
    TLS,
    TYPE_NAMES,
    Observation,
    ObservationSet,
    url_hostname,
)
from blockproof.core.webconnectivity.rules import (
    DNS_FAILURE_RULES,
    DNS_RULE_BY_FAILURE,
    HTTP_RULE_BY_FAILURE,
    RULES_BY_ID,
    TCP_RULE_BY_FAILURE,
    TLS_RULE_BY_FAILURE,
    OoniRow,
    Setter,
)
from blockproof.model.verdict import Verdict
from blockproof.model.web import WebObservations


def _fmt_addrs(addrs: Iterable[str], asn: Asn, limit: int = 4) -> str:
    listed = list(addrs)
    parts = []
    for addr in listed[:limit]:
        number = asn(addr)
        parts.append(f"{addr} (AS{number})" if number else addr)
    if len(listed) > limit:
        parts.append(f"{len(listed) - limit} more")
    return ", ".join(parts) if parts else "no address"


def _tls_like(failure: str) -> bool:
    return failure.startswith("ssl_")


def _comparison(diff: HTTPDiff) -> str:
    words = []
    if diff.status_code_match is not None:
        words.append("same status code" if diff.status_code_match else "another status code")
    if diff.title_match is not None:
        words.append("same title" if diff.title_match else "another title")
    if diff.shared_headers is not None:
        site = sorted(diff.shared_headers - TRANSPORT_HEADERS)
        if site:
            words.append("shared headers " + ", ".join(site[:3]))
        else:
            words.append("no shared site-specific header")
    if diff.body_proportion is not None:
        words.append(f"body length ratio {diff.body_proportion:.2f}")
    return ", ".join(words) if words else "no control page to compare with"


def _probe_summary(c: ObservationSet) -> str:
    if c.endpoints:
        last = first_in_walk_order(c)
        name = TYPE_NAMES[last.type]
        where = last.endpoint_address or last.http_url or ""
        if last.failure:
            return f"the last step, {name} to {where}, failed ({last.failure})"
        return f"the last step, {name} to {where}, succeeded"
    if c.dns_failures:
        return f"resolving failed ({c.dns_failures[0].failure})"
    if c.dns_successes:
        return "the host resolved but no connection was attempted"
    return "the probe recorded nothing"


def _control_failure_of(entry: Observation) -> str:
    """The control's failure for the same operation as ``entry``."""
    failure = {
        DNS: entry.ctrl_dns_failure,
        TCP: entry.ctrl_tcp_failure,
        TLS: entry.ctrl_tls_failure,
        HTTP: entry.ctrl_http_failure,
    }[entry.type]
    return failure or ("no address" if entry.type == DNS else "no answer")


def _entry_facts(entry: Observation, host: str) -> dict[str, object]:
    request_host = url_hostname(entry.http_url) if entry.http_url else host
    if entry.type == HTTP or entry.depth > 0:
        evidence = "the control fetched the page"
    elif entry.type == TCP:
        evidence = "the control connected"
    else:
        evidence = "the control's handshake succeeded"
    facts: dict[str, object] = {
        "failure": entry.failure or "",
        "address": entry.endpoint_address or entry.ip or request_host,
        "server_name": entry.tls_server_name or request_host,
        "control_evidence": evidence,
        "operation": {
            DNS: f"resolving {entry.dns_domain}",
            TCP: f"connecting to {entry.endpoint_address}",
            TLS: f"the TLS handshake with {entry.endpoint_address}",
            HTTP: f"fetching {entry.http_url}",
        }[entry.type],
    }
    if entry.http_url:
        facts["request_url"] = entry.http_url
    return facts


def _rule_for(
    row: OoniRow | None, entry: Observation | None, dns: DNSView, page_differs: bool, control: bool
) -> str:
    """Our rule for OONI's deciding row (see docs/classifier.md, "Our verdict")."""
    row_id = row.id if row is not None else None
    failure = entry.failure or "" if entry is not None else ""
    control_fetch_failed = entry is not None and bool(entry.ctrl_http_failure)
    if row_id == "1.1":
        return "wc.ok.https" if control else "wc.ok.https-no-control"
    if row_id in ("1.2", "2.1", "3.1.1", "4.1.1", "5.1.1"):
        return "wc.control.unavailable"
    if row_id in ("5.4", "5.1.2"):
        if row_id == "5.1.2" and control_fetch_failed:
            return "wc.down.redirect"
        return DNS_RULE_BY_FAILURE.get(failure, "wc.dns.failure")
    if row_id == "6":
        return "wc.dns.localhost"
    if row_id == "1.3" and not page_differs:
        return "wc.ok"  # the page is the control's, whatever DNS said
    if dns.inconsistent and dns.rule_id is not None:
        return dns.rule_id  # OONI's "dns" override, with our CDN guard
    if row_id in ("1.3", "1.4"):
        return "wc.http.diff"
    if row_id in ("3.1.2", "4.1.2") and control_fetch_failed:
        return "wc.down.redirect"
    if row_id == "2.3" and _tls_like(failure):
        return TLS_RULE_BY_FAILURE.get(failure, "wc.tls.failure")  # older probes
    by_row = {
        "2.2": "wc.down.http",
        "2.3": HTTP_RULE_BY_FAILURE.get(failure, "wc.http.failure"),
        "3.1.2": TLS_RULE_BY_FAILURE.get(failure, "wc.tls.failure"),
        "3.2": "wc.down.tls",
        "3.3": TLS_RULE_BY_FAILURE.get(failure, "wc.tls.failure"),
        "4.1.2": TCP_RULE_BY_FAILURE.get(failure, "wc.tcp.failure"),
        "4.2": "wc.down.tcp",
        "4.3": TCP_RULE_BY_FAILURE.get(failure, "wc.tcp.failure"),
        "5.2": "wc.down.dns",
        "5.3": "wc.down.dns",
        "7": "wc.down.localhost",
    }
    if row_id in by_row:
        return by_row[row_id]
    return "wc.undetermined" if control else "wc.control.unavailable"


def explained_verdict(
    obs: WebObservations,
    row: OoniRow | None,
    entry: Observation | None,
    classic: ObservationSet,
    m: Metrics,
    diff: HTTPDiff,
    ooni_consistency: str | None,
    asn: Asn,
) -> Verdict:
    """Our verdict: the rule for the deciding observation, its sentence, and any notes."""
    host = url_hostname(obs.input)
    dns = dns_view(m, validated_addresses(obs, host))
    control = obs.control
    control_dns = control.dns if control is not None and control.dns is not None else None
    control_failure = obs.control_failure or "no answer"
    if control is None and obs.control_failure is None:
        control_failure = "no control was asked"
    facts: dict[str, object] = {
        "url": obs.input,
        "host": host,
        "probe_addrs": _fmt_addrs(dns.probe_addrs, asn),
        "control_addrs": _fmt_addrs(control_dns.addrs, asn) if control_dns else "no address",
        "control_failure": control_failure,
        "probe_summary": _probe_summary(classic),
        "failure": "",
        "address": host,
        "server_name": host,
        "request_url": obs.input,
        "comparison": _comparison(diff),
        "control_evidence": "the control reached the site",
        "operation": "a step",
    }
    if entry is not None:
        facts.update(_entry_facts(entry, host))
        if row is not None and (row.setter is Setter.DOWN or row.id.endswith(".1.2")):
            use_http = row.id.endswith(".1.2") or entry.type == HTTP
            facts["control_failure"] = (
                entry.ctrl_http_failure or "no answer" if use_http else _control_failure_of(entry)
            )
    notes = []
    if (
        dns.rule_id == "wc.dns.inconsistent"
        and row is not None
        and row.setter is Setter.DOWN
        and entry is not None
        and entry.ctrl_http_failure
    ):
        # The control failed too, on its own addresses: a mere mismatch explains nothing.
        notes.append(
            f"the answers {facts['probe_addrs']} differ from the control's, but the control"
            " could not fetch the page either, so the mismatch does not explain the failure"
        )
        dns = replace(dns, inconsistent=False)
    rule = RULES_BY_ID[_rule_for(row, entry, dns, diff.differs_for_us(), control is not None)]
    lookup = entry if row is not None and row.id in ("5.4", "5.1.2") else dns.failed_lookup
    if rule.id in DNS_FAILURE_RULES and lookup is not None:
        facts["failure"] = lookup.failure or ""
        facts["host"] = lookup.dns_domain or host
        facts["control_evidence"] = (
            "the control fetched the page"
            if lookup.ctrl_dns_addrs is None
            else f"the control resolved it to {facts['control_addrs']}"
        )
    if rule.id == "wc.dns.ghost" and control_dns is not None:
        facts["control_failure"] = control_dns.failure or "no address"
    explanation = rule.template.format(**facts)
    if row is not None and row.id == "1.3" and rule.id != "wc.ok":
        shared = ", ".join(sorted(diff.shared_headers or ()))
        notes.append(f"OONI's header check matched only on {shared}, which any server sends")
    if dns.guarded and not dns.inconsistent and ooni_consistency == "inconsistent":
        proven = "; ".join(f"{ip} by {why}" for ip, why in sorted(dns.guarded.items()))
        notes.append(
            f"DNS answers differ from the control's, but {proven} proved them valid:"
            " a CDN, not DNS tampering"
        )
    if notes:
        explanation = f"{explanation[:-1]} ({'; '.join(notes)})."
    return Verdict(method=rule.method, rule_id=rule.id, explanation=explanation)
