"""The lab's web servers: what a site (or a blockpage server) answers to a GET.

``respond`` is the pure part: request target, scheme and path (the probe's, or
the clean one) in, status, headers and body out, from the host's entry in the
scenario: its ``[[host.path]]`` answers first, then its redirects, then its page
(``[host.probe]`` replaces parts of this for the probe's requests). Pages over
1 MiB are ``Stream``s, generated chunk by chunk while they are sent, so a 64 MiB
body never sits in memory. ``serve_http`` is the thin
asyncio shell speaking HTTP/1.1 with h11 over a (TLS or plain) stream, with
bounded sizes, a bounded number of requests per connection and an idle timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate

import h11

from blockproof.lab.internet import Headers, Host
from blockproof.lab.scenario import blockpage_body

IDLE_TIMEOUT = 30.0
MAX_REQUESTS_PER_CONNECTION = 100
READ_SIZE = 65536
# Generated pages up to this size are built once and cached; larger ones (OONI's
# large-file cases serve 32 MiB) are streamed in chunks of STREAM_CHUNK, never held.
STREAM_THRESHOLD = 1 << 20
STREAM_CHUNK = 1 << 16
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_NO_BODY_STATUSES = (204, 304)


@dataclass(frozen=True, slots=True)
class Stream:
    """A response body of known ``length`` whose bytes are generated as they are sent."""

    length: int
    chunks: Callable[[], Iterator[bytes]]


Body = bytes | Stream
Response = tuple[int, list[tuple[bytes, bytes]], Body]


def page(host: Host) -> bytes:
    """A deterministic HTML page with the host's title, about ``body_bytes`` long."""
    return _page(host.name, host.title, host.body_bytes)


@functools.lru_cache(maxsize=1024)
def _page(name: str, title: str, body_bytes: int) -> bytes:
    head, tail = _head(title), _TAIL
    filler: list[bytes] = []
    size = len(head) + len(tail)
    counter = 0
    while size < body_bytes:
        line = _line(name, counter)
        filler.append(line)
        size += len(line)
        counter += 1
    return head + b"".join(filler) + tail


_TAIL = b"</body></html>\n"


def _head(title: str) -> bytes:
    return (
        f"<!doctype html>\n<html><head><meta charset=utf-8><title>{title}</title></head>\n"
        f"<body>\n<h1>{title}</h1>\n"
    ).encode()


def _line(name: str, counter: int) -> bytes:
    word = hashlib.blake2s(f"{name}/{counter}".encode(), digest_size=6).hexdigest()
    return f"<p>{word} {name} lab content {counter}</p>\n".encode()


def streamed_page(name: str, title: str, body_bytes: int) -> Stream:
    """The same kind of page, exactly ``body_bytes`` long, generated chunk by chunk."""

    def chunks() -> Iterator[bytes]:
        head = _head(title)[:body_bytes]
        tail = _TAIL[: max(0, body_bytes - len(head))]
        remaining = body_bytes - len(head) - len(tail)
        buffer = bytearray(head)
        counter = 0
        while remaining > 0:
            line = _line(name, counter)
            counter += 1
            if len(line) > remaining:  # the last line: pad to the exact length
                line = b" " * (remaining - 1) + b"\n"
            buffer += line
            remaining -= len(line)
            if len(buffer) >= STREAM_CHUNK:
                yield bytes(buffer)
                buffer.clear()
        buffer += tail
        if buffer:
            yield bytes(buffer)

    return Stream(body_bytes, chunks)


def generated_body(name: str, title: str, body_bytes: int) -> Body:
    if body_bytes > STREAM_THRESHOLD:
        return streamed_page(name, title, body_bytes)
    return _page(name, title, body_bytes)


def body_length(body: Body) -> int:
    return body.length if isinstance(body, Stream) else len(body)


