"""``SegmentLog``: appending records durably, and recovering the log when it opens.

The file format is in ``framing``; this module writes it and makes it durable.

Writing
-------
``SegmentLog.append(payloads)`` frames the whole batch, writes it with one
``pwrite`` per segment it touches (normally one), then calls ``fdatasync`` once
and only then returns positions and counts the records as part of the log.
When a batch crosses a segment boundary, the filled segment is fdatasynced
first, then the next one is created (``O_EXCL``), its header written and
fdatasynced, and the *directory* fsynced, all before any record goes into it.

Durability argument
-------------------
*SIGKILL* (the process dies, the machine does not): what ``write`` put into the
kernel's page cache survives the process and reaches the disk later. So every
write that completed is in the file; only the batch being written when the
process died can be cut short, and only at its end (a write interrupted by a
fatal signal leaves a prefix). Acknowledged records were completely written
before they were acknowledged: after SIGKILL all of them are found again, and
recovery removes the torn tail, which nobody was told about.

*Power loss or kernel crash*: only what was flushed is guaranteed. A batch is
acknowledged after its ``fdatasync`` returned, which makes its data and the new
file size durable (on a disk that honours cache flushes). A new file's *name*
is a separate piece of metadata, in the directory: fdatasync of the file does
not make it durable, and without fsyncing the directory a power loss could make
a whole fresh segment, with acknowledged records in it, disappear. Hence the
directory fsync whenever a segment is created. Likewise the segment header is
flushed before any record is written after it, and a segment gets a successor
only after its own last batch was flushed: so an invalid segment header, or a
damaged record in a sealed segment, is always real damage, never a crash.

One case stays ambiguous. After a power loss (not after SIGKILL) the unflushed
part of the last batch may come back with a hole followed by intact pages:
filesystems do not promise to write a file's pages in order. From the bytes
alone that cannot be told apart from damage to acknowledged data, so the log
refuses to open (below) and names the offset. An operator who has checked that
the last published tree head has no more leaves than there are whole records
before that offset can truncate the file there.

Recovery rules (``SegmentLog.open``)
------------------------------------
1. Segment numbers must run 0, 1, ..., n-1 without a gap; each header must be
   valid, carry its file's number and the right first ordinal.
2. Records are checked in order: magic, header checksum, length limit, ordinal
   (one more than the previous), complete payload, payload checksum.
3. A failure in a sealed segment raises ``CorruptLogError``.
4. A failure in the last segment is a *torn tail* if no valid record (valid
   headers, checksums, ordinal not below the expected one) follows it anywhere
   in the file: the file is truncated to the end of the last whole record,
   fsynced, and the cut reported in ``Recovery``. If a valid record does
   follow, the damage is in the middle of the log: ``CorruptLogError``.
   An incomplete header of the last segment (a crash while creating it, before
   any record went in) is rewritten.

A ``CorruptLogError`` names the file and byte offset, and the log does not open:
it never drops data that might have been acknowledged. The price of rule 4 is
that damage confined to the very last record cannot be told from a torn write,
and is cut; ``Recovery`` says how many bytes, and the collector can compare the
record count with its last published tree head.

Write errors
------------
If a write or an fsync fails (disk full, I/O error), the batch is undone before
``LogWriteError`` is raised: segments created by the batch are removed, and the
segment is truncated back to where the batch started, then fsynced. Leaving the
half-written batch in place would be wrong twice over: the next batch would be
written after it, producing a damaged record followed by valid ones, which
``open`` rightly refuses; and after a failed fsync Linux may have dropped the
dirty pages while marking them clean, so retrying the fsync proves nothing.
After the undo the files hold exactly the acknowledged records, the failed
batch's ordinals are reused by the next one, and the log stays usable (a full
disk answers 503 and recovers by itself when space is freed). If the undo fails
too, the log refuses further appends until it is reopened, and reopening cuts
whatever torn tail remained.

Concurrency
-----------
One writer per directory (the collector's data-directory lock sees to that).
``append`` is serialised by a lock and meant to run in one worker thread;
``read``, ``records`` and ``len`` may run concurrently in other threads and see
only records whose batch is complete.
"""

from __future__ import annotations

import collections
import contextlib
import errno as errno_codes
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Self

