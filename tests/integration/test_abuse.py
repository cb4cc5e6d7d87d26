"""Abuse of the public servers: rate limits, size and time limits, the admin token, SSRF.

Each limit is proved by a test that crosses it: in-process (ASGI) where the app
enforces it, over a real socket where the server does (request heads, idle and
slow connections, connection count), and through ``blockproof serve ...``
processes for the command-line wiring. The SSRF table sends the control server
every spelling of a private address we know of, through a network that records
every dial; only the one public test address may ever be dialed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from collector_kit import (
    REPORT_ID,
    CollectorProcess,
    RecordingNetwork,
    ServerThread,
    free_port,
    measurement,
)

from blockproof.cli.collector import read_admin_token
from blockproof.codec.jcs import canonicalize
from blockproof.collector import app as collector_app
from blockproof.collector.app import CollectorApp
from blockproof.collector.service import Collector
from blockproof.control import server as control_server
from blockproof.control.server import create_app
from blockproof.errors import InputError
from blockproof.ratelimit import RateLimit, RateLimiter
from blockproof.serving import ServeLimits
from figures import Figures

pytestmark = pytest.mark.reliability

TOKEN = "abuse-test-admin-token-0123456789abcdef"
PUBLIC = "93.184.215.14"  # the only address the control server may dial in these tests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(app: Any, address: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://server.test")


# ------------------------------------------------------------------ rate limits


def test_token_bucket_allows_a_burst_then_the_rate(figures: Figures) -> None:
    limiter = RateLimiter(RateLimit(rate=2.0, burst=5))
    allowed = sum(limiter.check("a", 0.0) is None for _ in range(20))
    assert allowed == 5
    wait = limiter.check("a", 0.0)
    assert wait is not None
    assert 0.4 < wait <= 0.5
    assert limiter.check("a", 0.5) is None  # one token back after 1/rate seconds
    assert limiter.check("a", 0.5) is not None
    assert limiter.check("b", 0.5) is None  # another client has its own bucket
    assert limiter.check("a", 100.0) is None  # refilled, capped at the burst
    assert sum(limiter.check("a", 100.0) is None for _ in range(20)) == 4
    figures.add(
        "abuse",
        check="rate limit: token bucket",
        server="both",
        burst=5,
        rate=2.0,
        allowed_at_once=allowed,
        passed=True,
    )


def test_the_table_of_clients_is_bounded(figures: Figures) -> None:
    limiter = RateLimiter(RateLimit(rate=1.0, burst=3), max_clients=1000)
    for i in range(100_000):
        limiter.check(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", float(i) / 1000)
        assert len(limiter) <= 1000
    # a recently seen client is still remembered (its bucket is drained)
    for _ in range(3):
        limiter.check("203.0.113.9", 200.0)
    assert limiter.check("203.0.113.9", 200.0) is not None
    assert RateLimiter(RateLimit(rate=0, burst=0)).check("x", 0.0) is None  # off
    figures.add(
        "abuse",
        check="rate limit: bounded client table",
        server="both",
        clients_seen=100_000,
        max_clients=1000,
        table_size=len(limiter),
        passed=True,
    )


@pytest_asyncio.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    opened = await Collector.open(tmp_path / "data")
    yield opened
    await opened.aclose()


@pytest.mark.asyncio
async def test_collector_answers_429_with_retry_after(
    collector: Collector, figures: Figures
) -> None:
    clock = Clock()
    app = CollectorApp(collector=collector, rate_limit=RateLimit(rate=1.0, burst=10), clock=clock)
    async with _client(app) as client, _client(app, "203.0.113.20") as other:
        statuses = [(await client.get("/health")).status_code for _ in range(15)]
        assert statuses == [200] * 10 + [429] * 5
        refused = await client.get("/log/tree-head")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "rate_limited"
        assert "retry in 1 s" in refused.json()["detail"]
        assert (await other.get("/health")).status_code == 200  # a different address
        clock.now += 3.0
        assert [(await client.get("/health")).status_code for _ in range(4)] == [200] * 3 + [429]
    figures.add(
        "abuse",
        check="rate limit",
        server="collector",
        burst=10,
        rate=1.0,
        requests=15,
        status_429=5,
        retry_after_s=1,
        passed=True,
    )


@pytest.mark.asyncio
async def test_control_answers_429_with_retry_after(figures: Figures) -> None:
    clock = Clock()
    app = create_app(RecordingNetwork(), rate_limit=RateLimit(rate=0.5, burst=3), clock=clock)
    async with _client(app) as client, _client(app, "203.0.113.20") as other:
        statuses = [(await client.get("/")).status_code for _ in range(5)]
        assert statuses == [200] * 3 + [429] * 2
        refused = await client.post("/", json={"http_request": "https://x.com/"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"
        assert "rate limit" in refused.json()["error"]
        assert (await other.get("/")).status_code == 200
        clock.now += 2.0
        assert (await client.get("/")).status_code == 200
    figures.add(
        "abuse",
        check="rate limit",
        server="control",
        burst=3,
        rate=0.5,
        requests=5,
        status_429=2,
        retry_after_s=2,
        passed=True,
    )


def test_serve_commands_apply_the_rate_limit(tmp_path: Path, figures: Figures) -> None:
    collector = CollectorProcess(
        tmp_path / "data", extra_args=("--rate-limit", "0.5", "--rate-burst", "5")
    )
    collector.start()
    control_port = free_port()
    log = (tmp_path / "control.log").open("wb")
    control = subprocess.Popen(
        [sys.executable, "-m", "blockproof", "serve", "control", "--port", str(control_port),
         "--rate-limit", "0.5", "--rate-burst", "5"],
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        # (start() already used one token of the collector's bucket, maybe more)
        collector_statuses = [httpx.get(collector.url + "/health").status_code for _ in range(6)]
        assert collector_statuses[-1] == 429
        assert 429 in collector_statuses
        control_statuses = _wait_then_count(f"http://127.0.0.1:{control_port}/", 6)
        assert control_statuses[:5] == [200] * 5
        assert control_statuses[5] == 429
    finally:
        collector.stop()
        control.terminate()
        control.wait(20)
        log.close()
    figures.add("abuse", check="rate limit via serve options", server="collector+control",
                burst=5, rate=0.5, collector_429=collector_statuses.count(429),
                control_429=control_statuses.count(429), passed=True)  # fmt: skip


def _wait_then_count(url: str, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait for the port without spending tokens
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))):
                break
        except OSError:
            time.sleep(0.05)
    return [httpx.get(url, timeout=10).status_code for _ in range(count)]


# ------------------------------------------------------- heads, bodies, connections


def _error_body(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


@pytest.fixture
def bounded_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(collector_app, "BODY_DEADLINE", 0.5)
    app = CollectorApp(tmp_path / "data", rate_limit=RateLimit(0, 0))
    limits = ServeLimits(head_limit=16 * 1024, head_timeout=0.5, keep_alive=1, max_connections=8)
    with ServerThread(app, lifespan="on", **limits.uvicorn_options(_error_body)) as server:
        yield server.url


def _raw(url: str, data: bytes, *, then_wait: float = 5.0) -> bytes:
    """Send raw bytes, return all the server sends until it closes (or ``then_wait`` s)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=then_wait) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            chunks.append(b"<still open>")
        return b"".join(chunks)


