"""How the public servers (collector and control server) are run: uvicorn, bounded, described.

uvicorn parses HTTP with httptools, which has no limit on the size of a request
head and no deadline for it to arrive (its ``h11_max_incomplete_event_size``
applies to the h11 parser only, and its keep-alive timer only runs between
requests). ``bounded_protocol`` adds both on top of uvicorn's httptools
protocol, before the app sees anything:

- the request head (request line and headers) may be at most ``head_limit``
  bytes: beyond, 414 (the request line alone is too long) or 431, and the
  connection is closed;
- it must arrive within ``head_timeout`` seconds of the connection opening or of
  its first byte: otherwise 408 and the connection is closed (a client that
  opens connections and sends nothing, or one header line a minute, holds no
  connection for long).

Bodies and whole requests are bounded by each app (size, deadline), and the
number of open connections by uvicorn's ``limit_concurrency`` (a 503 beyond).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_LIMIT = 16 * 1024
HEAD_TIMEOUT = 10.0
# After refusing a request the answer is followed by a FIN, and what the client is still
# sending is read and dropped for a while (a "lingering close"): closing a socket with
# unread data makes the kernel send a RST, which can destroy the answer before the client
# reads it. Bounded in time and bytes.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20

ErrorBody = Callable[[str, str], bytes]

_REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class ServeLimits:
    """What ``uvicorn.run`` is given for one public server."""

    head_limit: int = HEAD_LIMIT
    head_timeout: float = HEAD_TIMEOUT
    keep_alive: int = 30  # seconds an idle keep-alive connection stays open
    max_connections: int = 2048  # uvicorn's limit_concurrency: a 503 beyond

    def uvicorn_options(self, error_body: ErrorBody) -> dict[str, Any]:
        return {
            "http": bounded_protocol(
                head_limit=self.head_limit, head_timeout=self.head_timeout, error_body=error_body
            ),
            "timeout_keep_alive": self.keep_alive,
            "limit_concurrency": self.max_connections,
            "h11_max_incomplete_event_size": self.head_limit,  # if h11 is ever chosen
            "server_header": False,
            "date_header": False,
        }


def bounded_protocol(
    *, head_limit: int, head_timeout: float, error_body: ErrorBody
) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a size cap and a deadline on each request head."""

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0
            self._line_done = False  # the request line has ended
            self._in_head = True  # waiting for (the rest of) a request head
            self._tail = b""
            self._head_timer: asyncio.TimerHandle | None = None
            self._refused = False
            self._dropped = 0  # bytes read and dropped after a refusal

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def eof_received(self) -> None:
            if self._refused:  # the client has stopped sending: the lingering is over
                self.transport.close()
                return
            super().eof_received()

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout, self._head_expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_expired(self) -> None:
            self._head_timer = None
            if self._in_head and not self.transport.is_closing():
                self._refuse(
                    408,
                    "request_timeout",
                    f"the request head did not arrive within {head_timeout:g} s",
                )

        def _refuse(self, status: int, code: str, detail: str) -> None:
            self._refused = True
            self._disarm()
            body = error_body(code, detail)
            head = (
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n"
                % (status, _REASONS[status], len(body))
            )
            self.transport.write(head + body)
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self._head_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
            else:
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                self._dropped += len(data)
                if self._dropped > LINGER_BYTES:
                    self.transport.close()
                return
            if self._in_head:
                self._arm()
                window = self._tail + data
                end = window.find(b"\r\n\r\n")
                counted = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
                if not self._line_done:
                    line_end = data.find(b"\n")
                    if line_end >= 0:
                        self._line_done = self._head_bytes + line_end <= head_limit
                self._head_bytes += counted
                if self._head_bytes > head_limit:
                    if not self._line_done:
                        self._refuse(
                            414, "uri_too_long", f"the request line is over {head_limit} bytes"
                        )
                    else:
                        self._refuse(
                            431,
                            "headers_too_large",
                            f"the request line and headers are over {head_limit} bytes",
                        )
                    return
                self._tail = window[-3:]
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True  # the next request's head, whenever it comes
            self._head_bytes = 0
            self._line_done = False
            self._tail = b""

    return BoundedHttpToolsProtocol


def openapi_document(name: str) -> bytes:
    """The OpenAPI document of a public server (``collector`` or ``control``), as shipped."""
    from importlib.resources import files

    return (files("blockproof.data") / "openapi" / f"{name}.json").read_bytes()
