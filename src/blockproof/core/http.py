"""Sans-IO HTTP/1.1 client: one GET driven through h11 over bytes.

``HTTPExchange`` is fed bytes by whichever shell owns the stream (plain TCP or
TLS) and says when it is done. It never touches a socket or a clock, so the
unit tests drive it with byte strings (tests/unit/test_http_driver.py).

The body is kept up to ``max_body`` bytes (OONI: 1 << 19); past that the
exchange ends with ``body_is_truncated`` and the rest is not read. Header
section and line sizes are bounded by h11 (``max_incomplete_event_size``), the
number of 1xx responses before the final one by ``MAX_INFORMATIONAL`` (as Go's
client, which OONI's probe uses). A peer that breaks HTTP/1.1 gets one short,
fixed failure text (``HTTPProtocolError``), never its own bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import h11

from blockproof.core.idn import url_to_ascii
from blockproof.model.observations import HTTPRequest, HTTPResponse

MAX_BODY = 1 << 19  # 524 288 bytes, as OONI
MAX_HEADER_BYTES = 64 * 1024
MAX_INFORMATIONAL = 5  # Go's net/http gives up after five 1xx responses
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10

# Browser-like headers, as OONI's probe sends (internal/model/http.go).
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ACCEPT_LANGUAGE = "en-US,en;q=0.9"

# A page's title, as OONI's probe and test helper extract it (measurexlite's
# ``(?i)<title>([^<]{1,512})</title>`` on the body as a Go string, which counts runes):
# 512 characters are at most 2048 UTF-8 bytes, so candidates are found on the bytes
# and only a candidate is decoded and counted in characters.
MAX_TITLE_CHARS = 512
_TITLE = re.compile(rb"<title>([^<]{1,2048})</title>", re.IGNORECASE)
_LONE_SURROGATES = re.compile("[\udc80-\udcff]")
# h11 quotes the offending bytes after the reason ("illegal chunk header: bytearray(...)")
_PEER_BYTES = re.compile(r":? (?:b'|b\"|bytearray\(|\()")


class HTTPProtocolError(Exception):
    """The peer broke HTTP/1.1 (bad status line, bad chunking, oversize headers...).

    The text is ``http protocol error: <reason>``, the reason without the peer's bytes
    (at most 80 characters): it becomes the failure string
    ``unknown_failure: http protocol error: <reason>``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"http protocol error: {reason}")
        self.reason = reason


def protocol_error_reason(exc: h11.RemoteProtocolError) -> str:
    """A short fixed text for one of h11's errors, without the bytes it quotes."""
    if exc.error_status_hint == 431:  # h11's "Receive buffer too long"
        return f"response header section over {MAX_HEADER_BYTES} bytes"
    reason = _PEER_BYTES.split(str(exc), maxsplit=1)[0].strip()
    return reason[:80] or "malformed response"


def browser_request(url: str) -> HTTPRequest:
    """A GET for ``url`` with the headers a browser would send.

    The request keeps ``url`` as given; the ``Host`` header carries the host's IDNA
    (ASCII) form, as it goes on the wire (an IDN host is not ASCII, and HTTP/1.1
    headers must be).
    """
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    if not host.isascii():
        host = urlsplit(url_to_ascii(url)).netloc.rsplit("@", 1)[-1]
    return HTTPRequest(
        method="GET",
        url=url,
        headers_list=(
            ("Host", host),
            ("User-Agent", USER_AGENT),
            ("Accept", ACCEPT),
            ("Accept-Language", ACCEPT_LANGUAGE),
        ),
    )


def request_target(url: str) -> str:
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return target


@dataclass(slots=True)
class _Partial:
    code: int
    headers: tuple[tuple[str, str], ...]