def test_request_heads_are_bounded_in_size(bounded_collector: str, figures: Figures) -> None:
    long_url = b"GET /health?" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _raw(bounded_collector, long_url)
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:100]
    assert b'"uri_too_long"' in answer
    assert answer.endswith(b"}")
    big_header = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n"
    answer = _raw(bounded_collector, big_header)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    many = b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(3000))
    answer = _raw(bounded_collector, many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    # just under the limit is fine
    ok = (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"b" * 15_000
        + b"\r\nConnection: close\r\n\r\n"
    )
    assert _raw(bounded_collector, ok).startswith(b"HTTP/1.1 200 ")
    figures.add(
        "abuse",
        check="request head size",
        server="collector",
        head_limit=16 * 1024,
        url_20k="414",
        header_20k="431",
        headers_3000="431",
        passed=True,
    )


def test_slow_and_idle_connections_are_closed(bounded_collector: str, figures: Figures) -> None:
    port = int(bounded_collector.rsplit(":", 1)[1])
    started = time.monotonic()
    # a head that never ends
    answer = _raw(bounded_collector, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    slow_head = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert slow_head < 3
    # a connection that sends nothing at all
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.recv(65536)
        idle = time.monotonic() - started
    assert idle < 3
    # a slowloris: one header byte at a time, forever
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        closed = False
        for _ in range(100):
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            sock.setblocking(False)
            try:
                if sock.recv(65536) is not None:
                    closed = True
                    break
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
        slowloris = time.monotonic() - started
    assert closed
    assert slowloris < 3
    # a body that never ends: the app's deadline (0.5 s here, 30 s in production)
    head = f"POST /report/{REPORT_ID} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{"
    answer = _raw(bounded_collector, head.encode())
    assert b" 408 " in answer.split(b"\r\n", 1)[0]
    assert b"body_timeout" in answer
    # keep-alive: an idle connection after an answer is closed (1 s here, 30 s in production)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        started = time.monotonic()
        while sock.recv(65536):
            pass
        kept = time.monotonic() - started
    assert first.startswith(b"HTTP/1.1 200 ")
    assert kept < 3
    figures.add("abuse", check="request time", server="collector", head_timeout_s=0.5,
                slow_head_closed_s=round(slow_head, 2), idle_closed_s=round(idle, 2),
                slowloris_closed_s=round(slowloris, 2), body_timeout="408",
                keep_alive_closed_s=round(kept, 2), passed=True)  # fmt: skip


def test_open_connections_are_bounded(tmp_path: Path, figures: Figures) -> None:
    app = create_app(RecordingNetwork())
    limits = ServeLimits(head_timeout=5, keep_alive=5, max_connections=4)
    options = limits.uvicorn_options(lambda _c, d: json.dumps({"error": d}).encode())
    with ServerThread(app, **options) as server:
        port = server.port
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            time.sleep(0.2)
            answer = _raw(server.url, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:100]
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        answer = _raw(server.url, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ")
    figures.add(
        "abuse",
        check="open connections",
        server="control",
        max_connections=4,
        beyond="503",
        passed=True,
    )


@pytest.mark.asyncio
async def test_control_bodies_are_bounded(
    monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    app = create_app(RecordingNetwork())
    async with _client(app) as client:
        big = await client.post("/", content=b"{" + b" " * (control_server.MAX_BODY + 1) + b"}")
        assert big.status_code == 413
        deep = await client.post("/", content=b"[" * 60_000)
        assert deep.status_code == 400
        assert "nested too deeply" in deep.json()["error"]
        odd_length = await client.post(
            "/", content=b"{}", headers={"content-length": "²".encode("latin-1")}
        )
        assert odd_length.status_code == 413

    monkeypatch.setattr(control_server, "BODY_DEADLINE", 0.3)

    async def trickle() -> AsyncIterator[bytes]:
        yield b"{"
        await asyncio.sleep(5)
        yield b"}"

    async with _client(app) as client:
        slow = await client.post("/", content=trickle())
        assert slow.status_code == 408
    figures.add(
        "abuse",
        check="body size and time",
        server="control",
        max_body=control_server.MAX_BODY,
        oversize="413",
        nested_60k="400",
        slow_body="408",
        passed=True,
    )


def test_the_collector_process_bounds_heads(tmp_path: Path, figures: Figures) -> None:
    """The real ``serve collector`` uses the bounded protocol (its httptools parser
    ignores uvicorn's h11 size option)."""
    process = CollectorProcess(tmp_path / "data")
    process.start()
    try:
        big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n"
        assert _raw(process.url, big).startswith(b"HTTP/1.1 431 ")
        long_url = b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n"
        assert _raw(process.url, long_url).startswith(b"HTTP/1.1 414 ")
    finally:
        process.stop()
    figures.add(
        "abuse",
        check="request head size via serve",
        server="collector",
        header_100k="431",
        url_100k="414",
        passed=True,
    )


# ------------------------------------------------------------------ admin token


@pytest.mark.asyncio
async def test_admin_endpoints_are_off_without_a_token(collector: Collector) -> None:
    app = CollectorApp(collector=collector)
    async with _client(app) as client:
        for path in ("/admin/export", "/admin/stats"):
            answer = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 404
            assert answer.json()["error"] == "not_found"


@pytest.mark.asyncio
async def test_admin_endpoints_need_the_token(collector: Collector, figures: Figures) -> None:
    app = CollectorApp(collector=collector, admin_token=TOKEN)
    tries = {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "wrong token": {"Authorization": "Bearer " + "x" * len(TOKEN)},
        "token prefix": {"Authorization": "Bearer " + TOKEN[:-1]},
        "basic scheme": {"Authorization": "Basic " + TOKEN},
        "token in another header": {"X-Admin-Token": TOKEN},
    }
    async with _client(app) as client:
        for name, headers in tries.items():
            for path in ("/admin/export", "/admin/stats"):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 401, name
                assert answer.json()["error"] == "unauthorized"
                assert len(answer.json()["detail"]) > 20
                assert answer.headers["www-authenticate"].startswith("Bearer")
        ok = await client.get("/admin/stats", headers={"Authorization": f"bearer {TOKEN}"})
        assert ok.status_code == 200
        assert ok.json()["tree_size"] == 0
    figures.add("abuse", check="admin token", server="collector", refused_attempts=len(tries) * 2,
                status="401", without_token_configured="404", passed=True)  # fmt: skip


@pytest.mark.asyncio
async def test_admin_export_pages_through_the_log(collector: Collector) -> None:
    app = CollectorApp(collector=collector, admin_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with _client(app) as client:
        sent = [measurement(i) for i in range(7)]
        uids = []
        for m in sent:
            answer = await client.post(
                f"/report/{REPORT_ID}", json={"format": "json", "content": m}
            )
            uids.append(answer.json()["measurement_uid"])
        lines: list[dict[str, Any]] = []
        start = 0
        pages = 0
        while True:
            page = await client.get(f"/admin/export?from={start}&limit=3", headers=auth)
            assert page.status_code == 200
            assert page.headers["content-type"] == "application/x-ndjson"
            assert page.headers["x-tree-size"] == "7"
            got = [json.loads(line) for line in page.text.splitlines()]
            if not got:
                break
            pages += 1
            lines += got
            start = int(page.headers["x-next-from"])
        assert pages == 3
        assert [line["leaf_index"] for line in lines] == list(range(7))
        assert [line["measurement_uid"] for line in lines] == uids
        assert [canonicalize(line["measurement"]) for line in lines] == [
            canonicalize(m) for m in sent
        ]
        tries = (("from=8", 400), ("limit=0", 400), ("limit=1001", 400), ("from=-1", 400),
                 ("from=x", 400), ("page=2", 400), ("from=7", 200))  # fmt: skip
        for query, status in tries:
            assert (await client.get(f"/admin/export?{query}", headers=auth)).status_code == status
        stats = (await client.get("/admin/stats", headers=auth)).json()
        assert stats["tree_size"] == 7
        assert stats["answers"]["200"] >= 7


def test_admin_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLOCKPROOF_ADMIN_TOKEN", raising=False)
    assert read_admin_token(None) is None
    monkeypatch.setenv("BLOCKPROOF_ADMIN_TOKEN", TOKEN)
    assert read_admin_token(None) == TOKEN
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file-0123456789\n")
    assert read_admin_token(token_file) == "from-a-file-0123456789"
    token_file.write_text("short\n")
    with pytest.raises(InputError, match="at least 16"):
        read_admin_token(token_file)


def test_serve_collector_reads_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    process = CollectorProcess(
        tmp_path / "data", extra_args=("--admin-token-file", str(token_file))
    )
    process.start()
    try:
        assert httpx.get(process.url + "/admin/stats").status_code == 401
        answer = httpx.get(
            process.url + "/admin/stats", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert answer.status_code == 200
    finally:
        process.stop()


# ------------------------------------------------------------------------- SSRF


class Origin:
    """A loopback HTTP server standing in for a public site: one canned answer."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.port = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Origin:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(self.answer)
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def _redirect(location: str) -> bytes:
    return (f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n").encode()  # fmt: skip


HOSTS = {
    "localhost": ["127.0.0.1", "::1"],
    "metadata.test": ["169.254.169.254"],
    "intranet.test": ["10.1.2.3"],
    "rebind.test": [PUBLIC, "127.0.0.1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "nat64.test": ["64:ff9b::7f00:1"],
    "public.test": [PUBLIC],
}

# (name, http_request, tcp_connect, redirect answered by the public origin or None)
SSRF: list[tuple[str, str, list[str], str | None]] = [
    ("loopback literal", "http://127.0.0.1/", [], None),
    ("loopback other port", "http://127.0.0.1:8081/admin/stats", [], None),
    ("loopback v6", "http://[::1]/", [], None),
    ("private 10/8", "http://10.0.0.5/", [], None),
    ("private 192.168", "https://192.168.1.1/", [], None),
    ("cloud metadata", "http://169.254.169.254/latest/meta-data/", [], None),
    ("v4-mapped v6", "http://[::ffff:127.0.0.1]/", [], None),
    ("v4-mapped v6 hex", "http://[::ffff:7f00:1]/", [], None),
    ("v4-compatible v6", "http://[::127.0.0.1]/", [], None),
    ("v4-translated v6", "http://[::ffff:0:127.0.0.1]/", [], None),
    ("nat64 loopback", "http://[64:ff9b::127.0.0.1]/", [], None),
    ("nat64 metadata", "http://[64:ff9b::a9fe:a9fe]/", [], None),
    ("unspecified v4", "http://0.0.0.0/", [], None),
    ("unspecified v6", "http://[::]/", [], None),
    ("zero", "http://0/", [], None),
    ("decimal", "http://2130706433/", [], None),
    ("hex", "http://0x7f000001/", [], None),
    ("dotted hex", "http://0x7f.0x0.0x0.0x1/", [], None),
    ("octal", "http://0177.0.0.1/", [], None),
    ("octal 10/8", "http://012.0.0.1/", [], None),
    ("short form", "http://127.1/", [], None),
    ("trailing dot", "http://127.0.0.1./", [], None),
    ("full-width digits", "http://１２７.０.０.１/", [], None),
    ("link-local v6 with zone", "http://[fe80::1%25eth0]/", [], None),
    ("unique-local v6", "http://[fc00::1]/", [], None),
    ("userinfo trick", "http://public.test@127.0.0.1/", [], None),
    ("name resolving to loopback", "http://localhost/", [], None),
    ("name resolving to metadata", "http://metadata.test/", [], None),
    ("name resolving to private", "http://intranet.test/", [], None),
    ("name resolving to mixed", "http://rebind.test/", [], None),
    ("name resolving to mapped v6", "http://mapped.test/", [], None),
    ("name resolving to nat64", "http://nat64.test/", [], None),
    ("redirect to loopback", "http://public.test/", [], "http://127.0.0.1/"),
    ("redirect to decimal", "http://public.test/", [], "http://2130706433/"),
    ("redirect to localhost", "http://public.test/", [], "http://localhost:8081/"),
    ("redirect to metadata", "http://public.test/", [], "http://169.254.169.254/"),
    ("redirect to v6 loopback", "http://public.test/", [], "http://[::1]/"),
    ("probe endpoints on loopback", "https://public.test/",
     ["127.0.0.1:22", "127.0.0.1:443", "[::1]:443", "0.0.0.0:80"], None),
    ("probe endpoints private", "https://public.test/",
     ["10.0.0.1:80", "172.16.0.1:443", "192.168.0.1:443", "100.64.0.1:80", "169.254.169.254:80"],
     None),
    ("probe endpoints v6 spellings", "https://public.test/",
     ["[::ffff:127.0.0.1]:80", "[::127.0.0.1]:80", "[64:ff9b::a00:1]:80", "[fc00::1]:443",
      "[fe80::1]:443", "[::]:80"], None),
]  # fmt: skip


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("url", "endpoints", "redirect"), [c[1:] for c in SSRF], ids=[c[0] for c in SSRF]
)
async def test_ssrf_attempts_never_dial_private_addresses(
    url: str, endpoints: list[str], redirect: str | None, figures: Figures, request: Any
) -> None:
    async with Origin(_redirect(redirect or "http://public.test/")) as origin:
        network = RecordingNetwork(
            hosts=HOSTS,
            default=(),
            routes={(PUBLIC, 80): ("127.0.0.1", origin.port)} if redirect else {},
        )
        app = create_app(network, rate_limit=None)
        async with _client(app) as client:
            answer = await client.post(
                "/",
                json={"http_request": url, "http_request_headers": {}, "tcp_connect": endpoints},
            )
    assert answer.status_code in (200, 400), answer.text
    forbidden = [(ip, port) for ip, port in network.dialed if ip != PUBLIC]
    assert forbidden == []
    if answer.status_code == 200:
        body = answer.json()
        assert set(body["tcp_connect"]) <= {f"{PUBLIC}:80", f"{PUBLIC}:443"}
        if redirect is not None:
            assert (PUBLIC, 80) in network.dialed  # the redirect was really served, then refused
            assert body["http_request"]["failure"] is not None
    figures.add("abuse", check="ssrf", server="control", attempt=request.node.callspec.id,
                status=answer.status_code, dials=len(network.dialed),
                forbidden_dials=len(forbidden), passed=True)  # fmt: skip


def test_the_ssrf_table_is_big_enough() -> None:
    assert len(SSRF) >= 35
