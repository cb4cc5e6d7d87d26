"""The segment log's on-disk format: file names, headers, records, and reading them back.

A log is one directory of *segment files*::

    segment-000000000000.log  segment-000000000001.log  ...

The number in the name is the segment's sequence number (0, 1, 2, ...),
zero-padded to twelve digits so that names sort in log order. Only the last
segment is ever written; the others are *sealed*. Files with other names are
ignored. A new segment is started when the next record would make the current
one larger than ``segment_bytes`` (default 64 MiB); a segment always holds at
least one record, so a record larger than ``segment_bytes`` gets a segment of
its own.

Every segment starts with a 32-byte header; all integers are little-endian::

    offset  size  field
    0       8     magic  b"\\xffBPLOG\\r\\n"
    8       4     format version (1)
    12      4     segment number (must match the file name)
    16      8     ordinal of the segment's first record (= records in earlier segments)
    24      4     reserved (0)
    28      4     zlib.crc32 of bytes 0..27

followed by records, each a 24-byte header and the payload::

    0       4     magic  b"\\xffBPR"
    4       4     payload length (at most MAX_RECORD_BYTES, 16 MiB)
    8       8     the record's ordinal: its 0-based index in the whole log
    16      4     zlib.crc32 of the payload
    20      4     zlib.crc32 of bytes 0..19 (the header checksum)
    24      n     payload

Why these fields: ``0xff`` never occurs in UTF-8, so a magic cannot appear by
chance inside JSON payloads (the recovery scan looks for it). The header
checksum is verified before the length is believed, so a garbled length never
makes a reader allocate gigabytes. The ordinal in every record (and the first
ordinal in every segment header) makes misplaced bytes, a record copied from
elsewhere or a missing segment visible instead of silently renumbering what
follows. A ``Position`` names a record: ordinal, segment number, byte offset of
the record header in the segment file, payload length.

``RecordScanner`` reads a segment's records back in large chunks and stops at
the first one that is not whole and valid; ``valid_record_after`` tells whether a
whole valid record follows some damage (see the recovery rules in ``log``).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""Largest payload accepted by ``append`` and believed by readers."""

SEGMENT_MAGIC = b"\xffBPLOG\r\n"
SEGMENT_VERSION = 1
_SEGMENT_HEADER = struct.Struct("<8sIIQII")
SEGMENT_HEADER_SIZE = _SEGMENT_HEADER.size  # 32

RECORD_MAGIC = b"\xffBPR"
_RECORD_PREFIX = struct.Struct("<4sIQI")  # everything the header checksum covers
_RECORD_HEADER = struct.Struct("<4sIQII")
RECORD_HEADER_SIZE = _RECORD_HEADER.size  # 24
_CRC = struct.Struct("<I")

SEGMENT_FILE_NAME = re.compile(r"segment-(\d{12})\.log")
_READ_CHUNK = 4 * 1024 * 1024