class HTTPExchange:
    """One request/response over a byte stream."""

    def __init__(
        self, request: HTTPRequest, *, max_body: int = MAX_BODY, close: bool = True
    ) -> None:
        self.request = request
        self.max_body = max_body
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        headers = list(request.headers_list)
        if close:
            headers.append(("Connection", "close"))
        body = request.body.encode()
        if body or request.method == "POST":
            headers.append(("Content-Length", str(len(body))))
        out = (
            self._conn.send(
                h11.Request(
                    method=request.method, target=request_target(request.url), headers=headers
                )
            )
            or b""
        )
        if body:
            out += self._conn.send(h11.Data(data=body)) or b""
        self._outgoing = out + (self._conn.send(h11.EndOfMessage()) or b"")
        self._partial: _Partial | None = None
        self._informational = 0
        self._body = bytearray()
        self._truncated = False
        self.done = False

    def bytes_to_send(self) -> bytes:
        """The request bytes (once)."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed (EOF).

        Raises HTTPProtocolError on a protocol violation and EOFError on EOF
        before the response is complete.
        """
        if self.done:
            return
        self._conn.receive_data(data)
        while not self.done:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                if data == b"":
                    raise EOFError(str(exc)) from exc
                raise HTTPProtocolError(protocol_error_reason(exc)) from exc
            if event is h11.NEED_DATA:
                if data == b"":
                    raise EOFError("connection closed before the response was complete")
                return
            if isinstance(event, h11.InformationalResponse):
                self._informational += 1
                if self._informational > MAX_INFORMATIONAL:
                    raise HTTPProtocolError("too many 1xx informational responses")
                continue
            if isinstance(event, h11.Response):
                self._partial = _Partial(
                    code=event.status_code,
                    headers=tuple(
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers
                    ),
                )
            elif isinstance(event, h11.Data):
                room = self.max_body - len(self._body)
                if len(event.data) > room:
                    self._body += event.data[:room]
                    self._truncated = True
                    self.done = True
                else:
                    self._body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self.done = True

    def response(self) -> HTTPResponse | None:
        """The response so far (None until the status line and headers arrived)."""
        if self._partial is None:
            return None
        return HTTPResponse(
            code=self._partial.code,
            headers_list=self._partial.headers,
            body=bytes(self._body),
            body_is_truncated=self._truncated,
        )


class InvalidRedirectLocation(ValueError):
    """A redirect whose ``Location`` names no host: ``http://`` (a scheme and nothing
    else, ooni/probe#2628) or a string that does not parse as a URL. OONI's probe
    stops there with ``http_invalid_redirect_location_host``; resolving such a
    Location against the request URL (as ``urljoin`` does) would instead redirect to
    the same page until the redirect limit.
    """


def redirect_location(url: str, response: HTTPResponse) -> str | None:
    """The absolute URL a redirect points to, or None if ``response`` is no redirect.

    Raises InvalidRedirectLocation for a Location that names a scheme but no host.
    """
    if response.code not in REDIRECT_CODES:
        return None
    location = response.header("Location")
    if location is None:
        return None
    location = location.strip()
    try:
        parts = urlsplit(location)
        if parts.scheme and not parts.netloc:
            raise InvalidRedirectLocation(location)
        return urljoin(url, location)
    except InvalidRedirectLocation:
        raise
    except ValueError as exc:  # e.g. an unclosed "[" in the host
        raise InvalidRedirectLocation(location) from exc


def extract_title(body: bytes) -> str:
    """The page title as OONI extracts it: ``<title>`` with 1 to 512 characters, no ``<``.

    The one definition for the probe's classifier, the control server, the pipeline and
    the simulator (two copies that counted differently once made every long non-Latin
    title a ``title_match: false``). The search runs on the bytes (``<`` never occurs
    inside a multi-byte UTF-8 sequence) and only a candidate is decoded, so a large body
    is never decoded whole. A candidate over 512 characters is skipped and the search
    goes on, as the regular expression on the decoded text would. An invalid UTF-8 byte
    counts as one character, as in Go, and comes out as U+FFFD, as Go's JSON writes it.
    """
    for match in _TITLE.finditer(body):
        title = match.group(1).decode("utf-8", "surrogateescape")
        if len(title) <= MAX_TITLE_CHARS:
            return _LONE_SURROGATES.sub("\ufffd", title)
    return ""
