"""Does a bypass restore access? The same Web Connectivity test, through each bypass.

The question every user asks after "is it blocked?" is "does my VPN, proxy or
encrypted DNS get around it?". For a URL judged blocked, ``try_bypasses`` runs
the unchanged Web Connectivity test again with the probe's context changed in
one way per bypass, and records whether the URL became accessible:

* ``doh``: names resolved by DNS over HTTPS (``DoHNetwork``) instead of the system
  resolver, the bypass for DNS-based blocking;
* ``fragment``: the TLS ClientHello cut into several TCP segments
  (``ProbeContext.tls_splits``), the bypass for censors that read the SNI from
  the first segment only;
* ``socks5 proxy`` / ``http proxy`` (``--via``): every connection, and name
  resolution, through a proxy (``ProxyNetwork``), the way VPN and Tor clients are
  exposed locally.

The direct measurement keeps its verdict; the attempts are attached to it as
``test_keys.x_circumvention`` (one entry per bypass: restored or not, the
attempt's blocking verdict and failure), so an OONI reader ignores them and the
pipeline never mistakes a measurement through a proxy for one from the network
itself. Pure orchestration: the bypasses are network seams and context fields.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from blockproof.experiments.web_connectivity import ProbeContext, measure_url
from blockproof.model.measurement import Measurement
from blockproof.netx.dns import DoHNetwork
from blockproof.netx.proxy import DEFAULT_DOH, Proxy, ProxyNetwork

FRAGMENTS = 4


@dataclass(frozen=True, slots=True)
class Bypass:
    method: str  # doh | fragment | socks5 proxy | http proxy
    context: ProbeContext
    applies_to_http: bool = True  # fragmentation only changes TLS


@dataclass(frozen=True, slots=True)
class Attempt:
    method: str
    restored: bool
    blocking: Any  # the attempt's own Web Connectivity verdict
    failure: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "restored": self.restored,
            "blocking": self.blocking,
            "failure": self.failure,
        }


async def bypasses(
    ctx: ProbeContext,
    *,
    vias: tuple[Proxy, ...] = (),
    doh: tuple[str, str] = DEFAULT_DOH,
    fragment: bool = True,
    use_doh: bool = True,
) -> list[Bypass]:
    """The bypasses to try from ``ctx``: DoH, fragmentation, and each proxy."""
    out: list[Bypass] = []
    plain = replace(ctx, resolver=None)  # the UDP resolver is what DoH replaces
    if use_doh:
        resolving = DoHNetwork(ctx.network, doh[0], doh[1], ca_file=ctx.ca_file)
        out.append(Bypass("doh", replace(plain, network=resolving)))
    if fragment:
        out.append(Bypass("fragment", replace(ctx, tls_splits=FRAGMENTS), applies_to_http=False))
    for proxy in vias:
        addresses = await ctx.network.getaddrinfo(proxy.host)
        tunnel = ProxyNetwork(ctx.network, proxy, proxy_ip=addresses[0], doh=doh,
                              ca_file=ctx.ca_file)  # fmt: skip
        out.append(Bypass(proxy.label, replace(plain, network=tunnel)))
    return out


def is_blocked(measurement: Measurement) -> bool:
    return measurement.test_keys.get("blocking") not in (False, None)


async def try_bypasses(url: str, direct: Measurement, tries: list[Bypass]) -> list[Attempt]:
    """Each bypass's attempt at ``url`` (blocked in ``direct``), concurrently."""
    https = url.lower().startswith("https://")

    async def one(bypass: Bypass) -> Attempt:
        ctx = replace(bypass.context, report_id=direct.report_id)
        m = await measure_url(url, ctx)
        keys = m.test_keys
        return Attempt(
            method=bypass.method,
            restored=keys.get("accessible") is True and not is_blocked(m),
            blocking=keys.get("blocking"),
            failure=keys.get("http_experiment_failure") or keys.get("dns_experiment_failure"),
        )

    chosen = [b for b in tries if https or b.applies_to_http]
    return list(await asyncio.gather(*(one(b) for b in chosen)))
