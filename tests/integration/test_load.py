"""Bounded load on loopback: both public servers as real processes.

The collector is ``blockproof serve collector`` (``collector_kit.CollectorProcess``);
the control server is ``blockproof``'s app served by uvicorn with the production
limits in a child process (this file run as a script), measuring a loopback
origin through a test-only network that routes one public-looking address to
it and refuses every other dial (the production network never would).

A small asyncio client keeps ``concurrency`` keep-alive connections busy; every
request loop is bounded in count and in time. Each run records requests/s,
p50/p99 latency, and counts answers by kind: 5xx other than the deliberate 503
(busy, connections) fail the test; 503 and 429 are counted. The short runs
take a few seconds each; the ``long`` ones twenty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from collector_kit import REPORT_ID, CollectorProcess, RecordingNetwork, free_port, measurement

from figures import Figures

pytestmark = pytest.mark.reliability

PUBLIC = "93.184.215.14"
ORIGIN_PAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 62\r\n"
    b"Connection: close\r\n\r\n<html><head><title>origin</title></head><body>ok</body></html>"
)


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)  # seconds since start
    errors: int = 0  # transport failures (reset, timeout, malformed answer)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    @property
    def rps(self) -> float:
        return round(self.requests / self.seconds, 1)

    def slowest_second(self) -> int:
        """Answers in the emptiest whole second of the run (is the rate held?)."""
        whole = int(self.seconds)
        per = Counter(int(t) for t in self.completions if t < whole)
        return min((per[s] for s in range(whole)), default=0)

    def unexpected_5xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500 and s != 503)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    writer.write(request)
    status_line = await reader.readline()
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    close = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    await reader.readexactly(length)
    return status, close


async def _load(
    port: int, requests: list[bytes], *, concurrency: int, seconds: float, max_requests: int
) -> LoadResult:
    result = LoadResult()
    started = time.perf_counter()
    deadline = time.monotonic() + seconds
    sent = 0

    async def worker(w: int) -> None:
        nonlocal sent
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        i = w
        try:
            while time.monotonic() < deadline and sent < max_requests:
                sent += 1
                request = requests[i % len(requests)]
                i += concurrency
                t0 = time.perf_counter()
                try:
                    if conn is None:
                        conn = await asyncio.open_connection("127.0.0.1", port)
                    async with asyncio.timeout(30):
                        status, close = await _exchange(*conn, request)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError):
                    result.errors += 1
                    close = True
                else:
                    result.statuses[status] += 1
                    result.latencies.append(time.perf_counter() - t0)
                    result.completions.append(time.perf_counter() - started)
                if close and conn is not None:
                    conn[1].close()
                    conn = None
        finally:
            if conn is not None:
                conn[1].close()

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def _post(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: load\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: load\r\n\r\n".encode()


def _record(
    figures: Figures, server: str, endpoint: str, concurrency: int, r: LoadResult, **extra: Any
) -> None:
    figures.add(
        "load",
        server=server,
        endpoint=endpoint,
        concurrency=concurrency,
        seconds=round(r.seconds, 2),
        requests=r.requests,
        rps=r.rps,
        slowest_second=r.slowest_second(),
        p50_ms=r.pct(0.50),
        p99_ms=r.pct(0.99),
        errors=r.errors,
        status_5xx=r.unexpected_5xx(),
        status_503=r.statuses[503],
        status_429=r.statuses[429],
        **extra,
    )


def _check(r: LoadResult, *, allow_429: bool = False) -> None:
    assert r.requests > 0
    assert r.unexpected_5xx() == 0, r.statuses
    assert r.errors == 0, r.statuses
    if not allow_429:
        assert r.statuses[429] == 0, r.statuses
    assert r.slowest_second() > 0, "a whole second went by without an answer"


# ------------------------------------------------------------------ collector


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    process = CollectorProcess(tmp_path_factory.mktemp("load") / "data")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _submissions(count: int, offset: int) -> list[bytes]:
    import orjson

    return [
        _post(
            f"/report/{REPORT_ID}",
            orjson.dumps({"format": "json", "content": measurement(i, pad=800)}),
        )
        for i in range(offset, offset + count)
    ]


def _batches(count: int, offset: int, size: int = 16) -> list[bytes]:
    import orjson

    out = []
    for b in range(count):
        lines = [orjson.dumps(measurement(offset + b * size + j, pad=800)) for j in range(size)]
        out.append(_post("/measurements", b"\n".join(lines), "application/x-ndjson"))
    return out


COLLECTOR_RUNS = {  # endpoint: concurrency
    "POST /report/{id}": 16,
    "POST /measurements (16 per batch)": 8,
    "GET /log/tree-head": 16,
    "GET /measurements/{uid}": 16,
}


def _collector_requests(
    endpoint: str, collector: CollectorProcess, n: int, offset: int
) -> list[bytes]:
    """Requests to cycle through (a submission sent again is a duplicate: still a 200)."""
    if endpoint == "POST /report/{id}":
        return _submissions(n, offset)
    if endpoint.startswith("POST /measurements"):
        return _batches(max(1, n // 8), offset)
    if endpoint == "GET /log/tree-head":
        return [_get("/log/tree-head")]
    first = httpx.post(
        collector.url + f"/report/{REPORT_ID}",
        json={"format": "json", "content": measurement(offset - 1)},
        timeout=30,
    ).json()["measurement_uid"]
    return [_get(f"/measurements/{first}"), _get(f"/measurements/{first}/receipt")]


def _run_collector(
    collector: CollectorProcess, figures: Figures, seconds: float, scale: int, offset: int
) -> None:
    for k, (endpoint, concurrency) in enumerate(COLLECTOR_RUNS.items()):
        requests = _collector_requests(endpoint, collector, 6000 * scale, offset + k * 10_000_000)
        result = asyncio.run(
            _load(collector.port, requests, concurrency=concurrency, seconds=seconds,
                  max_requests=200_000 * scale)
        )  # fmt: skip
        _record(figures, "collector", endpoint, concurrency, result)
        _check(result)
        assert result.statuses[200] == result.requests, result.statuses


def test_collector_under_load(collector: CollectorProcess, figures: Figures) -> None:
    _run_collector(collector, figures, seconds=2.5, scale=1, offset=1_000_000)


@pytest.mark.long
def test_collector_under_long_load(collector: CollectorProcess, figures: Figures) -> None:
    _run_collector(collector, figures, seconds=20, scale=4, offset=500_000_000)


def test_collector_rate_limit_under_load(tmp_path: Path, figures: Figures) -> None:
    """With a rate limit on, a client over it gets 429s, and nothing else goes wrong."""
    process = CollectorProcess(
        tmp_path / "data", extra_args=("--rate-limit", "100", "--rate-burst", "50")
    )
    process.start()
    try:
        result = asyncio.run(
            _load(
                process.port,
                [_get("/log/tree-head")],
                concurrency=8,
                seconds=2,
                max_requests=100_000,
            )
        )
    finally:
        process.stop()
    _record(
        figures,
        "collector",
        "GET /log/tree-head (rate limit 100/s)",
        8,
        result,
        rate_limit="100/s, burst 50",
    )
    _check(result, allow_429=True)
    assert result.statuses[429] > 0
    assert result.statuses[200] <= 50 + 100 * (result.seconds + 1)


# ------------------------------------------------------------- control server


def _serve_control(port: int) -> None:
    """The child process: a loopback origin, and the control server measuring it."""
    import json

    import uvicorn

    from blockproof.control.server import create_app
    from blockproof.netx.endpoint import Timeouts
    from blockproof.serving import ServeLimits

    async def main() -> None:
        async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(ORIGIN_PAGE)
                await writer.drain()
            writer.close()

        site = await asyncio.start_server(origin, "127.0.0.1", 0, backlog=1024)
        network = RecordingNetwork(
            hosts={"origin.test": [PUBLIC]},
            routes={(PUBLIC, 80): ("127.0.0.1", site.sockets[0].getsockname()[1])},
        )
        app = create_app(network, timeouts=Timeouts(dns=2, tcp=2, tls=2, http=5))
        limits = ServeLimits(keep_alive=5, max_connections=1024)
        options = limits.uvicorn_options(lambda _c, d: json.dumps({"error": d}).encode())
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
            lifespan="off", **options,
        )  # fmt: skip
        await uvicorn.Server(config).serve()
        assert all(ip == PUBLIC for ip, _ in network.dialed)

    asyncio.run(main())


@pytest.fixture(scope="module")
def control_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("control-load") / "control.log"
    here = Path(__file__).resolve().parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve-control", str(port)],
            stdout=subprocess.DEVNULL, stderr=log, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(log_path.read_text(errors="replace")[-2000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the control server did not come up")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(20)


THREQUEST = (
    b'{"http_request": "http://origin.test/", "http_request_headers": '
    b'{"Accept-Language": ["en-US,en;q=0.9"]}, "tcp_connect": ["93.184.215.14:80"]}'
)


def _run_control(port: int, figures: Figures, seconds: float, scale: int) -> None:
    for endpoint, request, concurrency in (
        ("POST / (measure a loopback origin)", _post("/", THREQUEST), 16),
        ("GET / (health)", _get("/"), 16),
    ):
        result = asyncio.run(
            _load(
                port,
                [request],
                concurrency=concurrency,
                seconds=seconds,
                max_requests=50_000 * scale,
            )
        )
        _record(figures, "control", endpoint, concurrency, result)
        _check(result)
    # the answers are real measurements of the origin
    answer = httpx.post(f"http://127.0.0.1:{port}/", content=THREQUEST, timeout=30).json()
    assert answer["http_request"]["status_code"] == 200
    assert answer["http_request"]["title"] == "origin"
    assert answer["tcp_connect"]["93.184.215.14:80"]["status"] is True


def test_control_under_load(control_port: int, figures: Figures) -> None:
    _run_control(control_port, figures, seconds=2.5, scale=1)


@pytest.mark.long
def test_control_under_long_load(control_port: int, figures: Figures) -> None:
    _run_control(control_port, figures, seconds=20, scale=10)


def test_control_overload_stays_clean(control_port: int, figures: Figures) -> None:
    """More measurements at once than the server takes (64): any beyond get a quick 503."""
    result = asyncio.run(
        _load(
            control_port, [_post("/", THREQUEST)], concurrency=128, seconds=2, max_requests=20_000
        )
    )
    _record(figures, "control", "POST / (128 at once, 64 allowed)", 128, result)
    _check(result)
    assert result.statuses[200] > 0
    assert statistics.median(result.latencies) < 5


if __name__ == "__main__" and sys.argv[1:2] == ["serve-control"]:
    _serve_control(int(sys.argv[2]))
