"""Properties of the HTTP driver: the sans-IO exchange (core/http.py, h11) and its shell.

- any byte stream from a server, cut into pieces anywhere, then closed, ends in a
  response or a clean failure (``HTTPProtocolError``, ``EOFError``), never another
  exception; what is buffered stays bounded (h11's incomplete-event limit, the body
  cap), including for streams that never end;
- a well-formed response (Content-Length, chunked, or delimited by the close), cut
  anywhere, reads back as what was sent, truncated at ``max_body``;
- the shell (``netx.http.http_round_trip``) over a stream serving those bytes
  returns a transaction, with a df-007 failure string or a response, and never raises.

tests/unit/test_http_driver.py has the hand-made cases.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import h11
import pytest
from hypothesis import example
from hypothesis import strategies as st
from properties_kit import RUNS, explore

from blockproof.core.http import MAX_HEADER_BYTES, HTTPExchange, HTTPProtocolError, browser_request
from blockproof.netx.http import http_round_trip
from blockproof.netx.trace import Recorder
from figures import Figures

TARGET = "HTTP driver"
pytestmark = pytest.mark.reliability

MAX_BODY = 4096  # small, so that the cap is reached often


def _exchange(max_body: int = MAX_BODY) -> HTTPExchange:
    exchange = HTTPExchange(browser_request("http://x.com/a?b=1"), max_body=max_body)
    exchange.bytes_to_send()
    return exchange


def _buffered(exchange: HTTPExchange) -> int:
    """Bytes h11 holds that were not turned into events yet."""
    return len(exchange._conn._receive_buffer)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _feed(exchange: HTTPExchange, pieces: list[bytes]) -> str:
    """Feed the pieces, then the close; "done", "protocol" or "eof" (how it ended)."""
    for piece in [*pieces, b""]:
        try:
            exchange.receive_data(piece)
        except HTTPProtocolError:
            return "protocol"
        except EOFError:
            return "eof"
        # bounded: what h11 holds unparsed, and the body kept
        assert _buffered(exchange) <= MAX_HEADER_BYTES + len(piece)
        response = exchange.response()
        assert response is None or len(response.body) <= exchange.max_body
        if exchange.done:
            break
    assert exchange.done
    return "done"


# ------------------------------------------------------------------ any server bytes

STATUS_LINES = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 404 Not Found\r\n",
    b"HTTP/1.1 100 Continue\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"HTTP/1.1 204 No Content\r\n",
    b"HTTP/1.1 304 Not Modified\r\n",
    b"HTTP/1.1 999 X\r\n",
    b"HTTP/2 200\r\n",
    b"HTTP/1.1 200\r\n",
    b"ICY 200 OK\r\n",
    b"\x16\x03\x01\x00\x05",
]
HEADERS = [
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Content-Length: 5, 6\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Upgrade: h2c\r\n",
    b"Location: /x\r\n",
    b" folded\r\n",
    b"X: \xff\xfe\r\n",
    b"Bad Header\r\n",
    b"X:\x00\r\n",
    b"\r\n",
]
BODIES = [
    b"hello",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"ffffffffffffffffffff\r\n",
    b"0;ext=1\r\n\r\n",
    b"0\r\nTrailer: x\r\n\r\n",
    b"zz\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
]
pieces = st.sampled_from(STATUS_LINES + HEADERS + BODIES) | st.binary(max_size=40)
server_bytes = st.lists(pieces, max_size=12).map(b"".join) | st.binary(max_size=300)
cuts = st.lists(st.integers(0, 10_000), max_size=12)


@example(data=b"HTTP/1.1 101 Switching Protocols\r\n\r\nrest", cut_at=[])
@example(data=b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nab", cut_at=[3])
@example(data=b"HTTP/1.1 100 Continue\r\n\r\n" * 50, cut_at=[1, 700])
def prop_any_server_bytes(data: bytes, cut_at: list[int]) -> None:
    exchange = _exchange()
    ended = _feed(exchange, _split(data, cut_at))
    if ended == "done":
        assert exchange.response() is not None


@pytest.mark.parametrize("run", RUNS)
def test_any_server_bytes_end_in_a_response_or_a_clean_failure(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_any_server_bytes, server_bytes, cuts, scale=3)


# ------------------------------------------------------------------ streams that never end

ENDLESS = {
    # prefix, then the same bytes again and again
    "header line": (b"HTTP/1.1 200 OK\r\nX: ", b"a"),
    "header lines": (b"HTTP/1.1 200 OK\r\n", b"X: a\r\n"),
    "status line": (b"HTTP/1.1 200 ", b"O"),
    "chunk size": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"0"),
    "chunk extension": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;", b"x"),
    "chunks": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n"),
    "trailers": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", b"T: v\r\n"),
    "body until close": (b"HTTP/1.0 200 OK\r\n\r\n", b"b"),
    "long body": (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", b"b"),
    "garbage": (b"", b"\x00\xff"),
    "interim responses": (b"", b"HTTP/1.1 100 Continue\r\n\r\n"),
}
LIMIT = 1 << 18  # bytes fed before giving up on an ending (4 times the header limit)


def prop_endless_stream(kind: str, piece_size: int) -> None:
    prefix, unit = ENDLESS[kind]
    exchange = _exchange()
    piece = unit * max(1, piece_size // len(unit))
    fed = calls = 0
    try:
        if prefix:  # (b"" would be the close)
            exchange.receive_data(prefix)
        while not exchange.done and fed < LIMIT and calls < 20_000:
            exchange.receive_data(piece)
            fed, calls = fed + len(piece), calls + 1
            assert _buffered(exchange) <= MAX_HEADER_BYTES + len(piece)
    except HTTPProtocolError:
        return  # refused: nothing more is read
    response = exchange.response()
    if exchange.done:
        assert response is not None
        assert response.body_is_truncated
        assert len(response.body) == exchange.max_body
    else:  # only a stream of interim responses goes on forever: no state builds up
        assert kind == "interim responses"
        assert response is None


@pytest.mark.parametrize("run", RUNS)
def test_endless_streams_end_or_stay_bounded(run: str, figures: Figures) -> None:
    explore(
        figures,
        run,
        TARGET,
        prop_endless_stream,
        st.sampled_from(sorted(ENDLESS)),
        st.integers(16, 70_000),
        scale=0.5,
    )


# ------------------------------------------------------------------ well-formed responses

token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=10)
field_value = st.binary(max_size=20).map(
    lambda b: bytes(c for c in b if c > 0x20 and c != 0x7F) or b"v"
)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, int, list[tuple[bytes, bytes]], bytes, str]:
    code = draw(st.sampled_from([200, 201, 301, 302, 403, 404, 451, 500, 503]))
    headers = [
        (b"X-" + draw(token).encode(), draw(field_value)) for _ in range(draw(st.integers(0, 5)))
    ]
    body = draw(st.binary(max_size=3 * MAX_BODY // 2) | st.binary(max_size=100))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    wire = b"HTTP/1.1 %d Status\r\n" % code
    for name, value in headers:
        wire += name + b": " + value + b"\r\n"
    if framing == "length":
        wire += b"Content-Length: %d\r\n\r\n" % len(body) + body
    elif framing == "chunked":
        wire += b"Transfer-Encoding: chunked\r\n\r\n"
        rest = body
        while rest:
            size = draw(st.integers(1, max(1, len(rest))))
            wire += b"%x\r\n" % size + rest[:size] + b"\r\n"
            rest = rest[size:]
        wire += b"0\r\n\r\n"
    else:
        wire += b"Connection: close\r\n\r\n" + body
    return wire, code, headers, body, framing


def prop_well_formed_response(
    case: tuple[bytes, int, list[Any], bytes, str], cut_at: list[int]
) -> None:
    wire, code, headers, body, _framing = case
    exchange = _exchange()
    assert _feed(exchange, _split(wire, cut_at)) == "done"
    response = exchange.response()
    assert response is not None
    assert response.code == code
    sent = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in headers]
    got = [(n.lower(), v) for n, v in response.headers_list]
    assert got[: len(sent)] == sent
    assert response.body == body[:MAX_BODY]
    assert response.body_is_truncated == (len(body) > MAX_BODY)


@pytest.mark.parametrize("run", RUNS)
def test_well_formed_responses_read_back_whole(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_well_formed_response, responses(), cuts)


# ------------------------------------------------------------------ the shell


class _Served:
    """A ByteStream whose server sends ``pieces`` and then closes."""

    def __init__(self, pieces: list[bytes], fail: BaseException | None) -> None:
        self.pieces = list(pieces)
        self.fail = fail
        self.written = b""
        self.closed = False

    async def read(self) -> bytes:
        if self.pieces:
            return self.pieces.pop(0)
        if self.fail is not None:
            raise self.fail
        return b""

    async def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


READ_ERRORS = [None, ConnectionResetError(104, "reset"), TimeoutError(), OSError(113, "x")]


def prop_round_trip_never_raises(data: bytes, cut_at: list[int], fail: int) -> None:
    async def main() -> None:
        recorder = Recorder()
        stream = _Served(_split(data, cut_at), READ_ERRORS[fail])
        request = browser_request("http://x.com/")
        tx = await http_round_trip(recorder, stream, request, timeout=5, address="1.2.3.4:80")
        assert stream.closed
        assert stream.written.startswith(b"GET / HTTP/1.1\r\n")
        assert recorder.trace.requests == [tx]
        if tx.failure is None:
            assert tx.response is not None
        else:
            assert isinstance(tx.failure, str)
            assert tx.failure

    asyncio.run(main())


@pytest.mark.parametrize("run", RUNS)
def test_the_shell_records_a_failure_or_a_response(run: str, figures: Figures) -> None:
    explore(
        figures,
        run,
        TARGET,
        prop_round_trip_never_raises,
        server_bytes | responses().map(lambda r: r[0]),
        cuts,
        st.integers(0, 3),
        scale=0.5,
    )


def test_h11_is_the_version_these_bounds_were_checked_with() -> None:
    # _buffered() reads h11's receive buffer; a rename there would show up here first
    assert hasattr(h11.Connection(h11.CLIENT), "_receive_buffer")
