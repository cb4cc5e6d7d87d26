"""The web_connectivity experiment: is this URL reachable, and if not, how is it blocked?

Theory of operation (OONI Web Connectivity 0.5, "LTE", in one pass per depth):

depth 0
  - resolve the host with the system resolver (``getaddrinfo``, tag ``classic``)
    and, in parallel, with DNS over UDP to ``resolver`` (injection evidence);
  - ask the control server (THRequest with every ip:port we are about to dial),
    in parallel with everything below;
  - for each resolved address (loopback never dialed): https -> TCP + TLS with
    the URL's host as SNI; http -> TCP to :80 and, as TLS-based validation of
    the address, TCP + TLS to :443 without fetching;
  - the first connection that comes up fetches the URL (one fetch per depth).
depth N > 0
  - a redirect starts the same round for its URL (no new control request),
    at most ``MAX_REDIRECTS`` times.

What to dial, what to ask the control and which connection fetches is the plan
(``core.wcplan``, shared with the control server and the simulator); this module
runs it. Then the recorded observations and the control's answer go to the sans-IO
classifier (``core.webconnectivity.analyze``), whose OONI keys and our
``x_verdict`` are written into ``test_keys``. Network failures are data; only
a malformed URL raises (``InputError``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from blockproof import __version__
from blockproof.codec.ooni import (
    analysis_to_test_keys,
    control_request_to_json,
    control_response_to_json,
    trace_to_test_keys,
)
from blockproof.control.client import query_control
from blockproof.core.http import (
    MAX_REDIRECTS,
    InvalidRedirectLocation,
    browser_request,
    redirect_location,
)
from blockproof.core.idn import IDNAError, host_to_ascii
from blockproof.core.wcplan import (
    DepthPlan,
    Endpoint,
    FetchPriority,
    Source,
    control_only,
    control_request,
    dialable,
    looks_up_over_udp,
    lookup_tags,
    udp_only,
)
from blockproof.core.webconnectivity import analyze
from blockproof.errors import InputError
from blockproof.model.control import ControlRequest, ControlResponse
from blockproof.model.failure import Failure
from blockproof.model.measurement import HIDDEN_ASN, TIME_FORMAT, Measurement
from blockproof.model.observations import HTTPTransaction
from blockproof.model.web import WebObservations
from blockproof.netx.dns import UDPLookup, dns_getaddrinfo, dns_udp
from blockproof.netx.endpoint import EndpointResult, Timeouts, measure_endpoint
from blockproof.netx.failures import unexpected_failure
from blockproof.netx.network import Network, SystemNetwork
from blockproof.netx.trace import Recorder

TEST_NAME = "web_connectivity"
TEST_VERSION = "0.5.28"

AsnLookup = Callable[[str], tuple[int, str]]


def _no_asn(_ip: str) -> tuple[int, str]:
    return 0, ""


@dataclass(frozen=True, kw_only=True)
class ProbeContext:
    """Where the probe stands and what it talks to. One per run."""

    network: Network = field(default_factory=SystemNetwork)
    control_url: str | None = None  # the control asked first; None: no control at all
    fallback_controls: tuple[str, ...] = ()  # asked in order when the one before failed
    resolver: str | None = "8.8.8.8:53"
    ca_file: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    asn_of: AsnLookup = _no_asn
    probe_cc: str = "ZZ"
    probe_asn: str = HIDDEN_ASN
    probe_network_name: str = ""
    hide_asn: bool = False
    duplicate_window: float = 0.3
    control_budget: float = 30.0  # seconds for the whole control exchange
    annotations: dict[str, str] = field(default_factory=dict)
    # ClientHello fragmentation: the first TLS flight cut into this many TCP segments
    # (a bypass for censors that read the SNI from the first segment only)
    tls_splits: int = 1
    test_start_time: str = field(default_factory=lambda: datetime.now(UTC).strftime(TIME_FORMAT))
    report_id: str = ""

    def with_report_id(self) -> ProbeContext:
        if self.report_id:
            return self
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        asn = self.public_asn().removeprefix("AS")
        rid = f"{stamp}_webconnectivity_{self.probe_cc}_{asn}_n1_{secrets.token_urlsafe(12)}"
        return replace(self, report_id=rid)

    def public_asn(self) -> str:
        return HIDDEN_ASN if self.hide_asn else self.probe_asn


def validate_url(url: str) -> str:
    """The URL if web_connectivity can measure it; InputError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InputError(f"{url!r}: only http:// and https:// URLs can be measured")
    if not parts.hostname:
        raise InputError(f"{url!r}: the URL has no host name")
    try:
        host_to_ascii(parts.hostname)
    except IDNAError as exc:
        raise InputError(f"{url!r}: {exc}") from exc
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(f"{url!r}: {exc}") from exc
    return url