def respond(
    host: Host, scheme: str, target: str, blockpages: dict[str, bytes], *, probe: bool = False
) -> Response:
    """What ``host`` answers to a GET of ``target`` over ``scheme``; ``probe``: the request
    came over the probe's (censored) path, so the host's ``[host.probe]`` view applies."""
    headers = [
        (b"server", b"nginx"),
        (b"date", formatdate(usegmt=True).encode()),
        (b"content-type", b"text/html; charset=utf-8"),
    ]
    if host.blockpage:
        body = blockpages.setdefault(host.blockpage, blockpage_body(host.blockpage))
        return 200, headers, body
    view = host.probe if probe else None
    extra = host.headers + (view.headers if view is not None else ())
    if view is not None and view.location is not None:
        return _redirect(view.status or 302, view.location, headers, extra)
    if view is None or not view.answers_every_path:
        for entry in host.paths:
            if entry.path == target and entry.scheme in ("", scheme):
                if entry.location is not None:
                    return _redirect(entry.status or 302, entry.location, headers, extra)
                return _page_response(
                    host, scheme, headers, extra, status=entry.status or 200,
                    title=entry.title, body=entry.body, body_bytes=entry.body_bytes,
                )  # fmt: skip
    redirect = host.redirect_https if scheme == "https" else host.redirect_http
    if view is not None:
        override = view.redirect_https if scheme == "https" else view.redirect_http
        redirect = redirect if override is None else override
    if redirect and target != _path_of(redirect, host, scheme):
        return _redirect(301, redirect, headers, extra)
    if view is not None:
        status = host.status if view.status is None else view.status
        return _page_response(
            host, scheme, headers, extra, status=status,
            title=view.title, body=view.body, body_bytes=view.body_bytes,
        )  # fmt: skip
    return _page_response(host, scheme, headers, extra, status=host.status)


def _redirect(
    status: int, location: str, headers: list[tuple[bytes, bytes]], extra: Headers
) -> Response:
    headers = _merge([*headers, (b"location", location.encode())], extra)
    return status, headers, b"<html><body>Moved</body></html>\n"


def _page_response(
    host: Host,
    scheme: str,
    headers: list[tuple[bytes, bytes]],
    extra: Headers,
    *,
    status: int,
    title: str | None = None,
    body: str | None = None,
    body_bytes: int | None = None,
) -> Response:
    headers = [
        *headers,
        (b"cache-control", b"no-cache, no-store, must-revalidate"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-lab-origin", host.name.encode()),
    ]
    if scheme == "https":
        headers.append((b"strict-transport-security", b"max-age=631138519"))
    content: Body
    if body is not None:
        content = body.encode()
    elif body_bytes is not None or title is not None:
        size = host.body_bytes if body_bytes is None else body_bytes
        content = generated_body(host.name, host.title if title is None else title, size)
    elif host.body is not None:
        content = host.body.encode()
    else:
        content = generated_body(host.name, host.title, host.body_bytes)
    return status, _merge(headers, extra), content


def _merge(headers: list[tuple[bytes, bytes]], extra: Headers) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``extra`` added; an extra header replaces one of the same name."""
    for name, value in extra:
        key = name.lower().encode("latin-1")
        headers = [(k, v) for k, v in headers if k.lower() != key]
        headers.append((name.encode("latin-1"), value.encode()))
    return headers


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


def site_responder(
    host: Host, scheme: str, blockpages: dict[str, bytes], *, probe: bool = False
) -> Responder:
    return lambda target: respond(host, scheme, target, blockpages, probe=probe)


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
            if status in _NO_BODY_STATUSES:
                body = b""
            else:
                headers.append((b"content-length", str(body_length(body)).encode()))
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
            if request.method != b"HEAD":
                await _send_body(conn, writer, body)
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


async def _send_body(conn: h11.Connection, writer: asyncio.StreamWriter, body: Body) -> None:
    if isinstance(body, bytes):
        if body:
            writer.write(conn.send(h11.Data(data=body)) or b"")
        return
    for chunk in body.chunks():  # streamed: at most one chunk (and the socket's buffer) held
        writer.write(conn.send(h11.Data(data=chunk)) or b"")
        await writer.drain()


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
