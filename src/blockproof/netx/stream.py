"""Byte streams the shells speak over: plain TCP and TLS on top of it.

``TCPStream`` wraps asyncio streams and records df-008 network events (read,
write, bytes_received_cumulative). ``TLSStream`` runs the TLS state machine of
``ssl.SSLObject`` over memory BIOs and pumps its bytes through a ``TCPStream``:
the handshake is one more byte exchange, so we see (and time, and record)
every TLS record that crosses the wire, and we control how the ClientHello is
written (``first_flight_splits`` cuts it into several TCP segments).

Errors are left to propagate; the shells classify them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Protocol

from blockproof.netx.failures import classify
from blockproof.netx.network import READ_CHUNK
from blockproof.netx.trace import MAX_IO_EVENTS_PER_CONN, SAMPLE_INTERVAL, Recorder


class ByteStream(Protocol):
    async def read(self) -> bytes:
        """Some bytes, or b"" at EOF."""
        ...

    async def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class TCPStream:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        address: str,
        recorder: Recorder,
        tags: tuple[str, ...],
        transaction_id: int,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.address = address
        self._rec = recorder
        self._tags = tags
        self._tx = transaction_id
        self._io_events = 0
        self.bytes_received = 0
        self._last_sample = recorder.now()

    def _record(self, operation: str, t0: float, num_bytes: int, failure: str | None) -> None:
        if self._io_events < MAX_IO_EVENTS_PER_CONN:
            self._io_events += 1
            self._rec.event(
                operation,
                t0=t0,
                address=self.address,
                failure=failure,
                num_bytes=num_bytes,
                tags=self._tags,
                transaction_id=self._tx,
            )

    async def read(self) -> bytes:
        t0 = self._rec.now()
        try:
            data = await self._reader.read(READ_CHUNK)
        except OSError as exc:
            self._record("read", t0, 0, classify(exc))
            raise
        self._record("read", t0, len(data), None if data else "eof_error")
        self.bytes_received += len(data)
        now = self._rec.now()
        if data and now - self._last_sample >= SAMPLE_INTERVAL:
            self.sample()
        return data

    def sample(self) -> None:
        """Record a bytes_received_cumulative sample (the throttling evidence)."""
        self._last_sample = self._rec.now()
        self._rec.event(
            "bytes_received_cumulative",
            t0=self._last_sample,
            address=self.address,
            num_bytes=self.bytes_received,
            tags=self._tags,
            transaction_id=self._tx,
        )

    async def write(self, data: bytes) -> None:
        t0 = self._rec.now()
        try:
            if self._writer.transport.is_closing():
                # the peer (or a censor's RST) closed it while we were still writing
                raise ConnectionResetError("the connection was closed by the peer")
            self._writer.write(data)
            await self._writer.drain()
        except OSError as exc:
            self._record("write", t0, 0, classify(exc))
            raise
        self._record("write", t0, len(data), None)

    async def write_segments(self, segments: list[bytes]) -> None:
        """Write each piece as its own TCP segment (Nagle off, drained between pieces)."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in segments:
            await self.write(piece)
            await asyncio.sleep(0.005)

    def close(self) -> None:
        if self.bytes_received:
            self.sample()
        self._writer.close()


class TLSStream:
    """TLS client over a TCPStream, driven through memory BIOs."""

    def __init__(
        self,
        tcp: TCPStream,
        context: ssl.SSLContext,
        server_name: str,
        *,
        first_flight_splits: int = 1,
    ) -> None:
        self.tcp = tcp
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self._in, self._out, server_hostname=server_name)
        self._splits = first_flight_splits
        self._first_flight = True

    async def _flush(self) -> None:
        data = self._out.read()
        if not data:
            return
        if self._first_flight and self._splits > 1:
            size = max(1, len(data) // self._splits)
            pieces = [data[i : i + size] for i in range(0, len(data), size)]
            await self.tcp.write_segments(pieces)
        else:
            await self.tcp.write(data)
        self._first_flight = False

    async def _fill(self) -> None:
        data = await self.tcp.read()
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    async def handshake(self) -> None:
        while True:
            try:
                self.sslobj.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
                continue
            await self._flush()
            return

    async def read(self) -> bytes:
        while True:
            try:
                return self.sslobj.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLZeroReturnError:
                return b""

    async def write(self, data: bytes) -> None:
        self.sslobj.write(data)
        await self._flush()

    def close(self) -> None:
        self.tcp.close()

    def peer_chain(self) -> tuple[bytes, ...]:
        """The peer's certificate chain as DER, leaf first (what the server sent)."""
        return peer_certificates(self.sslobj)


def peer_certificates(sslobj: ssl.SSLObject) -> tuple[bytes, ...]:
    getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is None:
        inner = getattr(sslobj, "_sslobj", None)
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
        except (ValueError, ssl.SSLError):
            chain = []
        out: list[bytes] = []
        for cert in chain:
            if isinstance(cert, bytes):
                out.append(cert)
            else:
                out.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
        if out:
            return tuple(out)
    try:
        leaf = sslobj.getpeercert(binary_form=True)
    except ValueError:
        return ()
    return (leaf,) if leaf else ()