class FetchPermission:
    """The plan's fetch priority (``core.wcplan.FetchPriority``), awaited: a connection
    that is up waits until the priority grants or refuses it the fetch."""

    def __init__(self, priority: FetchPriority) -> None:
        self.priority = priority
        self._changed = asyncio.Condition()

    async def finished(self, source: Source) -> None:
        async with self._changed:
            self.priority.finished(source)
            self._changed.notify_all()

    async def ask(self, source: Source) -> bool:
        async with self._changed:
            while (decision := self.priority.may_fetch(source)) is None:
                await self._changed.wait()
            return decision


class _Depth:
    """One redirect depth: resolve, dial every address, let one connection fetch."""

    def __init__(self, ctx: ProbeContext, rec: Recorder, url: str, depth: int) -> None:
        self.ctx = ctx
        self.rec = rec
        self.url = url
        self.depth = depth
        self.plan = DepthPlan(url, depth)
        self.host = self.plan.host  # the IDNA form: what goes on the wire (DNS, SNI)
        self.permission = FetchPermission(self.plan.priority)
        self.addresses: list[str] = []  # from the system resolver (OONI's "classic")
        self.udp_addresses: list[str] = []  # only the UDP resolver returned these
        self.udp: UDPLookup | None = None

    async def resolve(self) -> None:
        timeout = self.ctx.timeouts.dns
        tags = lookup_tags(self.depth, Source.SYSTEM)
        gai = asyncio.create_task(
            dns_getaddrinfo(self.ctx.network, self.rec, self.host, timeout=timeout, tags=tags)
        )
        udp_query = None
        if looks_up_over_udp(self.depth) and self.ctx.resolver:
            udp_query, self.udp = await dns_udp(
                self.ctx.network, self.rec, self.host, "A", self.ctx.resolver,
                timeout=timeout, duplicate_window=self.ctx.duplicate_window,
                tags=lookup_tags(self.depth, Source.UDP),
            )  # fmt: skip
        query = await gai
        self.addresses = dialable(query.addresses)
        if udp_query is not None:
            self.udp_addresses = udp_only(udp_query.addresses, self.addresses)

    async def measure(self) -> HTTPTransaction | None:
        """Dial the resolvers' addresses; the system resolver's are OONI's classic ones."""
        return await self.dial(self.plan.admit(self.addresses, Source.SYSTEM)
                               + self.plan.admit(self.udp_addresses, Source.UDP))  # fmt: skip

    async def dial_control_only(self, response: ControlResponse | None) -> HTTPTransaction | None:
        """Dial the addresses only the control resolved (OONI's extension E005)."""
        return await self.dial(
            self.plan.admit(control_only(response, self.plan.dialed), Source.CONTROL)
        )

    async def dial(self, planned: list[Endpoint]) -> HTTPTransaction | None:
        request = browser_request(self.url)

        async def one(endpoint: Endpoint) -> EndpointResult:
            async def may_fetch() -> bool:
                return await self.permission.ask(endpoint.source)

            try:
                return await measure_endpoint(
                    self.ctx.network, self.rec, endpoint.ip, endpoint.port,
                    server_name=self.host, use_tls=endpoint.tls,
                    request=request if endpoint.fetch else None,
                    timeouts=self.ctx.timeouts, may_fetch=may_fetch, ca_file=self.ctx.ca_file,
                    first_flight_splits=self.ctx.tls_splits, tags=endpoint.tags,
                )  # fmt: skip
            finally:
                if endpoint.fetch:
                    await self.permission.finished(endpoint.source)

        results = await asyncio.gather(*(one(endpoint) for endpoint in planned))
        for result in results:
            if result.http is not None:
                return result.http
        return None


