"""The h11-driven HTTP exchange, fed bytes by hand (no sockets)."""

from __future__ import annotations

import pytest

from blockproof.core.http import (
    HTTPExchange,
    HTTPProtocolError,
    browser_request,
    extract_title,
    redirect_location,
)
from blockproof.model.observations import HTTPResponse


def _exchange(max_body: int = 1 << 19) -> HTTPExchange:
    return HTTPExchange(browser_request("http://x.com/path?q=1"), max_body=max_body)


def test_request_bytes_are_a_browser_get() -> None:
    ex = _exchange()
    wire = ex.bytes_to_send()
    assert wire.startswith(b"GET /path?q=1 HTTP/1.1\r\n")
    assert b"\r\nHost: x.com\r\n" in wire
    assert b"User-Agent: Mozilla/5.0" in wire
    assert b"Accept-Language: en-US,en;q=0.9" in wire
    assert ex.bytes_to_send() == b""  # only once


def test_response_in_pieces() -> None:
    ex = _exchange()
    ex.bytes_to_send()
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\nServer: t\r\n\r\n<title>Hello X</title>abcd"
    for i in range(0, len(wire), 7):
        ex.receive_data(wire[i : i + 7])
    assert ex.done
    r = ex.response()
    assert r is not None
    assert (r.code, r.body, r.body_is_truncated) == (200, b"<title>Hello X</title>abcd", False)
    assert r.header("server") == "t"
    assert extract_title(r.body) == "Hello X"


def test_chunked_body() -> None:
    ex = _exchange()
    ex.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    r = ex.response()
    assert ex.done
    assert r is not None
    assert r.body == b"hello"


def test_body_until_eof() -> None:
    ex = _exchange()
    ex.receive_data(b"HTTP/1.0 200 OK\r\n\r\npartial")
    assert not ex.done
    ex.receive_data(b"")
    r = ex.response()
    assert ex.done
    assert r is not None
    assert r.body == b"partial"


def test_truncation_at_cap() -> None:
    ex = _exchange(max_body=10)
    ex.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 60)
    r = ex.response()
    assert ex.done
    assert r is not None
    assert (r.body, r.body_is_truncated) == (b"a" * 10, True)


def test_eof_before_headers_is_eof() -> None:
    ex = _exchange()
    ex.receive_data(b"HTTP/1.1 200 OK\r\nContent-")
    with pytest.raises(EOFError):
        ex.receive_data(b"")
    assert ex.response() is None


def test_eof_mid_body_is_eof() -> None:
    ex = _exchange()
    ex.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(EOFError):
        ex.receive_data(b"")
    r = ex.response()
    assert r is not None
    assert r.body == b"abc"


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x00\x05hello",  # a TLS record instead of HTTP
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000,  # a header line that never ends
    ],
)
def test_protocol_violations(garbage: bytes) -> None:
    ex = _exchange()
    with pytest.raises(HTTPProtocolError):
        ex.receive_data(garbage)


def test_interim_100_continue_is_skipped() -> None:
    ex = _exchange()
    ex.receive_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    r = ex.response()
    assert ex.done
    assert r is not None
    assert r.code == 204


@pytest.mark.parametrize(
    ("code", "location", "expected"),
    [
        (301, "https://x.com/", "https://x.com/"),
        (302, "/blocked", "http://x.com/blocked"),
        (307, "other", "http://x.com/a/other"),
        (308, " https://t.co/ ", "https://t.co/"),
        (200, "https://x.com/", None),
        (302, None, None),
    ],
)
def test_redirect_location(code: int, location: str | None, expected: str | None) -> None:
    headers = (("Location", location),) if location is not None else ()
    response = HTTPResponse(code=code, headers_list=headers)
    assert redirect_location("http://x.com/a/b", response) == expected


def test_post_body_has_content_length() -> None:
    from blockproof.model.observations import HTTPRequest

    ex = HTTPExchange(
        HTTPRequest(method="POST", url="http://th/", headers_list=(("Host", "th"),), body="{}")
    )
    wire = ex.bytes_to_send()
    assert b"Content-Length: 2\r\n" in wire
    assert wire.endswith(b"\r\n\r\n{}")
