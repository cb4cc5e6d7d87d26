"""The virtual probe: ``experiments.web_connectivity`` replayed sans-IO against a ``World``.

Theory of operation
-------------------

``VirtualProbe`` drives the same Web Connectivity plan as the real probe
(``core.wcplan``): getaddrinfo and DNS-over-UDP lookups (depth 0), the control request
with every ``ip:port`` about to be dialed, TCP (+ TLS with SNI for https, + TLS to :443
without fetching for http without an explicit port) to every resolved address, one
fetch per redirect depth (the plan's fetch priority, replayed in time order), the
control's addresses when nothing could fetch (OONI's E005), redirects (``http://`` ->
``https://``), then the control's addresses, connect only. The control answers as
``control.measure`` would from an uncensored network (the plan's endpoints and
``ip_info``).

Times are affine in the measurement's round-trip time ``k`` (``a + b*k`` seconds;
timeouts are the probe's own, fixed), so one run serves every ``k``; concurrent steps
are put in order at ``K_REF``. The ``SlotRecorder`` writes each time as a numbered
sentinel and the HTTP ``Date`` as a string slot, which the template then turns into
format slots (``templates``).
"""

from __future__ import annotations

from blockproof.core.http import (
    InvalidRedirectLocation,
    browser_request,
    extract_title,
    redirect_location,
)
from blockproof.core.wcplan import (
    DepthPlan,
    Endpoint,
    FetchPriority,
    Source,
    control_only,
    control_request,
    dialable,
    helper_endpoints,
    helper_ports,
    ip_info,
    looks_up_over_udp,
    lookup_tags,
    probe_addresses,
    udp_only,
)
from blockproof.model.control import (
    ControlDNS,
    ControlHTTPRequest,
    ControlRequest,
    ControlResponse,
    ControlTCPConnect,
    ControlTLSHandshake,
)
from blockproof.model.observations import (
    DNSAnswer,
    DNSQuery,
    HTTPTransaction,
    NetworkEvent,
    TCPConnect,
    TLSHandshake,
    Trace,
)
from blockproof.simulate.world import (
    GENERIC_TIMEOUT,
    SimulationError,
    World,
    dns_wire,
    hash_int,
    site_response,
)

RESOLVER = "8.8.8.8:53"
TIMEOUT_DNS, TIMEOUT_TCP, TIMEOUT_TLS, TIMEOUT_HTTP = 4.0, 10.0, 10.0, 10.0  # the probe's
K_REF = 0.06  # the round-trip time at which concurrent steps are put in order

Time = tuple[float, float]  # a + b*k seconds since the measurement started


def reference_time(t: Time) -> float:
    """``t`` at the reference round-trip time: what puts concurrent steps in order."""
    return t[0] + t[1] * K_REF


def after(t: Time, a: float, b: float = 0.0) -> Time:
    return (t[0] + a, t[1] + b)


def latest(*times: Time) -> Time:
    return max(times, key=reference_time)


# --------------------------------------------------------------------------------------
# slots and the recorder

_SENTINEL = 900_000_000_000.0  # time slot i is written as 900000000000+i, then replaced
_DATE = "\u00a7date\u00a7"  # string slots: "§name§"
SLOT_NAMES = ("mst", "tst", "rid", "asn", "net", "ntype", "key", "date", "uid")


class SlotRecorder:
    """The virtual probe's trace: every time it records is a numbered slot (``stamp``),
    its ``Time`` kept in ``times``; ``ref`` reads a slot back at the reference time."""

    def __init__(self) -> None:
        self.times: list[Time] = []
        self.trace = Trace()
        self._ids: dict[int, int] = {}

    def stamp(self, t: Time) -> float:
        self.times.append(t)
        return _SENTINEL + len(self.times) - 1

    def ref(self, stamp: float) -> float:
        return reference_time(self.times[int(stamp - _SENTINEL)]) if stamp else 0.0

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


# --------------------------------------------------------------------------------------
# the virtual probe


class _Depth:
    """One redirect depth of the virtual probe: its plan and what its lookups returned."""

    def __init__(self, url: str, depth: int) -> None:
        self.plan = DepthPlan(url, depth)
        self.url = url
        self.depth = depth
        self.host = self.plan.host
        self.addresses: list[str] = []  # from the system resolver (OONI's "classic")
        self.udp_addresses: list[str] = []  # only the UDP resolver returned these


# A connection allowed to fetch, once it is up (True) or has failed (False): when, which
# connection, its transaction id.
_FetchCandidate = tuple[Time, Endpoint, int, bool]


