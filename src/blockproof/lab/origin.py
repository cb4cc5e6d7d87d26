"""The lab's web servers: what a site (or a blockpage server) answers to a GET.

``respond`` is the pure part: request target and scheme in, status, headers and
body out, from the host's entry in the scenario. ``serve_http`` is the thin
asyncio shell speaking HTTP/1.1 with h11 over a (TLS or plain) stream, with
bounded sizes, a bounded number of requests per connection and an idle timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import Callable
from email.utils import formatdate

import h11

from blockproof.lab.internet import Host
from blockproof.lab.scenario import blockpage_body

IDLE_TIMEOUT = 30.0
MAX_REQUESTS_PER_CONNECTION = 100
READ_SIZE = 65536

Response = tuple[int, list[tuple[bytes, bytes]], bytes]


@functools.lru_cache(maxsize=1024)
def page(host: Host) -> bytes:
    """A deterministic HTML page with the host's title, about ``body_bytes`` long."""
    head = f"<!doctype html>\n<html><head><meta charset=utf-8><title>{host.title}</title></head>\n<body>\n<h1>{host.title}</h1>\n"  # noqa: E501
    tail = "</body></html>\n"
    filler: list[str] = []
    size = len(head) + len(tail)
    counter = 0
    while size < host.body_bytes:
        word = hashlib.blake2s(f"{host.name}/{counter}".encode(), digest_size=6).hexdigest()
        line = f"<p>{word} {host.name} lab content {counter}</p>\n"
        filler.append(line)
        size += len(line)
        counter += 1
    return (head + "".join(filler) + tail).encode()


def respond(host: Host, scheme: str, target: str, blockpages: dict[str, bytes]) -> Response:
    headers = [
        (b"server", b"nginx"),
        (b"date", formatdate(usegmt=True).encode()),
        (b"content-type", b"text/html; charset=utf-8"),
    ]
    if host.blockpage:
        body = blockpages.setdefault(host.blockpage, blockpage_body(host.blockpage))
        return 200, headers, body
    redirect = host.redirect_https if scheme == "https" else host.redirect_http
    if redirect and target != _path_of(redirect, host, scheme):
        body = b"<html><body>Moved</body></html>\n"
        return 301, [*headers, (b"location", redirect.encode())], body
    headers += [
        (b"cache-control", b"no-cache, no-store, must-revalidate"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-lab-origin", host.name.encode()),
    ]
    if scheme == "https":
        headers.append((b"strict-transport-security", b"max-age=631138519"))
    return host.status, headers, page(host)


def _path_of(url: str, host: Host, scheme: str) -> str | None:
    """The target a redirect would bring back to this same host and scheme (a loop)."""
    prefix = f"{scheme}://"
    if not url.startswith(prefix):
        return None
    rest = url[len(prefix) :]
    name, _, path = rest.partition("/")
    if name.lower() not in host.names:
        return None
    return "/" + path


Responder = Callable[[str], Response]


def site_responder(host: Host, scheme: str, blockpages: dict[str, bytes]) -> Responder:
    return lambda target: respond(host, scheme, target, blockpages)


async def serve_http(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    responder: Responder,
) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
    try:
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            request = await _next_request(conn, reader)
            if request is None:
                return
            status, headers, body = responder(request.target.decode("latin-1"))
            if request.method == b"HEAD":
                body = b""
            headers.append((b"content-length", str(len(body)).encode()))
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
            writer.write(conn.send(h11.Data(data=body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (OSError, h11.ProtocolError, TimeoutError):
        return
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await writer.wait_closed()


async def _next_request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            async with asyncio.timeout(IDLE_TIMEOUT):
                data = await reader.read(READ_SIZE)
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None
