"""The control server's HTTP surface: health check, validation, limits, SSRF guard.

Driven in-process through httpx's ASGI transport; no socket is opened. The
network seam given to the server fails the test if anything is dialed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from blockproof.control.server import MAX_BODY, create_app
from figures import Figures


class NoNetwork:
    """A network that must never be used (every address here is a bogon)."""

    dialed: list[str]

    def __init__(self) -> None:
        self.dialed = []

    async def open_stream(
        self, ip: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.dialed.append(f"{ip}:{port}")
        raise AssertionError(f"control server dialed {ip}:{port}")

    def udp_address(self, ip: str, port: int) -> tuple[str, int]:
        raise AssertionError("no UDP expected")

    async def getaddrinfo(self, host: str) -> list[str]:
        self.dialed.append(host)
        return ["10.0.0.1", "127.0.0.1"]  # a resolver answering bogons


async def _post(body: bytes | str, network: Any = None, method: str = "POST") -> httpx.Response:
    app = create_app(network or NoNetwork())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://control.test") as client:
        return await client.request(
            method, "/", content=body, headers={"content-type": "application/json"}
        )


@pytest.mark.asyncio
async def test_health_check_matches_oonis_helper() -> None:
    app = create_app(NoNetwork())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://c"
    ) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.json() == {"message": "Hello OONItarian!"}


GOOD = {
    "http_request": "https://x.com/",
    "http_request_headers": {"Accept-Language": ["en-US,en;q=0.9"]},
    "tcp_connect": ["10.1.2.3:443", "127.0.0.1:443"],
}

BAD_INPUTS: list[tuple[str, bytes | str, int, str]] = [
    ("malformed json", b"{not json", 400, "malformed JSON"),
    ("not an object", b"[1, 2]", 400, ""),
    ("missing http_request", json.dumps({"tcp_connect": []}), 400, "http_request"),
    ("wrong scheme", json.dumps({**GOOD, "http_request": "ftp://x.com/"}), 400, "http_request"),
    (
        "endpoint not ip:port",
        json.dumps({**GOOD, "tcp_connect": ["x.com:443"]}),
        400,
        "tcp_connect[0]",
    ),
    ("endpoint wrong type", json.dumps({**GOOD, "tcp_connect": [443]}), 400, "tcp_connect[0]"),
    (
        "headers wrong type",
        json.dumps({**GOOD, "http_request_headers": {"A": "b"}}),
        400,
        "http_request_headers",
    ),
    (
        "too many endpoints",
        json.dumps({**GOOD, "tcp_connect": [f"1.2.3.{i}:443" for i in range(200)]}),
        400,
        "tcp_connect",
    ),
    ("oversize body", b"{" + b" " * (MAX_BODY + 10) + b"}", 413, "larger than"),
]


@pytest.mark.reliability
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "status", "needle"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_input_gets_a_clear_4xx(
    body: bytes | str, status: int, needle: str, figures: Figures, request: pytest.FixtureRequest
) -> None:
    response = await _post(body)
    assert response.status_code == status
    assert needle in response.json()["error"]
    figures.add("bad_inputs", server="control", input=request.node.callspec.id,
                status=response.status_code, error=response.json()["error"][:60])  # fmt: skip


@pytest.mark.asyncio
async def test_other_methods_are_405() -> None:
    response = await _post(b"{}", method="PUT")
    assert response.status_code == 405


@pytest.mark.asyncio
async def test_bogons_are_never_dialed() -> None:
    network = NoNetwork()
    response = await _post(json.dumps(GOOD), network=network)
    assert response.status_code == 200
    body = response.json()
    # nothing but the DNS lookup happened: every address was a bogon
    assert network.dialed == ["x.com", "x.com"] or network.dialed == ["x.com"]
    assert body["tcp_connect"] == {}
    assert body["http_request"]["failure"] == "dns_bogon_error"  # refused, and says why
    assert body["http_request"]["status_code"] == -1
    assert body["ip_info"]["10.1.2.3"]["flags"] & 4  # bogon flag
    assert body["ip_info"]["127.0.0.1"]["flags"] == 1 | 2 | 4
    assert body["dns"] == {"failure": None, "addrs": ["10.0.0.1", "127.0.0.1"]}


@pytest.mark.asyncio
async def test_unknown_paths_and_methods_answer_json() -> None:
    app = create_app(NoNetwork())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://c"
    ) as client:
        missing = await client.get("/nope")
        assert missing.status_code == 404
        assert "no such endpoint" in missing.json()["error"]
        wrong = await client.request("DELETE", "/")
        assert wrong.status_code == 405
        assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
        assert "error" in wrong.json()
        document = await client.get("/openapi.json")
        assert document.json()["info"]["title"] == "blockproof control server"
