"""Hostile servers in the lab (``blockproof.lab.hostile``): against each misbehaving site
or resolver, the real probe finishes within the budget of the step that meets it, records
the failure string OONI's probe would, and keeps its memory bounded.

One table, one row per behaviour and layer. The lab runs in a child process
(``LabProcess``), so that ``tracemalloc`` measures the probe alone: a row's memory
figure is the peak of what the probe allocated while it measured (``PEAK_BOUND_MIB``
at most). Budgets are shortened (``BUDGETS``) so that the whole file stays fast; the
``long`` test runs the slowest behaviours again with the probe's default budgets.
Every row records its figures (``figures.add("hostile", ...)``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from blockproof.core.http import MAX_BODY, browser_request
from blockproof.experiments.web_connectivity import ProbeContext, measure_url
from blockproof.lab import parse_scenario
from blockproof.lab.hostile import DNS_BEHAVIOURS, HOST_BEHAVIOURS
from blockproof.lab.process import LabProcess
from blockproof.netx.dns import dns_https, dns_tcp
from blockproof.netx.endpoint import Timeouts, measure_endpoint
from blockproof.netx.trace import Recorder
from figures import Figures

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

BUDGETS = Timeouts(dns=1.0, tcp=1.0, tls=1.0, http=1.5)
DUPLICATE_WINDOW = 0.2  # how long the UDP lookup listens for late replies
MARGIN_S = 0.5  # scheduling slack on top of a budget (tracemalloc slows Python down)
PEAK_BOUND_MIB = 4.0  # 8 times the body cap (MAX_BODY, 512 KiB)
FLOOD = (300, 30)  # connections to a host that resets them all, how many at once
LORIS = 100  # slow connections at once

PROTOCOL = "unknown_failure: http protocol error: "
TIMEOUT = "generic_timeout_error"
MISBEHAVING = "dns_server_misbehaving"
WRONG_ID = "dns_reply_with_wrong_query_id"


def site(behaviour: str) -> str:
    return f"{behaviour.replace('_', '-')}.hostile.example"


def zone(behaviour: str) -> str:
    return f"{behaviour.replace('_', '-')}.dns.example"


# Every hostile behaviour on its own host; each resolver behaviour for its own name,
# whose site is an honest one (the system resolver and the fetch work).
SCENARIO = parse_scenario(
    {
        "host": [
            {"name": site(b), "addresses": [f"198.51.100.{i + 1}"], "hostile": b}
            for i, b in enumerate(HOST_BEHAVIOURS)
        ]
        + [
            {"name": zone(b), "addresses": [f"203.0.113.{i + 1}"], "body_bytes": 2000}
            for i, b in enumerate(DNS_BEHAVIOURS)
        ],
        "resolver": [{"hostile": b, "match": [zone(b)]} for b in DNS_BEHAVIOURS],
    },
    source="hostile-test",
    name="hostile",
)


@dataclass(frozen=True)
class Outcome:
    failure: str | None
    seconds: float  # the step that met the hostile server
    total_s: float  # the whole operation (measurement, lookup, flood)
    total_budget_s: float  # what bounds the whole operation
    detail: dict[str, Any]


@dataclass(frozen=True)
class Row:
    id: str
    key: str  # the behaviour's name in lab/hostile.py
    behaviour: str  # in words, for the figures
    layer: str
    run: Callable[[LabProcess], Awaitable[Outcome]]
    failure: str | None
    budget: str  # the Timeouts field that bounds the step
    check: Callable[[Outcome], None] | None = None
    budgets: Timeouts = BUDGETS


# --- how a row measures ----------------------------------------------------------------

Run = Callable[[LabProcess], Awaitable[Outcome]]


def measurement_budget(budgets: Timeouts) -> float:
    """One measurement: DNS (both resolvers at once), then TCP, TLS and HTTP, then the
    late UDP replies; nothing in this table redirects."""
    return budgets.dns + budgets.tcp + budgets.tls + budgets.http + DUPLICATE_WINDOW


def _context(lab: LabProcess, budgets: Timeouts) -> ProbeContext:
    return ProbeContext(
        network=lab.probe_network, control_url=None, resolver=lab.resolver_address,
        ca_file=lab.ca_file, timeouts=budgets, duplicate_window=DUPLICATE_WINDOW,
    )  # fmt: skip


def _step(record: dict[str, Any]) -> float:
    return float(record["t"]) - float(record["t0"])


def fetch(url: str, step: str, budgets: Timeouts = BUDGETS) -> Run:
    """The whole web_connectivity measurement of ``url``; the outcome of its ``step``
    ("requests": the fetch, "tls": the handshake of the fetching connection)."""

    async def run(lab: LabProcess) -> Outcome:
        t0 = time.monotonic()
        keys = (await measure_url(url, _context(lab, budgets))).test_keys
        total = time.monotonic() - t0
        if step == "requests":
            (record,) = keys["requests"]
            response = record.get("response") or {}
            body = response.get("body") or ""
            detail = {
                "body_bytes": len(body if isinstance(body, str) else body.get("data", "")),
                "body_is_truncated": response.get("body_is_truncated"),
            }
        else:
            port = "443" if url.startswith("https") else "80"
            (record,) = [h for h in keys["tls_handshakes"] if h["address"].endswith(port)]
            detail = {}
        detail["http_experiment_failure"] = keys["http_experiment_failure"]
        bound = measurement_budget(budgets)
        return Outcome(record["failure"], _step(record), total, bound, detail)

    return run


def resolve_udp(name: str, budgets: Timeouts = BUDGETS) -> Run:
    """The whole measurement of ``http://name/``; the outcome of its DNS-over-UDP lookup."""

    async def run(lab: LabProcess) -> Outcome:
        t0 = time.monotonic()
        keys = (await measure_url(f"http://{name}/", _context(lab, budgets))).test_keys
        total = time.monotonic() - t0
        (query,) = [q for q in keys["queries"] if q["engine"] == "udp"]
        detail = {
            "answers": len(query["answers"] or []),
            "raw_bytes": len(base64.b64decode(query.get("raw_response") or "")),
            "duplicates": len(keys.get("x_dns_duplicate_responses") or []),
            "fetched": keys["requests"][0]["failure"] is None,
        }
        bound = measurement_budget(budgets)
        return Outcome(query["failure"], _step(query), total, bound, detail)

    return run