from blockproof.collector.segments.framing import (
    MAX_RECORD_BYTES,
    RECORD_HEADER_SIZE,
    SEGMENT_FILE_NAME,
    SEGMENT_HEADER_SIZE,
    Position,
    RecordScanner,
    check_record_header,
    check_segment_header,
    pack_record_header,
    pack_segment_header,
    pread_exactly,
    segment_name,
    valid_record_after,
)
from blockproof.errors import EXIT_FAILED, BlockproofError

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024

_READER_FDS = 16  # open read descriptors kept for ``read``


# ---------------------------------------------------------------------- errors


class CorruptLogError(BlockproofError):
    """The log is damaged somewhere a crash cannot explain; it refuses to open.

    ``path`` is the damaged (or missing) segment file, ``offset`` the byte
    offset of the first bad record in it, ``reason`` what is wrong there.
    """

    exit_code = EXIT_FAILED

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"{path}: damaged segment log at byte {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class LogWriteError(BlockproofError):
    """A batch could not be made durable (disk full, I/O error); none of it is stored.

    ``errno`` is the operating system's error number (``errno.ENOSPC``, ...) or
    None. The log has been restored to its state before the batch and accepts
    further appends, unless the message says it must be reopened.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class LogClosedError(BlockproofError):
    """The log or the committer is closed (or stopped after a failed ``before_ack``)."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True, slots=True)
class Recovery:
    """What ``SegmentLog.open`` found and repaired.

    ``truncated_bytes`` bytes of torn tail were cut from ``truncated_segment``
    at offset ``truncated_at`` (the end of its last whole record); ``reason``
    says what was found there. A clean open has ``reason`` None.
    """

    segments: int
    records: int
    truncated_bytes: int = 0
    truncated_segment: Path | None = None
    truncated_at: int | None = None
    reason: str | None = None

    @property
    def clean(self) -> bool:
        """True when nothing had to be repaired."""
        return self.reason is None


@dataclass(slots=True)
class _Segment:
    """In-memory state of one segment; ``size`` and ``records`` count only whole batches."""

    number: int
    path: Path
    first_ordinal: int
    records: int
    size: int


# --------------------------------------------------------------- low-level I/O


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``pwrite`` may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:  # pragma: no cover - the kernel reports errors as errors
            raise OSError(errno_codes.EIO, "pwrite wrote nothing")
        view = view[written:]
        offset += written


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the log


@dataclass(slots=True)
class _Chunk:
    """The part of a batch that goes into one segment."""

    number: int
    offset: int
    first_ordinal: int
    new: bool
    parts: list[bytes] = field(default_factory=list)
    records: int = 0
    end: int = 0


