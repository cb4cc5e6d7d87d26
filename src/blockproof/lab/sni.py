"""A pure parser for the TLS ClientHello, as a censor's DPI box reads it.

The censor only needs one thing from a TLS connection: the server name the
client asks for (SNI). It reads the bytes the client sends, which may arrive in
several TCP segments and, rarely, in several TLS records, and calls
``parse_client_hello`` on everything received so far:

- ``None``: not enough bytes yet to know the SNI, read more;
- a ``ClientHello``: the SNI (``None`` when the client sent none) and whether
  the whole handshake message was available. The SNI is reported as soon as
  its extension is complete, even if the rest of the hello is still missing,
  as a first-packet DPI box would;
- ``NotClientHello``: these bytes cannot start a TLS ClientHello.

No I/O, no state: the caller owns the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientHello", "NotClientHello", "parse_client_hello"]

_RECORD_HANDSHAKE = 22
_HANDSHAKE_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_NAME_TYPE_HOST = 0
# RFC 8446 5.1: a record's payload is at most 2^14 bytes (plus expansion for
# protected records, which a ClientHello never is).
_MAX_RECORD = (1 << 14) + 2048
# A ClientHello larger than this is not something a browser or a probe sends.
_MAX_HELLO = 1 << 17


class NotClientHello(ValueError):
    """The bytes are not the beginning of a TLS ClientHello."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    sni: str | None
    complete: bool


class _Incomplete(Exception):
    """Internal: the parser ran out of bytes."""


class _Cursor:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise _Incomplete
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")


def _handshake_bytes(data: bytes) -> bytes:
    """Concatenate the payloads of the leading handshake records (the last may be cut)."""
    out = bytearray()
    pos = 0
    while pos < len(data):
        header = data[pos : pos + 5]
        if header[:1] and header[0] != _RECORD_HANDSHAKE:
            if pos == 0:
                raise NotClientHello(f"record type {header[0]} is not handshake")
            break  # the hello ended in the previous records; this is something else
        if len(header) >= 2 and header[1] != 3:
            raise NotClientHello(f"record version major {header[1]} is not 3")
        if len(header) < 5:
            return bytes(out)
        length = int.from_bytes(header[3:5], "big")
        if length == 0 or length > _MAX_RECORD:
            raise NotClientHello(f"record length {length} is out of range")
        payload = data[pos + 5 : pos + 5 + length]
        out += payload
        if len(payload) < length:
            return bytes(out)
        pos += 5 + length
    return bytes(out)


def _server_name(ext: bytes) -> str:
    cur = _Cursor(ext, 0, len(ext))
    try:
        list_len = cur.uint(2)
        if list_len != len(ext) - 2:
            raise NotClientHello("server_name list length does not match the extension")
        while cur.pos < cur.end:
            name_type = cur.uint(1)
            name = cur.take(cur.uint(2))
            if name_type == _NAME_TYPE_HOST:
                if not name:
                    raise NotClientHello("empty host_name in server_name")
                try:
                    text = name.decode("ascii")
                except UnicodeDecodeError:
                    raise NotClientHello("host_name is not ASCII") from None
                return text.rstrip(".").lower()
    except _Incomplete:
        raise NotClientHello("truncated server_name extension") from None
    raise NotClientHello("server_name extension has no host_name")


def parse_client_hello(data: bytes) -> ClientHello | None:
    """Parse the beginning of a TLS connection; see the module docstring."""
    if not data:
        return None
    handshake = _handshake_bytes(data)
    if not handshake:
        return None
    if handshake[0] != _HANDSHAKE_CLIENT_HELLO:
        raise NotClientHello(f"handshake type {handshake[0]} is not ClientHello")
    if len(handshake) < 4:
        return None
    body_len = int.from_bytes(handshake[1:4], "big")
    if body_len < 38 or body_len > _MAX_HELLO:
        raise NotClientHello(f"ClientHello length {body_len} is out of range")
    end = 4 + body_len
    available = min(end, len(handshake))
    complete = len(handshake) >= end
    cur = _Cursor(handshake, 4, available)
    try:
        version = cur.uint(2)
        if version >> 8 != 3:
            raise NotClientHello(f"client_version {version:#06x} is not TLS")
        cur.take(32)  # random
        session_id_len = cur.uint(1)
        if session_id_len > 32:
            raise NotClientHello(f"session_id length {session_id_len} is over 32")
        cur.take(session_id_len)
        suites_len = cur.uint(2)
        if suites_len == 0 or suites_len % 2:
            raise NotClientHello(f"cipher_suites length {suites_len} is invalid")
        cur.take(suites_len)
        compression_len = cur.uint(1)
        if compression_len == 0:
            raise NotClientHello("no compression methods")
        cur.take(compression_len)
        if cur.pos == end:
            return ClientHello(sni=None, complete=True)  # no extensions at all
        ext_total = cur.uint(2)
        if cur.pos + ext_total != end:
            raise NotClientHello("extensions length does not match the ClientHello length")
        while cur.pos < end:
            ext_type = cur.uint(2)
            ext_len = cur.uint(2)
            if cur.pos + ext_len > end:
                raise NotClientHello("extension runs past the end of the ClientHello")
            ext = cur.take(ext_len)
            if ext_type == _EXT_SERVER_NAME:
                return ClientHello(sni=_server_name(ext), complete=complete)
    except _Incomplete:
        if complete:
            raise NotClientHello("ClientHello fields run past its length") from None
        return None
    return ClientHello(sni=None, complete=True)