def segment_name(number: int) -> str:
    """The file name of segment ``number``: ``segment-000000000042.log``."""
    return f"segment-{number:012d}.log"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record is: enough to read it back with one ``pread``.

    ``offset`` is the byte offset of the record *header* in segment file number
    ``segment``; ``length`` is the payload length (the record occupies
    ``RECORD_HEADER_SIZE + length`` bytes).
    """

    ordinal: int
    segment: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        """Offset just past the record in its segment."""
        return self.offset + RECORD_HEADER_SIZE + self.length


# ---------------------------------------------------------------- headers


def pack_segment_header(number: int, first_ordinal: int) -> bytes:
    """The 32-byte header of segment ``number``, whose first record is ``first_ordinal``."""
    head = _SEGMENT_HEADER.pack(SEGMENT_MAGIC, SEGMENT_VERSION, number, first_ordinal, 0, 0)
    return head[:-4] + _CRC.pack(zlib.crc32(head[:-4]))


def pack_record_header(ordinal: int, payload: bytes) -> bytes:
    """The 24-byte header that goes before ``payload``, record number ``ordinal``."""
    prefix = _RECORD_PREFIX.pack(RECORD_MAGIC, len(payload), ordinal, zlib.crc32(payload))
    return prefix + _CRC.pack(zlib.crc32(prefix))


# ---------------------------------------------------------------- reading


def pread_exactly(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset``, or fewer only at the end of the file."""
    data = os.pread(fd, size, offset)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = os.pread(fd, size - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def check_record_header(header: bytes | memoryview) -> tuple[int, int, int] | str:
    """(length, ordinal, payload crc) of a record header, or what is wrong with it."""
    magic, length, ordinal, payload_crc, header_crc = _RECORD_HEADER.unpack_from(header)
    if magic != RECORD_MAGIC:
        return "no record magic"
    if zlib.crc32(header[: _RECORD_PREFIX.size]) != header_crc:
        return "bad record header checksum"
    if length > MAX_RECORD_BYTES:
        return f"record length {length} exceeds the maximum {MAX_RECORD_BYTES}"
    return length, ordinal, payload_crc


def check_segment_header(header: bytes, number: int, first_ordinal: int) -> str | None:
    """What is wrong with a segment header, or None."""
    magic, version, stored_number, stored_first, _reserved, crc = _SEGMENT_HEADER.unpack(header)
    if magic != SEGMENT_MAGIC:
        return "no segment magic"
    if zlib.crc32(header[:-4]) != crc:
        return "bad segment header checksum"
    if version != SEGMENT_VERSION:
        return f"unknown segment format version {version}"
    if stored_number != number:
        return f"the header says segment {stored_number}"
    if stored_first != first_ordinal:
        return (
            f"the segment starts at record {stored_first} but the segments before it "
            f"hold {first_ordinal} records (records are missing)"
        )
    return None


class RecordScanner:
    """Reads one segment's records from ``start`` to ``stop``, in large chunks.

    Iterating yields ``(Position, payload view)``; a view is valid until the
    caller drops it (chunks are never reused). The scan stops at ``stop`` or at
    the first record that is not whole and valid; then ``problem`` says why and
    ``end`` is the offset just past the last good record.
    """

    def __init__(self, path: Path, number: int, start: int, stop: int, ordinal: int) -> None:
        self.path = path
        self.number = number
        self.stop = stop
        self.end = start
        self.ordinal = ordinal
        self.records = 0
        self.problem: str | None = None

    def __iter__(self) -> Iterator[tuple[Position, memoryview]]:
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            yield from self._scan(fd)
        finally:
            os.close(fd)

    def _fill(self, fd: int, view: memoryview, pos: int, base: int, need: int) -> memoryview:
        """A new buffer: the unread rest of ``view`` plus at least ``need`` bytes if any."""
        rest = len(view) - pos
        file_pos = base + len(view)
        want = min(max(_READ_CHUNK, need - rest), self.stop - file_pos)
        buf = bytearray(rest + want)
        buf[:rest] = view[pos:]
        got = rest
        while got < len(buf):
            n = os.preadv(fd, [memoryview(buf)[got:]], file_pos + got - rest)
            if n == 0:
                break
            got += n
        return memoryview(buf)[:got]

    def _scan(self, fd: int) -> Iterator[tuple[Position, memoryview]]:
        view = memoryview(b"")
        base = self.end  # file offset of view[0]
        pos = 0
        while True:
            offset = base + pos
            if offset >= self.stop:
                return
            if len(view) - pos < RECORD_HEADER_SIZE:
                view = self._fill(fd, view, pos, base, RECORD_HEADER_SIZE)
                base, pos = offset, 0
                if len(view) < RECORD_HEADER_SIZE:
                    self.problem = "incomplete record header"
                    return
            checked = check_record_header(view[pos : pos + RECORD_HEADER_SIZE])
            if isinstance(checked, str):
                self.problem = checked
                return
            length, ordinal, payload_crc = checked
            if ordinal != self.ordinal:
                self.problem = f"record {ordinal} where record {self.ordinal} belongs"
                return
            total = RECORD_HEADER_SIZE + length
            if len(view) - pos < total:
                view = self._fill(fd, view, pos, base, total)
                base, pos = offset, 0
                if len(view) < total:
                    self.problem = "incomplete record payload"
                    return
            payload = view[pos + RECORD_HEADER_SIZE : pos + total]
            if zlib.crc32(payload) != payload_crc:
                self.problem = "bad payload checksum"
                return
            yield Position(ordinal, self.number, offset, length), payload
            pos += total
            self.end = offset + total
            self.ordinal += 1
            self.records += 1


def valid_record_after(path: Path, offset: int, size: int, ordinal: int) -> int | None:
    """Offset of a whole valid record with ordinal >= ``ordinal`` after ``offset``, if any.

    Used to tell a torn tail (nothing valid after the damage) from damage in
    the middle of the log. Looks for the record magic and checks every
    candidate completely, so bytes that merely look like a header do not count.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        start = offset + 1
        while start < size:
            chunk = pread_exactly(fd, min(_READ_CHUNK, size - start), start)
            if not chunk:
                return None
            hit = chunk.find(RECORD_MAGIC)
            while hit >= 0:
                candidate = start + hit
                header = pread_exactly(fd, RECORD_HEADER_SIZE, candidate)
                if len(header) == RECORD_HEADER_SIZE:
                    checked = check_record_header(header)
                    if not isinstance(checked, str):
                        length, found, payload_crc = checked
                        end = candidate + RECORD_HEADER_SIZE + length
                        if found >= ordinal and end <= size:
                            payload = pread_exactly(fd, length, candidate + RECORD_HEADER_SIZE)
                            if zlib.crc32(payload) == payload_crc:
                                return candidate
                hit = chunk.find(RECORD_MAGIC, hit + 1)
            if start + len(chunk) >= size:
                return None
            start += max(1, len(chunk) - (len(RECORD_MAGIC) - 1))  # a magic may straddle
        return None
    finally:
        os.close(fd)