class SegmentLog:
    """An append-only, crash-safe log of byte payloads, numbered 0, 1, 2, ...

    Open with ``SegmentLog.open(directory)`` (the format is in ``framing``, the
    recovery rules in the module docstring). ``append`` returns only after its batch
    is fdatasynced; ``read``, ``records`` and ``len`` see only such records.
    """

    def __init__(
        self,
        directory: Path,
        dir_fd: int,
        segments: list[_Segment],
        write_fd: int,
        segment_bytes: int,
    ) -> None:
        self._directory = directory
        self._dir_fd = dir_fd
        self._segments = segments
        self._write_fd = write_fd
        self._segment_bytes = segment_bytes
        self._count = sum(s.records for s in segments)
        self._lock = threading.Lock()  # guards the in-memory state and the reader fds
        self._write_lock = threading.Lock()  # one append at a time
        self._readers: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._broken: OSError | None = None
        self._closed = False

    # ------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        create: bool = True,
    ) -> tuple[SegmentLog, Recovery]:
        """Open (and with ``create``, make) the log in ``directory``; recover a torn tail.

        Raises ``CorruptLogError`` for damage a crash cannot explain, and
        ``FileNotFoundError`` when there is no log and ``create`` is false.
        ``segment_bytes`` governs segments created from now on.
        """
        if segment_bytes < SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE:
            minimum = SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE
            raise ValueError(f"segment_bytes must be at least {minimum}")
        directory = Path(directory)
        if not directory.is_dir():
            if not create:
                raise FileNotFoundError(errno_codes.ENOENT, "no segment log", str(directory))
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_directory(directory.parent)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            segments, write_fd, recovery = _recover(directory, dir_fd, create)
        except BaseException:
            os.close(dir_fd)
            raise
        return cls(directory, dir_fd, segments, write_fd, segment_bytes), recovery

    # ------------------------------------------------------------- writing

    def append(self, payloads: Sequence[bytes]) -> list[Position]:
        """Append ``payloads`` as one batch; return their positions once they are durable.

        One write per segment touched, one ``fdatasync``. On failure the batch
        is undone and ``LogWriteError`` raised: none of it is in the log.
        Blocking: call it from a worker thread in async code.
        """
        for payload in payloads:
            if len(payload) > MAX_RECORD_BYTES:
                raise ValueError(f"a record may be at most {MAX_RECORD_BYTES} bytes")
        with self._write_lock:
            self._check_open()
            if self._broken is not None:
                raise LogWriteError(
                    f"{self._directory}: an earlier failed write could not be undone "
                    f"({self._broken}); reopen the log",
                    self._broken.errno,
                )
            if not payloads:
                return []
            tail = self._segments[-1]
            chunks, positions = self._plan(tail, payloads)
            created: list[tuple[Path, int]] = []
            try:
                self._write(chunks, created)
            except BaseException as exc:
                self._undo(tail, created)
                if isinstance(exc, OSError):
                    raise LogWriteError(
                        f"{self._directory}: cannot write the log ({exc.strerror or exc}); "
                        f"the batch of {len(payloads)} records was not stored",
                        exc.errno,
                    ) from exc
                raise
            self._commit(tail, chunks, created)
            return positions

    def _plan(
        self, tail: _Segment, payloads: Sequence[bytes]
    ) -> tuple[list[_Chunk], list[Position]]:
        """Frame every record and decide which segment each one goes to."""
        ordinal = self._count
        chunk = _Chunk(tail.number, tail.size, ordinal, new=False)
        in_segment = tail.records
        size = tail.size
        chunks = [chunk]
        positions: list[Position] = []
        for payload in payloads:
            total = RECORD_HEADER_SIZE + len(payload)
            if in_segment and size + total > self._segment_bytes:
                chunk.end = size
                size = SEGMENT_HEADER_SIZE
                in_segment = 0
                chunk = _Chunk(chunk.number + 1, size, ordinal, new=True)
                chunks.append(chunk)
            chunk.parts.append(pack_record_header(ordinal, payload))
            chunk.parts.append(payload)
            chunk.records += 1
            positions.append(Position(ordinal, chunk.number, size, len(payload)))
            size += total
            ordinal += 1
            in_segment += 1
        chunk.end = size
        return chunks, positions

    def _write(self, chunks: list[_Chunk], created: list[tuple[Path, int]]) -> None:
        fd = self._write_fd
        unsynced = False
        for chunk in chunks:
            if chunk.new:
                if unsynced:  # seal the filled segment before it gets a successor
                    os.fdatasync(fd)
                path = self._directory / segment_name(chunk.number)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                created.append((path, fd))
                _write_segment_header(fd, self._dir_fd, chunk.number, chunk.first_ordinal)
                unsynced = False
            if chunk.parts:
                _pwrite_all(fd, b"".join(chunk.parts), chunk.offset)
                unsynced = True
        if unsynced:
            os.fdatasync(fd)

    def _undo(self, tail: _Segment, created: list[tuple[Path, int]]) -> None:
        """Remove every trace of a failed batch (best effort; see the module docstring).

        New segments go first: were the tail truncated first and the process
        killed before the unlink, the new segment's first ordinal would no
        longer match, and the log would not open.
        """
        for _path, fd in created:
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            for path, _fd in reversed(created):
                os.unlink(path)
            if created:
                os.fsync(self._dir_fd)
            os.ftruncate(self._write_fd, tail.size)
            os.fsync(self._write_fd)
        except OSError as exc:
            self._broken = exc

    def _commit(
        self, tail: _Segment, chunks: list[_Chunk], created: list[tuple[Path, int]]
    ) -> None:
        retired: list[int] = []
        with self._lock:
            first = chunks[0]
            tail.records += first.records
            tail.size = first.end
            for chunk, (path, _fd) in zip(chunks[1:], created, strict=True):
                self._segments.append(
                    _Segment(chunk.number, path, chunk.first_ordinal, chunk.records, chunk.end)
                )
            self._count += sum(chunk.records for chunk in chunks)
            if created:
                retired = [self._write_fd, *(fd for _path, fd in created[:-1])]
                self._write_fd = created[-1][1]
        for fd in retired:
            with contextlib.suppress(OSError):  # the data is durable; nothing to report
                os.close(fd)

    # ------------------------------------------------------------- reading

    def __len__(self) -> int:
        """Number of durable records (the next ordinal)."""
        return self._count

    @property
    def directory(self) -> Path:
        """The directory holding the segment files."""
        return self._directory

    @property
    def segment_count(self) -> int:
        """Number of segment files (the last one is being written)."""
        return len(self._segments)

    def read(self, position: Position) -> bytes:
        """The payload at ``position``, checked against both checksums and the position.

        Raises ``ValueError`` for a position outside the log and
        ``CorruptLogError`` if the bytes there are not that record.
        """
        with self._lock:
            self._check_open()
            if not 0 <= position.segment < len(self._segments):
                raise ValueError(f"{position}: no such segment")
            segment = self._segments[position.segment]
            ordinals = range(segment.first_ordinal, segment.first_ordinal + segment.records)
            if (
                position.ordinal not in ordinals
                or position.offset < SEGMENT_HEADER_SIZE
                or position.end > segment.size
            ):
                raise ValueError(f"{position}: not a record of this log")
            data = pread_exactly(
                self._reader(segment), RECORD_HEADER_SIZE + position.length, position.offset
            )
        problem: str | None = None
        if len(data) < RECORD_HEADER_SIZE + position.length:
            problem = "the segment is shorter than it was"
        else:
            checked = check_record_header(data[:RECORD_HEADER_SIZE])
            if isinstance(checked, str):
                problem = checked
            elif checked[:2] != (position.length, position.ordinal):
                problem = f"found record {checked[1]} of {checked[0]} bytes instead"
            elif zlib.crc32(data[RECORD_HEADER_SIZE:]) != checked[2]:
                problem = "bad payload checksum"
        if problem is not None:
            raise CorruptLogError(segment.path, position.offset, problem)
        return data[RECORD_HEADER_SIZE:]

    def _reader(self, segment: _Segment) -> int:
        """A cached read-only descriptor for ``segment`` (call with ``_lock`` held)."""
        fd = self._readers.get(segment.number)
        if fd is not None:
            self._readers.move_to_end(segment.number)
            return fd
        fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
        self._readers[segment.number] = fd
        if len(self._readers) > _READER_FDS:
            _number, oldest = self._readers.popitem(last=False)
            os.close(oldest)
        return fd

    def records(self, start_ordinal: int = 0) -> Iterator[tuple[Position, bytes]]:
        """Every record from ``start_ordinal`` on, in order, streamed in large reads.

        Sees the records that were durable when it was called; every record is
        checked as in recovery (``CorruptLogError`` if one no longer is whole).
        """
        if start_ordinal < 0:
            raise ValueError("start_ordinal must not be negative")
        with self._lock:
            self._check_open()
            snapshot = [replace(s) for s in self._segments]
        return self._stream(snapshot, start_ordinal)

    @staticmethod
    def _stream(segments: list[_Segment], start: int) -> Iterator[tuple[Position, bytes]]:
        for segment in segments:
            if segment.first_ordinal + segment.records <= start:
                continue
            scanner = RecordScanner(
                segment.path,
                segment.number,
                SEGMENT_HEADER_SIZE,
                segment.size,
                segment.first_ordinal,
            )
            for position, payload in scanner:
                if position.ordinal >= start:
                    yield position, bytes(payload)
            if scanner.problem is not None or scanner.records != segment.records:
                raise CorruptLogError(
                    segment.path,
                    scanner.end,
                    scanner.problem or "the segment is shorter than it was",
                )

    # ------------------------------------------------------------- closing

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"{self._directory}: the segment log is closed")

    def close(self) -> None:
        """Close every file; waits for an append in progress. Idempotent."""
        with self._write_lock, self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in self._readers.values():
                os.close(fd)
            self._readers.clear()
            os.close(self._write_fd)
            os.close(self._dir_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SegmentLog({str(self._directory)!r}, records={self._count})"


def _recover(directory: Path, dir_fd: int, create: bool) -> tuple[list[_Segment], int, Recovery]:
    """Check every segment, cut a torn tail; the segments and a write descriptor for the last."""
    numbers = sorted(
        int(match.group(1))
        for name in os.listdir(directory)
        if (match := SEGMENT_FILE_NAME.fullmatch(name))
    )
    if not numbers:
        if not create:
            raise FileNotFoundError(errno_codes.ENOENT, "no segment log", str(directory))
        path = directory / segment_name(0)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            _write_segment_header(fd, dir_fd, 0, 0)
        except BaseException:
            os.close(fd)
            raise
        return [_Segment(0, path, 0, 0, SEGMENT_HEADER_SIZE)], fd, Recovery(segments=1, records=0)
    for expected, number in enumerate(numbers):
        if number != expected:
            raise CorruptLogError(
                directory / segment_name(expected),
                0,
                f"segment {expected} is missing (segments up to {numbers[-1]} exist)",
            )
    segments: list[_Segment] = []
    ordinal = 0
    for number in numbers[:-1]:
        path = directory / segment_name(number)
        scanner = _scan_segment(path, number, ordinal)
        if scanner.problem is not None:
            raise CorruptLogError(path, scanner.end, f"{scanner.problem} in a sealed segment")
        segments.append(_Segment(number, path, ordinal, scanner.records, scanner.end))
        ordinal = scanner.ordinal
    last, fd, recovery = _recover_last(
        directory / segment_name(numbers[-1]), numbers[-1], dir_fd, ordinal
    )
    segments.append(last)
    return segments, fd, replace(recovery, segments=len(numbers))


def _write_segment_header(fd: int, dir_fd: int, number: int, first_ordinal: int) -> None:
    """Write and flush a segment header, then make the file's name durable too."""
    _pwrite_all(fd, pack_segment_header(number, first_ordinal), 0)
    os.fdatasync(fd)
    os.fsync(dir_fd)


def _scan_segment(path: Path, number: int, ordinal: int) -> RecordScanner:
    """Check a segment's header and read all its records; the finished scan."""
    with path.open("rb") as file:
        header = file.read(SEGMENT_HEADER_SIZE)
        size = os.fstat(file.fileno()).st_size
    if len(header) < SEGMENT_HEADER_SIZE:
        raise CorruptLogError(path, 0, "incomplete segment header")
    problem = check_segment_header(header, number, ordinal)
    if problem is not None:
        raise CorruptLogError(path, 0, problem)
    scanner = RecordScanner(path, number, SEGMENT_HEADER_SIZE, size, ordinal)
    for _record in scanner:
        pass
    return scanner


def _recover_last(
    path: Path, number: int, dir_fd: int, ordinal: int
) -> tuple[_Segment, int, Recovery]:
    """Recovery rule 4 for the last segment: cut a torn tail, refuse damage before valid data."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size < SEGMENT_HEADER_SIZE:
            # Killed while creating the segment: the header is flushed before any
            # record is written, so nothing else was ever in it.
            os.ftruncate(fd, 0)
            _write_segment_header(fd, dir_fd, number, ordinal)
            segment = _Segment(number, path, ordinal, 0, SEGMENT_HEADER_SIZE)
            return (
                segment,
                fd,
                Recovery(
                    segments=0,
                    records=ordinal,
                    truncated_bytes=size,
                    truncated_segment=path,
                    truncated_at=0,
                    reason="incomplete segment header (rewritten)",
                ),
            )
        scanner = _scan_segment(path, number, ordinal)
        segment = _Segment(number, path, ordinal, scanner.records, scanner.end)
        if scanner.problem is None:
            return segment, fd, Recovery(segments=0, records=scanner.ordinal)
        later = valid_record_after(path, scanner.end, size, scanner.ordinal)
        if later is not None:
            raise CorruptLogError(
                path, scanner.end, f"{scanner.problem}, followed by a valid record at byte {later}"
            )
        os.ftruncate(fd, scanner.end)
        os.fsync(fd)
        return (
            segment,
            fd,
            Recovery(
                segments=0,
                records=scanner.ordinal,
                truncated_bytes=size - scanner.end,
                truncated_segment=path,
                truncated_at=scanner.end,
                reason=f"torn tail: {scanner.problem}",
            ),
        )
    except BaseException:
        os.close(fd)
        raise