def resolve(transport: str, name: str) -> Run:
    """One lookup by DNS over TCP or over HTTPS (the shells the bypasses use)."""

    async def run(lab: LabProcess) -> Outcome:
        t0 = time.monotonic()
        if transport == "tcp":
            query = await dns_tcp(
                lab.probe_network, Recorder(), name, "A", lab.resolver_address,
                timeout=BUDGETS.dns,
            )  # fmt: skip
        else:
            query = await dns_https(
                lab.probe_network, Recorder(), name, "A", "https://dns.google/dns-query",
                server_ip="8.8.8.8", timeout=BUDGETS.dns, ca_file=lab.ca_file,
            )  # fmt: skip
        total = time.monotonic() - t0
        detail = {"answers": len(query.answers), "raw_bytes": len(query.raw_response or b"")}
        return Outcome(query.failure, query.t - query.t0, total, BUDGETS.dns, detail)

    return run


def many(name: str, scheme: str, count: int, at_once: int, budgets: Timeouts = BUDGETS) -> Run:
    """``count`` fetches of ``scheme://name/`` endpoint by endpoint, ``at_once`` at a time;
    the outcome of the step where each ended (TLS handshake, else the fetch)."""

    async def run(lab: LabProcess) -> Outcome:
        gate = asyncio.Semaphore(at_once)
        ip = SCENARIO.host(name).addresses[0]  # type: ignore[union-attr]
        https = scheme == "https"

        async def one() -> tuple[str | None, float]:
            async with gate:
                result = await measure_endpoint(
                    lab.probe_network, Recorder(), ip, 443 if https else 80, server_name=name,
                    use_tls=https, request=browser_request(f"{scheme}://{name}/"),
                    timeouts=budgets, ca_file=lab.ca_file,
                )  # fmt: skip
            step = result.tls if result.tls is not None and result.tls.failure else result.http
            assert step is not None, result
            return step.failure, step.t - step.t0

        t0 = time.monotonic()
        results = await asyncio.gather(*(one() for _ in range(count)))
        total = time.monotonic() - t0
        failures = {f for f, _ in results}
        failure = failures.pop() if len(failures) == 1 else f"mixed: {sorted(map(str, failures))}"
        # waves of ``at_once`` connections, each bounded by its own budgets
        waves = -(-count // at_once)
        bound = waves * (budgets.tcp + budgets.tls * https + budgets.http)
        return Outcome(failure, max(s for _, s in results), total, bound, {"connections": count})

    return run


# --- the table ---------------------------------------------------------------------------


def _truncated_body(outcome: Outcome) -> None:
    assert outcome.detail["body_is_truncated"] is True
    assert outcome.detail["body_bytes"] == MAX_BODY


HTTP_ROWS = [
    ("endless_body", "endless body", None, "http", _truncated_body),
    ("endless_chunked", "endless chunked body", None, "http", _truncated_body),
    ("slow_response", "one byte per second", TIMEOUT, "http", None),
    ("huge_header", "1 MiB header line", PROTOCOL + "response header section over 65536 bytes",
     "http", None),
    ("endless_headers", "endless header lines", PROTOCOL + "response header section over 65536 "
     "bytes", "http", None),
    ("bad_chunked", "invalid chunked encoding", PROTOCOL + "illegal chunk header", "http", None),
    ("endless_1xx", "endless 100 Continue", PROTOCOL + "too many 1xx informational responses",
     "http", None),
    ("short_body", "body shorter than Content-Length, then FIN", "eof_error", "http", None),
    ("not_http", "binary garbage instead of a status line", PROTOCOL + "illegal status line",
     "http", None),
    ("reset_mid_body", "RST in the middle of the body", "connection_reset", "http", None),
]  # fmt: skip

ROWS: list[Row] = []
for key, words, failure, budget, check in HTTP_ROWS:
    for scheme in ("http", "https"):
        layer = "tcp" if key == "reset_mid_body" else "http"
        ROWS.append(Row(
            f"{key}-{scheme}", key, f"{words} ({scheme})", layer,
            fetch(f"{scheme}://{site(key)}/", "requests"), failure, budget, check,
        ))  # fmt: skip
ROWS += [
    Row("reset-http", "reset", "RST on every connection (HTTP fetch)", "tcp",
        fetch(f"http://{site('reset')}/", "requests"), "connection_reset", "http"),
    Row("reset-https", "reset", "RST on every connection (TLS handshake)", "tcp",
        fetch(f"https://{site('reset')}/", "tls"), "connection_reset", "tls"),
    Row("reset-flood", "reset", f"RST flood: {FLOOD[0]} connections, {FLOOD[1]} at a time",
        "tcp", many(site("reset"), "https", *FLOOD), "connection_reset", "tls"),
    Row("slow_response-loris", "slow_response",
        f"one byte per second on {LORIS} connections at once (http)", "http",
        many(site("slow_response"), "http", LORIS, LORIS), TIMEOUT, "http"),
    Row("tls_garbage", "tls_garbage", "garbage instead of a ServerHello", "tls",
        fetch(f"https://{site('tls_garbage')}/", "tls"), "ssl_failed_handshake", "tls"),
    Row("tls_huge_record", "tls_huge_record", "TLS record of 65,535 bytes announced", "tls",
        fetch(f"https://{site('tls_huge_record')}/", "tls"), "ssl_failed_handshake", "tls"),
    Row("tls_slow", "tls_slow", "ServerHello at one byte per second", "tls",
        fetch(f"https://{site('tls_slow')}/", "tls"), TIMEOUT, "tls"),
]  # fmt: skip


def _no_answer(outcome: Outcome) -> None:
    assert outcome.detail["answers"] == 0


def _at_most_64_answers(outcome: Outcome) -> None:
    assert outcome.detail["answers"] == 64


def _udp_fetched(outcome: Outcome) -> None:
    assert outcome.detail["answers"] == 0
    assert outcome.detail["fetched"], "the system resolver's address should still be fetched"


def _udp_64_answers(outcome: Outcome) -> None:
    assert outcome.detail["answers"] == 64
    assert outcome.detail["fetched"]


def _udp_flood(outcome: Outcome) -> None:
    _udp_fetched(outcome)
    assert outcome.detail["duplicates"] == 31  # 32 datagrams kept: the result and 31 more


DNS_ROWS = [
    ("compression_loop", "compression loop", MISBEHAVING, MISBEHAVING, MISBEHAVING),
    ("truncated", "truncated reply (TC, cut mid-record)", MISBEHAVING, MISBEHAVING, MISBEHAVING),
    ("wrong_id", "wrong query id", WRONG_ID, WRONG_ID, WRONG_ID),
    ("wrong_question", "wrong question", MISBEHAVING, MISBEHAVING, MISBEHAVING),
    ("many_records", "ANCOUNT 10,000 (UDP, TCP: as many as fit; DoH: all, 160 KB)",
     MISBEHAVING, MISBEHAVING, MISBEHAVING),
    ("max_records", "a valid reply of 4,091 records, 65,497 bytes", None, None, None),
    ("reply_flood", "1,000 wrong-id replies per query", WRONG_ID, WRONG_ID, WRONG_ID),
]  # fmt: skip
for key, words, udp, tcp, doh in DNS_ROWS:
    udp_check = {"max_records": _udp_64_answers, "reply_flood": _udp_flood}.get(key, _udp_fetched)
    check = _at_most_64_answers if key == "max_records" else _no_answer
    ROWS += [
        Row(f"dns-udp-{key}", key, f"{words} (UDP)", "dns", resolve_udp(zone(key)), udp, "dns",
            udp_check),
        Row(f"dns-tcp-{key}", key, f"{words} (TCP)", "dns", resolve("tcp", zone(key)), tcp, "dns",
            check),
        Row(f"dns-doh-{key}", key, f"{words} (DoH)", "dns", resolve("doh", zone(key)), doh, "dns",
            check),
    ]  # fmt: skip


# --- the lab, once for the whole table ---------------------------------------------------


class _Background:
    """An event loop in a thread, holding the lab process for the whole module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 90) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def hostile_lab() -> Iterator[LabProcess]:
    background = _Background()
    lab = LabProcess(SCENARIO)
    background.run(lab.__aenter__())
    try:
        yield lab
    finally:
        background.run(lab.__aexit__())
        background.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


async def _measured(row: Row, lab: LabProcess) -> tuple[Outcome, float]:
    tracemalloc.start()
    try:
        outcome = await row.run(lab)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return outcome, peak


def test_every_behaviour_has_a_row() -> None:
    assert {r.key for r in ROWS} == set(HOST_BEHAVIOURS) | set(DNS_BEHAVIOURS)


def _check(row: Row, lab: LabProcess, figures: Figures) -> None:
    fds = _open_fds()
    outcome, peak = asyncio.run(_measured(row, lab))
    budget = getattr(row.budgets, row.budget)
    total_budget = outcome.total_budget_s
    passed = (
        outcome.failure == row.failure
        and outcome.seconds <= budget + MARGIN_S
        and outcome.total_s <= total_budget + MARGIN_S
        and peak <= PEAK_BOUND_MIB
    )
    figures.add(
        "hostile", behaviour=row.behaviour, layer=row.layer, failure=outcome.failure,
        seconds=round(outcome.seconds, 3), budget_s=budget,
        total_s=round(outcome.total_s, 3), total_budget_s=round(total_budget, 3),
        peak_mib=round(peak, 3), peak_bound_mib=PEAK_BOUND_MIB, passed=passed,
        **outcome.detail,
    )  # fmt: skip
    assert outcome.failure == row.failure
    assert outcome.seconds <= budget + MARGIN_S, f"the step took {outcome.seconds:.2f} s"
    assert outcome.total_s <= total_budget + MARGIN_S, f"it all took {outcome.total_s:.2f} s"
    assert peak <= PEAK_BOUND_MIB, f"the probe's memory peaked at {peak:.1f} MiB"
    if row.check is not None:
        row.check(outcome)
    assert _open_fds() <= fds + 2, "sockets left open"


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_server(row: Row, hostile_lab: LabProcess, figures: Figures) -> None:
    _check(row, hostile_lab, figures)


# The slowest behaviours again, with the probe's own budgets (``blockproof run``'s).
DEFAULT = Timeouts()
LONG_ROWS = [
    Row("long-slow_response", "slow_response", "one byte per second, default budgets (https)",
        "http", fetch(f"https://{site('slow_response')}/", "requests", DEFAULT), TIMEOUT,
        "http", budgets=DEFAULT),
    Row("long-slow_response-loris", "slow_response",
        f"one byte per second on {LORIS} connections at once, default budgets (http)", "http",
        many(site("slow_response"), "http", LORIS, LORIS, DEFAULT), TIMEOUT, "http",
        budgets=DEFAULT),
    Row("long-tls_slow", "tls_slow", "ServerHello at one byte per second, default budgets",
        "tls", fetch(f"https://{site('tls_slow')}/", "tls", DEFAULT), TIMEOUT, "tls",
        budgets=DEFAULT),
    Row("long-dns-udp-wrong_id", "wrong_id", "wrong query id (UDP), default budgets", "dns",
        resolve_udp(zone("wrong_id"), DEFAULT), WRONG_ID, "dns", _udp_fetched,
        budgets=DEFAULT),
]  # fmt: skip


@pytest.mark.long
@pytest.mark.parametrize("row", LONG_ROWS, ids=[r.id for r in LONG_ROWS])
def test_hostile_server_default_budgets(
    row: Row, hostile_lab: LabProcess, figures: Figures
) -> None:
    _check(row, hostile_lab, figures)