@dataclass(slots=True)
class _ControlOutcome:
    request: ControlRequest
    response: ControlResponse | None = None
    failure: str | None = None
    used: str | None = None  # the control that answered (else the first asked)
    attempts: list[dict[str, Any]] = field(default_factory=list)


async def _control(ctx: ProbeContext, url: str, addresses: list[str]) -> _ControlOutcome:
    request = control_request(url, addresses)
    outcome = _ControlOutcome(request)
    if ctx.control_url is None:
        return outcome
    outcome.used = ctx.control_url
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.control_budget
    for control_url in (ctx.control_url, *ctx.fallback_controls):
        left = deadline - loop.time()
        if left <= 0:
            break
        response, failure = await query_control(
            ctx.network, control_url, request, ca_file=ctx.ca_file, budget=left,
            connect_timeouts=ctx.timeouts,
        )  # fmt: skip
        outcome.attempts.append({"address": control_url, "failure": failure})
        outcome.response, outcome.failure = response, failure
        if response is not None:
            outcome.used = control_url
            break
    return outcome


def _annotate_asns(rec: Recorder, asn_of: AsnLookup) -> None:
    def annotate(queries: list[Any]) -> list[Any]:
        out = []
        for q in queries:
            answers = []
            for a in q.answers:
                if a.address:
                    asn, org = asn_of(a.address)
                    a = replace(a, asn=asn, as_org_name=org)
                answers.append(a)
            out.append(replace(q, answers=tuple(answers)))
        return out

    rec.trace.queries = annotate(rec.trace.queries)
    rec.trace.dns_duplicate_responses = annotate(rec.trace.dns_duplicate_responses)


async def measure_url(url: str, ctx: ProbeContext) -> Measurement:
    """Measure one URL; the result is an OONI web_connectivity measurement.

    Only a malformed URL raises (``InputError``). A bug or an unexpected error in a
    step is that step's failure (each shell's last resort); one anywhere else (the
    classifier, the redirect logic) still gives a measurement: what was recorded, no
    judgement (``blocking`` and ``accessible`` null) and ``x_failure`` saying what
    went wrong, so that one URL never ends a batch.
    """
    validate_url(url)
    ctx = ctx.with_report_id()
    started = datetime.now(UTC)
    rec = Recorder()
    control_used = ctx.control_url
    try:
        test_keys, control_used = await _measure(url, ctx, rec)
    except Exception as exc:  # a bug: this URL's failure, never the batch's end
        test_keys = {
            "agent": "redirect",
            "client_resolver": None,
            "retries": None,
            "socksproxy": None,
            **trace_to_test_keys(rec.trace),
            "control_failure": None,
            "blocking": None,
            "accessible": None,
            "x_failure": unexpected_failure(exc),
        }
    return Measurement(
        test_name=TEST_NAME,
        test_version=TEST_VERSION,
        input=url,
        measurement_start_time=started.strftime(TIME_FORMAT),
        test_start_time=ctx.test_start_time,
        probe_cc=ctx.probe_cc,
        probe_asn=ctx.public_asn(),
        probe_network_name="" if ctx.hide_asn else ctx.probe_network_name,
        report_id=ctx.report_id,
        software_name="blockproof",
        software_version=__version__,
        test_runtime=round(rec.now(), 6),
        annotations={"engine_name": "blockproof", **ctx.annotations},
        test_helpers={"backend": {"address": control_used, "type": "https"}}
        if control_used
        else {},
        test_keys=test_keys,
    )