def _fetcher(
    priority: FetchPriority, candidates: list[_FetchCandidate]
) -> tuple[Time, Endpoint, int] | None:
    """The plan's fetch priority replayed in time order: which connection fetches, and from
    when (None: none does)."""
    chosen: tuple[Time, Endpoint, int] | None = None
    waiting: list[tuple[Time, Endpoint, int]] = []
    for when, endpoint, tid, up in sorted(candidates, key=lambda c: reference_time(c[0])):
        if up:
            waiting.append((when, endpoint, tid))
        else:
            priority.finished(endpoint.source)
        still: list[tuple[Time, Endpoint, int]] = []
        for since, candidate, candidate_tid in waiting:
            decision = priority.may_fetch(candidate.source)
            if decision is None:
                still.append((since, candidate, candidate_tid))
                continue
            if decision:
                chosen = (latest(since, when), candidate, candidate_tid)
            priority.finished(candidate.source)
        waiting = still
    if waiting:
        raise SimulationError("a connection waits for a fetch permission that never comes")
    return chosen


class VirtualProbe:
    """``experiments.web_connectivity.measure_url``, replayed against a ``World``."""

    def __init__(self, url: str, world: World, certs: tuple[bytes, ...]) -> None:
        self.url = url
        self.world = world
        self.certs = certs
        self.rec = SlotRecorder()
        self.ends: list[Time] = []

    def resolve(self, d: _Depth, start: Time) -> Time:
        rec, world = self.rec, self.world
        addresses, failure, rcode = world.resolve(d.host)
        tags = lookup_tags(d.depth, Source.SYSTEM)
        dns_end = (
            after(start, TIMEOUT_DNS) if failure == GENERIC_TIMEOUT else after(start, 0.0004, 1)
        )
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
        d.addresses = dialable(addresses)
        if looks_up_over_udp(d.depth):
            udp_end = (
                after(start, TIMEOUT_DNS)
                if failure == GENERIC_TIMEOUT
                else after(start, 0.0003, 1.3)
            )
            qid = hash_int("qid", d.host, world.m) & 0xFFFF
            raw = None if rcode is None else dns_wire(qid, d.host, addresses, rcode)
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
                    tags=lookup_tags(d.depth, Source.UDP),
                    transaction_id=rec.next_id(20001),
                )
            )
            end = latest(dns_end, udp_end)
            d.udp_addresses = udp_only(addresses, d.addresses)  # the same answer: none
        self.ends.append(end)
        return end

    def dial(
        self, d: _Depth, planned: list[Endpoint], start: Time
    ) -> tuple[HTTPTransaction | None, Time]:
        """Make the planned connections; the plan's fetch priority picks the one that
        fetches (if the fetch is not taken)."""
        rec, world = self.rec, self.world
        candidates: list[_FetchCandidate] = []
        end = start
        for endpoint in planned:
            ip, port, use_tls, fetch = endpoint.ip, endpoint.port, endpoint.tls, endpoint.fetch
            tags = endpoint.tags
            tid = rec.next_id(50001 if use_tls else 40001)
            address = endpoint.address
            failure = world.connect(ip, port)
            tcp_end = (
                after(start, TIMEOUT_TCP) if failure == GENERIC_TIMEOUT else after(start, 0.0002, 1)
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
            end = latest(end, tcp_end)
            if failure is not None:
                if fetch:
                    candidates.append((tcp_end, endpoint, tid, False))
                continue
            if use_tls:
                tls_failure = world.tls(ip)
                rec.event("tls_handshake_start", tcp_end, tcp_end, address, tags, tid)
                rec.event("write", tcp_end, tcp_end, address, tags, tid, num_bytes=517)
                if tls_failure is None:
                    tls_end = after(tcp_end, 0.002, 1)
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
                elif tls_failure == GENERIC_TIMEOUT:
                    tls_end = after(tcp_end, TIMEOUT_TLS)
                    rec.event("read", tcp_end, tls_end, address, tags, tid, tls_failure)
                else:
                    tls_end = after(tcp_end, 0.0003, 0.6)
                    rec.event("read", tcp_end, tls_end, address, tags, tid, tls_failure)
                rec.event("tls_handshake_done", tcp_end, tls_end, address, tags, tid, tls_failure)
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
                end = latest(end, tls_end)
                if tls_failure is not None:
                    if fetch:
                        candidates.append((tls_end, endpoint, tid, False))
                    continue
            if fetch:
                candidates.append((up, endpoint, tid, True))
        last: HTTPTransaction | None = None
        chosen = _fetcher(d.plan.priority, candidates)
        if chosen is not None:
            since, endpoint, tid = chosen
            last, http_end = self.fetch(d, endpoint, tid, since)
            end = latest(end, http_end)
        self.ends.append(end)
        return last, end

    def fetch(
        self, d: _Depth, endpoint: Endpoint, tid: int, start: Time
    ) -> tuple[HTTPTransaction, Time]:
        rec, ip, tags, address = self.rec, endpoint.ip, endpoint.tags, endpoint.address
        request = browser_request(d.url)
        response, failure = self.world.fetch(ip, d.url, _DATE)
        request_bytes = 40 + sum(len(k) + len(v) + 4 for k, v in request.headers_list)
        rec.event("write", start, start, address, tags, tid, num_bytes=request_bytes)
        if response is None:
            end = (
                after(start, TIMEOUT_HTTP)
                if failure == GENERIC_TIMEOUT
                else after(start, 0.0003, 0.6)
            )
            rec.event("read", start, end, address, tags, tid, failure)
        else:
            size = (
                len(response.body) + 30 + sum(len(k) + len(v) + 4 for k, v in response.headers_list)
            )
            end = after(start, 0.001 + size / 4e6, 1)
            rec.event("read", start, end, address, tags, tid, num_bytes=size)
            rec.event("bytes_received_cumulative", end, end, address, tags, tid, num_bytes=size)
        tx = HTTPTransaction(
            request=request,
            response=response,
            failure=failure,
            network="tcp",
            address=address,
            alpn="http/1.1" if endpoint.tls else "",
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
        request = control_request(url, addresses)
        if world.m.startswith("fail-"):  # the probe's connectivity failed: no answer
            return request, None, GENERIC_TIMEOUT, after(start, TIMEOUT_HTTP)
        planned = helper_endpoints(
            request.tcp_connect, site.th_addresses, helper_ports(url), host_is_name=True
        )
        tcp: dict[str, ControlTCPConnect] = {}
        tls: dict[str, ControlTLSHandshake] = {}
        valid_for_domain: set[str] = set()
        for endpoint in planned:
            failure = world.control_connect(endpoint.ip, endpoint.port)
            tcp[endpoint.address] = ControlTCPConnect(status=failure is None, failure=failure)
            if failure is None and endpoint.tls:
                tls[endpoint.address] = ControlTLSHandshake(server_name=site.name, status=True)
                valid_for_domain.add(endpoint.ip)
        final = site_response(site, "https://" + url.split("://", 1)[1], _DATE)
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
            ip_info=ip_info(
                probe_addresses(request),
                site.th_addresses,
                valid_for_domain,
                lambda ip: world.asn_of(ip)[0],
            ),
        )
        return request, response, None, after(start, 0.45, 2)

    @staticmethod
    def resolved(d: _Depth) -> list[Endpoint]:
        """The connections to the resolvers' addresses; the system resolver's are OONI's
        classic ones."""
        return d.plan.admit(d.addresses, Source.SYSTEM) + d.plan.admit(d.udp_addresses, Source.UDP)

    def run(self) -> tuple[ControlRequest, ControlResponse | None, str | None, Time]:
        depth0 = _Depth(self.url, 0)
        dns_end = self.resolve(depth0, (0.001, 0.0))
        request, response, control_failure, control_end = self.control(depth0.addresses, dns_end)
        last, end = self.dial(depth0, self.resolved(depth0), dns_end)
        if last is None:  # nothing fetched: the control's addresses too (E005)
            only = depth0.plan.admit(control_only(response, depth0.plan.dialed), Source.CONTROL)
            last, end = self.dial(depth0, only, latest(end, control_end))
        current = depth0
        while last is not None and last.response is not None:
            try:
                next_url = redirect_location(current.url, last.response)
            except InvalidRedirectLocation:
                break  # the simulator's pages never send one
            if next_url is None:
                break
            current = _Depth(next_url, current.depth + 1)
            dns_end = self.resolve(current, end)
            last, end = self.dial(current, self.resolved(current), dns_end)
        if response is not None and response.dns is not None:  # connect only: fetch is taken
            only = depth0.plan.admit(control_only(response, depth0.plan.dialed), Source.CONTROL)
            self.dial(depth0, only, latest(end, control_end))
        self.ends.append(control_end)
        return request, response, control_failure, max(self.ends, key=reference_time)
