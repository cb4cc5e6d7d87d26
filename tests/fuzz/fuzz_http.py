"""Fuzz the HTTP driver (core/http.py over h11): any server bytes, cut anywhere.

Input: a byte saying where to cut, then what the server sends; the exchange is fed the
pieces, then the close. It must end in a response or a clean failure
(``HTTPProtocolError``, ``EOFError``), holding no more than h11's limit unparsed and
no more body than its cap. Seeds: responses with each framing, interim responses,
broken chunking. See fuzzkit.py for how to run it.
"""

from __future__ import annotations

import sys

import atheris
from fuzzkit import main

with atheris.instrument_imports(include=["blockproof.core.http", "h11"]):
    from blockproof.core.http import (
        MAX_HEADER_BYTES,
        HTTPExchange,
        HTTPProtocolError,
        browser_request,
    )

REQUEST = browser_request("http://x.com/a?b=1")
MAX_BODY = 2048


def test_one_input(data: bytes) -> None:
    if not data:
        return
    step, stream = data[0] + 1, data[1:]
    exchange = HTTPExchange(REQUEST, max_body=MAX_BODY)
    exchange.bytes_to_send()
    pieces = [stream[i : i + step] for i in range(0, len(stream), step)] + [b""]
    for piece in pieces:
        try:
            exchange.receive_data(piece)
        except (HTTPProtocolError, EOFError):
            return
        assert len(exchange._conn._receive_buffer) <= MAX_HEADER_BYTES + len(piece)
        response = exchange.response()
        assert response is None or len(response.body) <= MAX_BODY
        if exchange.done:
            assert response is not None
            return
    raise AssertionError("the close neither ended the exchange nor failed it")


def seeds() -> list[bytes]:
    bodies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: v\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the close",
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3000\r\n\r\n" + b"<title>Blocked</title>" * 140,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ]
    return [bytes([step]) + body for body in bodies for step in (0, 6, 255)]


if __name__ == "__main__":
    main(test_one_input, seeds)
    sys.exit(0)