async def _measure(url: str, ctx: ProbeContext, rec: Recorder) -> tuple[dict[str, Any], str | None]:
    """The steps, then the classifier: ``test_keys``, and the control that answered."""
    depth0 = _Depth(ctx, rec, url, 0)
    await depth0.resolve()
    control = asyncio.create_task(_control(ctx, url, depth0.addresses))
    try:
        return await _steps(url, ctx, rec, depth0, control)
    finally:
        control.cancel()  # a no-op once awaited; on a bug, no control query left behind


async def _steps(
    url: str,
    ctx: ProbeContext,
    rec: Recorder,
    depth0: _Depth,
    control: asyncio.Task[_ControlOutcome],
) -> tuple[dict[str, Any], str | None]:
    current, last = depth0, await depth0.measure()
    if last is None:
        # Nothing fetched from the resolvers' addresses: try the control's (E005).
        last = await depth0.dial_control_only((await control).response)
    redirects = 0
    while last is not None and last.response is not None:
        try:
            next_url = redirect_location(current.url, last.response)
        except InvalidRedirectLocation:
            rec.trace.requests.append(
                replace(last, failure=Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST, response=None)
            )
            break
        if next_url is None or urlsplit(next_url).scheme not in ("http", "https"):
            break
        redirects += 1
        if redirects > MAX_REDIRECTS:
            rec.trace.requests.append(
                replace(last, failure=Failure.HTTP_TOO_MANY_REDIRECTS, response=None)
            )
            break
        current = _Depth(ctx, rec, next_url, current.depth + 1)
        await current.resolve()
        last = await current.measure()
    ctl = await control
    control_response, control_failure = ctl.response, ctl.failure
    await depth0.dial_control_only(control_response)  # connect only: the fetch is taken
    if depth0.udp is not None:
        await depth0.udp.finish()
    _annotate_asns(rec, ctx.asn_of)

    observations = WebObservations(
        input=url,
        queries=tuple(rec.trace.queries),
        tcp_connect=tuple(rec.trace.tcp_connect),
        tls_handshakes=tuple(rec.trace.tls_handshakes),
        requests=tuple(sorted(rec.trace.requests, key=lambda r: r.t0)),
        control=control_response,
        control_failure=control_failure,
    )
    analysis = analyze(observations, asn_of=lambda ip: ctx.asn_of(ip)[0])
    return {
        "agent": "redirect",
        "client_resolver": None,
        "retries": None,
        "socksproxy": None,
        **trace_to_test_keys(rec.trace),
        "x_control_request": control_request_to_json(ctl.request),
        "x_control_attempts": ctl.attempts,
        "control": control_response_to_json(control_response) if control_response else None,
        "control_failure": control_failure,
        **_without_unfounded_access(analysis_to_test_keys(analysis)),
    }, ctl.used


# OONI's row 5.1.1 (a failed lookup and no control at all) sets ``blocking`` false and
# ``accessible`` true: a volunteer behind a DNS block would read "accessible". Our probe
# writes null/null there, as OONI does for every other failure without a control
# (docs/classifier.md, "Deliberate differences"); the pipeline, judging OONI's data,
# keeps OONI's recorded value.
_UNJUDGED_RULE = "wc.control.unavailable"


def _without_unfounded_access(keys: dict[str, Any]) -> dict[str, Any]:
    verdict = keys.get("x_verdict")
    if isinstance(verdict, dict) and verdict.get("rule_id") == _UNJUDGED_RULE:
        keys["blocking"] = None
        keys["accessible"] = None
    return keys
