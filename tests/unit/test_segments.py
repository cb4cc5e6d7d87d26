"""The segment log and the group committer (collector.segments).

What is pinned down here, in the order of the module docstring:

* the on-disk format, written out independently of the module (``frame``);
* round trips across many segment roll-overs, and reopening;
* recovery: a torn tail of the last segment is cut (every cut inside the last
  record, garbage, zeros, a half-created segment) and the log takes appends
  again; damage anywhere else refuses to open and names file and offset;
* write failures (disk full, I/O error, at every step of a batch): nothing of
  the batch remains, the next batch succeeds, reopening is clean;
* group commit: batching, ``before_ack`` order and timing, failure isolation,
  cancellation, draining;
* SIGKILL under load, for real, in a child process, several times in a row on
  the same log: every acknowledged record is found again, intact.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from blockproof.collector.segments import (
    MAX_RECORD_BYTES,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    CorruptLogError,
    GroupCommitter,
    LogClosedError,
    LogWriteError,
    Position,
    SegmentLog,
    segment_name,
)
from blockproof.errors import BlockproofError

# ------------------------------------------------------------------ helpers


def frame(ordinal: int, payload: bytes) -> bytes:
    """One record exactly as the module docstring describes it."""
    prefix = struct.pack("<4sIQI", b"\xffBPR", len(payload), ordinal, zlib.crc32(payload))
    return prefix + struct.pack("<I", zlib.crc32(prefix)) + payload


def segment_header(number: int, first_ordinal: int) -> bytes:
    head = struct.pack("<8sIIQI", b"\xffBPLOG\r\n", 1, number, first_ordinal, 0)
    return head + struct.pack("<I", zlib.crc32(head))


def payload_for(i: int) -> bytes:
    """Deterministic payloads of varied length (1..~200 bytes)."""
    return f"{i}:".encode() + hashlib.sha256(str(i).encode()).digest() * (i % 6) + b"."


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.log"))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in segment_files(directory)}


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


@dataclass
class Built:
    """A closed log of ``len(payloads)`` records in several small segments."""

    directory: Path
    payloads: list[bytes]
    positions: list[Position]

    @property
    def last(self) -> Position:
        return self.positions[-1]

    def segment(self, number: int) -> Path:
        return self.directory / segment_name(number)

    def in_segment(self, number: int) -> list[Position]:
        return [p for p in self.positions if p.segment == number]


SMALL_SEGMENT = 1024


def build(directory: Path, count: int = 45, batch: int = 4) -> Built:
    payloads = [payload_for(i) for i in range(count)]
    positions: list[Position] = []
    log, _recovery = SegmentLog.open(directory, segment_bytes=SMALL_SEGMENT)
    with log:
        for start in range(0, count, batch):
            positions += log.append(payloads[start : start + batch])
    return Built(directory, payloads, positions)


@pytest.fixture
def built(tmp_path: Path) -> Built:
    result = build(tmp_path / "log")
    last_segment = result.last.segment
    assert last_segment >= 3, "the scenarios need sealed segments"
    assert len(result.in_segment(last_segment)) >= 3, "and a last segment of 3+ records"
    return result


# ------------------------------------------------------------------ format


def test_files_follow_the_documented_format(tmp_path: Path) -> None:
    log, recovery = SegmentLog.open(tmp_path / "log")
    with log:
        assert recovery.clean
        assert (recovery.segments, recovery.records) == (1, 0)
        positions = log.append([b"", b"hello", b"\xff" * 300])
    data = (tmp_path / "log" / "segment-000000000000.log").read_bytes()
    expected = segment_header(0, 0) + frame(0, b"") + frame(1, b"hello") + frame(2, b"\xff" * 300)
    assert data == expected
    assert positions == [
        Position(0, 0, SEGMENT_HEADER_SIZE, 0),
        Position(1, 0, SEGMENT_HEADER_SIZE + RECORD_HEADER_SIZE, 5),
        Position(2, 0, SEGMENT_HEADER_SIZE + 2 * RECORD_HEADER_SIZE + 5, 300),
    ]


def test_round_trip_across_roll_overs(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    payloads = [payload_for(i) for i in range(600)]
    log, _recovery = SegmentLog.open(directory, segment_bytes=SMALL_SEGMENT)
    positions: list[Position] = []
    with log:
        for size in (1, 7, 50, 3, 200, 139, 200):  # batches larger than a segment, too
            start = len(positions)
            positions += log.append(payloads[start : start + size])
        assert len(log) == 600
        assert [p.ordinal for p in positions] == list(range(600))
        assert all(log.read(p) == payloads[p.ordinal] for p in positions)
        assert list(log.records()) == list(zip(positions, payloads, strict=True))
    files = segment_files(directory)
    assert len(files) == positions[-1].segment + 1 > 40
    assert all(f.stat().st_size <= SMALL_SEGMENT for f in files)

    log, recovery = SegmentLog.open(directory, segment_bytes=SMALL_SEGMENT)
    with log:
        assert recovery.clean
        assert (recovery.segments, recovery.records) == (len(files), 600)
        assert list(log.records()) == list(zip(positions, payloads, strict=True))
        (more,) = log.append([b"after reopening"])
        assert more.ordinal == 600
        assert log.read(more) == b"after reopening"


def test_a_record_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    log, _recovery = SegmentLog.open(tmp_path / "log", segment_bytes=256)
    with log:
        small, big, after = log.append([b"a" * 10, b"b" * 1000, b"c" * 10])
        assert (small.segment, big.segment, after.segment) == (0, 1, 2)
        assert log.read(big) == b"b" * 1000


@pytest.mark.parametrize("start", [0, 1, 9, 10, 23, 44, 45, 100])
def test_records_from_an_ordinal(built: Built, start: int) -> None:
    log, _recovery = SegmentLog.open(built.directory)
    with log:
        got = list(log.records(start))
    assert got == list(zip(built.positions, built.payloads, strict=True))[start:]


def test_one_write_and_one_fdatasync_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, _recovery = SegmentLog.open(tmp_path / "log")
    calls: list[str] = []
    real_pwrite, real_fdatasync = os.pwrite, os.fdatasync

    def pwrite(fd: int, data: Any, offset: int) -> int:
        calls.append("pwrite")
        return real_pwrite(fd, data, offset)

    def fdatasync(fd: int) -> None:
        calls.append("fdatasync")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with log:
        log.append([payload_for(i) for i in range(100)])
    assert calls == ["pwrite", "fdatasync"]


def test_misuse(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SegmentLog.open(tmp_path / "nothing", create=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        SegmentLog.open(tmp_path / "empty", create=False)
    with pytest.raises(ValueError, match="segment_bytes"):
        SegmentLog.open(tmp_path / "log", segment_bytes=40)
    log, _recovery = SegmentLog.open(tmp_path / "log")
    (position,) = log.append([b"one"])
    with pytest.raises(ValueError, match="at most"):
        log.append([b"ok", b"x" * (MAX_RECORD_BYTES + 1)])
    assert len(log) == 1
    assert log.append([]) == []
    for bogus in (
        Position(1, 0, position.end, 3),
        Position(0, 1, position.offset, 3),
        Position(0, 0, position.offset, 4000),
    ):
        with pytest.raises(ValueError, match=r"segment|record"):
            log.read(bogus)
    log.close()
    log.close()
    for operation in (lambda: log.append([b"x"]), lambda: log.read(position), log.records):
        with pytest.raises(LogClosedError):
            operation()


def test_damage_after_opening_is_detected_on_read(built: Built) -> None:
    log, _recovery = SegmentLog.open(built.directory)
    with log:
        victim = built.positions[5]
        flip(built.segment(victim.segment), victim.offset + RECORD_HEADER_SIZE + 1)
        with pytest.raises(CorruptLogError) as info:
            log.read(victim)
        assert info.value.path == built.segment(victim.segment)
        assert info.value.offset == victim.offset
        with pytest.raises(CorruptLogError):
            list(log.records())


# ------------------------------------------------------------ torn tails

Tear = Callable[[Built], tuple[int, int]]
"""Damages a built log like a crash could; returns (records kept, bytes cut)."""


def _cut(built: Built, offset: int) -> tuple[int, int]:
    path = built.segment(built.last.segment)
    os.truncate(path, offset)
    return len(built.payloads) - 1, offset - built.last.offset


def _append_bytes(data: bytes) -> Tear:
    def tear(built: Built) -> tuple[int, int]:
        with built.segment(built.last.segment).open("ab") as file:
            file.write(data)
        return len(built.payloads), len(data)

    return tear


def _flip_last(offset_in_record: int) -> Tear:
    def tear(built: Built) -> tuple[int, int]:
        flip(built.segment(built.last.segment), built.last.offset + offset_in_record)
        return len(built.payloads) - 1, built.last.end - built.last.offset

    return tear


def _half_created_segment(size: int) -> Tear:
    def tear(built: Built) -> tuple[int, int]:
        header = segment_header(built.last.segment + 1, len(built.payloads))
        built.segment(built.last.segment + 1).write_bytes(header[:size])
        return len(built.payloads), size

    return tear


TORN: list[tuple[str, Tear]] = [
    ("cut after 1 header byte", lambda b: _cut(b, b.last.offset + 1)),
    ("cut inside the header", lambda b: _cut(b, b.last.offset + 13)),
    ("cut before the header checksum's last byte", lambda b: _cut(b, b.last.offset + 23)),
    ("cut after the header", lambda b: _cut(b, b.last.offset + RECORD_HEADER_SIZE)),
    ("cut inside the payload", lambda b: _cut(b, b.last.offset + RECORD_HEADER_SIZE + 5)),
    ("cut one byte short", lambda b: _cut(b, b.last.end - 1)),
    ("garbage appended", _append_bytes(b"\x13\x37" * 50)),
    ("zeros appended", _append_bytes(bytes(4096))),
    ("record magic and junk appended", _append_bytes(b"\xffBPR" + b"junk" * 10)),
    ("header of a next record, payload missing", _append_bytes(frame(45, b"z" * 100)[:60])),
    ("next record with a wrong ordinal", _append_bytes(frame(7, b"stale"))),
    ("last record's payload damaged", _flip_last(RECORD_HEADER_SIZE + 2)),
    ("last record's length garbled", _flip_last(5)),
    ("last record's magic damaged", _flip_last(0)),
    ("new segment with half a header", _half_created_segment(10)),
    ("new segment still empty", _half_created_segment(0)),
]


@pytest.mark.parametrize(("name", "tear"), TORN, ids=[name for name, _ in TORN])
def test_torn_tail_is_cut_and_the_log_goes_on(built: Built, name: str, tear: Tear) -> None:
    kept, cut = tear(built)
    log, recovery = SegmentLog.open(built.directory, segment_bytes=SMALL_SEGMENT)
    with log:
        assert not recovery.clean
        assert recovery.truncated_bytes == cut
        assert recovery.records == len(log) == kept
        assert [payload for _p, payload in log.records()] == built.payloads[:kept]
        (position,) = log.append([b"after the crash"])
        assert position.ordinal == kept
    log, recovery = SegmentLog.open(built.directory, segment_bytes=SMALL_SEGMENT)
    with log:
        assert recovery.clean, recovery
        assert len(log) == kept + 1
        assert log.read(position) == b"after the crash"


def test_a_cut_at_every_byte_of_the_last_record(built: Built) -> None:
    path = built.segment(built.last.segment)
    pristine = path.read_bytes()
    for offset in range(built.last.offset, built.last.end + 1):
        path.write_bytes(pristine[:offset])
        log, recovery = SegmentLog.open(built.directory)
        with log:
            whole = offset == built.last.end
            assert len(log) == len(built.payloads) - (0 if whole else 1), offset
            assert recovery.truncated_bytes == (0 if whole else offset - built.last.offset)
            assert path.stat().st_size == (offset if whole else built.last.offset)


# ------------------------------------------------------------ real damage

Damage = Callable[[Built], tuple[Path, int]]
"""Damages a built log where no crash could; returns (file, offset) the error must name."""


def _flip_record(which: Callable[[Built], Position], offset_in_record: int) -> Damage:
    def damage(built: Built) -> tuple[Path, int]:
        position = which(built)
        path = built.segment(position.segment)
        flip(path, position.offset + offset_in_record)
        return path, position.offset

    return damage


def _middle_of_last(built: Built) -> Position:
    records = built.in_segment(built.last.segment)
    return records[len(records) // 2]


def _last_of_sealed(built: Built) -> Position:
    return built.in_segment(1)[-1]


def _zero_hole(built: Built) -> tuple[Path, int]:
    position = _middle_of_last(built)
    path = built.segment(position.segment)
    data = bytearray(path.read_bytes())
    data[position.offset : position.end] = bytes(position.end - position.offset)
    path.write_bytes(bytes(data))
    return path, position.offset


def _cut_sealed(built: Built) -> tuple[Path, int]:
    position = _last_of_sealed(built)
    path = built.segment(1)
    os.truncate(path, position.end - 3)
    return path, position.offset


def _drop_last_record_of_sealed(built: Built) -> tuple[Path, int]:
    position = _last_of_sealed(built)
    os.truncate(built.segment(1), position.offset)  # cleanly, at a record boundary
    return built.segment(2), 0


def _delete(number: int) -> Damage:
    def damage(built: Built) -> tuple[Path, int]:
        built.segment(number).unlink()
        return built.segment(number), 0

    return damage


def _copy_over(source: int, target: int) -> Damage:
    def damage(built: Built) -> tuple[Path, int]:
        built.segment(target).write_bytes(built.segment(source).read_bytes())
        return built.segment(target), 0

    return damage


def _garble_header(which: Callable[[Built], int]) -> Damage:
    def damage(built: Built) -> tuple[Path, int]:
        path = built.segment(which(built))
        flip(path, 17)  # inside the first-ordinal field
        return path, 0

    return damage


DAMAGE: list[tuple[str, Damage, str]] = [
    ("payload in the middle of the last segment", _flip_record(_middle_of_last, 30), "valid"),
    ("header in the middle of the last segment", _flip_record(_middle_of_last, 6), "valid"),
    ("zeroed record in the middle of the last segment", _zero_hole, "valid"),
    ("payload of a sealed segment's last record", _flip_record(_last_of_sealed, 30), "sealed"),
    ("sealed segment cut short", _cut_sealed, "sealed"),
    ("sealed segment lost its last record", _drop_last_record_of_sealed, "missing"),
    ("middle segment deleted", _delete(2), "missing"),
    ("first segment deleted", _delete(0), "missing"),
    ("segment replaced by another", _copy_over(1, 2), "header says segment 1"),
    ("sealed segment header garbled", _garble_header(lambda b: 1), "checksum"),
    ("last segment header garbled", _garble_header(lambda b: b.last.segment), "checksum"),
]


@pytest.mark.parametrize(("name", "damage", "reason"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damage_refuses_to_open(built: Built, name: str, damage: Damage, reason: str) -> None:
    path, offset = damage(built)
    before = snapshot(built.directory)
    with pytest.raises(CorruptLogError) as info:
        SegmentLog.open(built.directory)
    error = info.value
    assert isinstance(error, BlockproofError)
    assert (error.path, error.offset) == (path, offset)
    assert path.name in str(error)
    assert f"byte {offset}" in str(error)
    assert reason in error.reason
    assert snapshot(built.directory) == before, "a refused log is left as it was"


# ------------------------------------------------------------ write errors


@dataclass
class Fault:
    """Makes call number ``at`` (1-based) of ``os.<name>`` fail with ``code``."""

    name: str
    at: int
    code: int
    short_write: bool = False  # the failing pwrite first writes half its data

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = getattr(os, self.name)
        calls = 0

        def faulty(*args: Any) -> Any:
            nonlocal calls
            if self.name == "open" and not args[1] & os.O_CREAT:
                return real(*args)
            calls += 1
            if calls == self.at and self.short_write:
                fd, data, offset = args
                return real(fd, bytes(data)[: len(data) // 2], offset)
            if calls == self.at + (1 if self.short_write else 0):
                raise OSError(self.code, os.strerror(self.code))
            return real(*args)

        monkeypatch.setattr(os, self.name, faulty)


SMALL_BATCH = 5
CROSSING_BATCH = 60  # 60 records of ~100 bytes cross a 4 KiB segment boundary
FAULTS: list[tuple[str, Fault, int]] = [
    ("write: disk full", Fault("pwrite", 1, errno.ENOSPC), SMALL_BATCH),
    ("short write, then disk full", Fault("pwrite", 1, errno.ENOSPC, True), SMALL_BATCH),
    ("fdatasync: I/O error", Fault("fdatasync", 1, errno.EIO), SMALL_BATCH),
    ("write: disk full, batch crossing segments", Fault("pwrite", 1, errno.ENOSPC), CROSSING_BATCH),
    ("sealing the filled segment", Fault("fdatasync", 1, errno.EIO), CROSSING_BATCH),
    ("creating the next segment", Fault("open", 1, errno.ENOSPC), CROSSING_BATCH),
    ("writing the next segment's header", Fault("pwrite", 2, errno.ENOSPC), CROSSING_BATCH),
    ("flushing the next segment's header", Fault("fdatasync", 2, errno.EIO), CROSSING_BATCH),
    ("writing into the next segment", Fault("pwrite", 3, errno.ENOSPC, True), CROSSING_BATCH),
    ("flushing the next segment", Fault("fdatasync", 3, errno.EIO), CROSSING_BATCH),
]


@pytest.mark.parametrize(("name", "fault", "batch"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failed_batch_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fault: Fault, batch: int
) -> None:
    directory = tmp_path / "log"
    payloads = [payload_for(i) for i in range(10 + batch)]
    log, _recovery = SegmentLog.open(directory, segment_bytes=4096)
    log.append(payloads[:10])
    before = snapshot(directory)
    with monkeypatch.context() as patch:
        fault.install(patch)
        with pytest.raises(LogWriteError) as info:
            log.append(payloads[10:])
    assert info.value.errno == fault.code
    assert isinstance(info.value, BlockproofError)
    assert snapshot(directory) == before
    assert len(log) == 10
    positions = log.append(payloads[10:])
    assert positions[0].ordinal == 10
    assert positions[-1].segment == (1 if batch == CROSSING_BATCH else 0)
    log.close()
    log, recovery = SegmentLog.open(directory)
    with log:
        assert recovery.clean
        assert [payload for _p, payload in log.records()] == payloads


@pytest.mark.parametrize("short_write", [False, True], ids=["whole write", "short write"])
def test_a_failed_undo_blocks_appends_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_write: bool
) -> None:
    directory = tmp_path / "log"
    log, _recovery = SegmentLog.open(directory)
    log.append([b"kept"])
    with monkeypatch.context() as patch:
        if short_write:
            Fault("pwrite", 1, errno.ENOSPC, short_write=True).install(patch)
        else:
            Fault("fdatasync", 1, errno.EIO).install(patch)
        Fault("ftruncate", 1, errno.EIO).install(patch)
        with pytest.raises(LogWriteError):
            log.append([b"x" * 3000])
    with pytest.raises(LogWriteError, match="reopen"):
        log.append([b"refused"])
    log.close()
    log, recovery = SegmentLog.open(directory)  # never refused: a failed write is a torn tail
    with log:
        stored = [payload for _p, payload in log.records()]
        if short_write:
            assert stored == [b"kept"]
            assert recovery.truncated_bytes > 0
        else:  # whole but never acknowledged: may stay
            assert stored == [b"kept", b"x" * 3000]
        log.append([b"again"])


# ------------------------------------------------------------ group commit


@pytest.mark.asyncio
async def test_concurrent_appends_share_fsyncs_and_are_acknowledged_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = 0
    real_fdatasync = os.fdatasync

    def counting(fd: int) -> None:
        nonlocal fsyncs
        fsyncs += 1
        real_fdatasync(fd)

    log, _recovery = SegmentLog.open(tmp_path / "log")
    monkeypatch.setattr(os, "fdatasync", counting)
    seen: list[tuple[Position, bytes]] = []
    loop_thread = threading.get_ident()

    def before_ack(batch: Any) -> None:
        assert threading.get_ident() == loop_thread
        seen.extend(batch)

    committer = GroupCommitter(log, before_ack=before_ack)
    acked: dict[int, bytes] = {}

    async def submitter(worker: int) -> None:
        for i in range(50):
            payload = f"w{worker}-{i}-".encode() * 20
            position = await committer.append(payload)
            assert seen[position.ordinal] == (position, payload), "before_ack came first"
            acked[position.ordinal] = payload

    await asyncio.gather(*(submitter(w) for w in range(32)))
    await committer.aclose()
    assert sorted(acked) == list(range(32 * 50))
    assert [position.ordinal for position, _payload in seen] == list(range(32 * 50))
    assert fsyncs == committer.batches < 32 * 50 / 8, fsyncs
    with log:
        assert {p.ordinal: payload for p, payload in log.records()} == acked


@pytest.mark.asyncio
async def test_a_lone_append_is_written_at_once(tmp_path: Path) -> None:
    log, _recovery = SegmentLog.open(tmp_path / "log")
    committer = GroupCommitter(log)
    for i in range(5):
        position = await asyncio.wait_for(committer.append(b"%d" % i), 5)
        assert position.ordinal == i
    assert committer.batches == 5
    await committer.aclose()
    log.close()


@pytest.mark.asyncio
async def test_a_failed_batch_fails_only_its_own_submitters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: Any, offset: int) -> int:
        if b"poison" in bytes(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    log, _recovery = SegmentLog.open(tmp_path / "log")
    seen: list[int] = []
    committer = GroupCommitter(
        log, max_batch_records=4, before_ack=lambda batch: seen.extend(p.ordinal for p, _ in batch)
    )
    payloads = [b"poison" if i == 5 else b"fine %d" % i for i in range(12)]
    results = await asyncio.gather(*map(committer.append, payloads), return_exceptions=True)
    # batches of four, in order: the second one holds the poison
    for i, result in enumerate(results):
        if 4 <= i < 8:
            assert isinstance(result, LogWriteError)
            assert result.errno == errno.ENOSPC
        else:
            assert isinstance(result, Position)
            assert result.ordinal == (i if i < 4 else i - 4)
    assert seen == list(range(8))
    assert (await committer.append(b"still serving")).ordinal == 8
    await committer.aclose()
    with log:
        assert [payload for _p, payload in log.records()] == [
            *payloads[:4],
            *payloads[8:],
            b"still serving",
        ]


@pytest.mark.asyncio
async def test_cancelling_a_submitter_leaves_its_batch_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real_fdatasync = os.fdatasync

    def held(fd: int) -> None:
        entered.set()
        assert release.wait(10)
        real_fdatasync(fd)

    log, _recovery = SegmentLog.open(tmp_path / "log")
    monkeypatch.setattr(os, "fdatasync", held)
    seen: list[bytes] = []
    committer = GroupCommitter(log, before_ack=lambda batch: seen.extend(p for _, p in batch))
    first = asyncio.ensure_future(committer.append(b"first"))
    companion = asyncio.ensure_future(committer.append(b"companion"))
    assert await asyncio.to_thread(entered.wait, 10)  # first batch is in fdatasync
    queued = asyncio.ensure_future(committer.append(b"queued"))
    last = asyncio.ensure_future(committer.append(b"last"))
    await asyncio.sleep(0)
    first.cancel()
    queued.cancel()
    release.set()
    assert (await companion).ordinal == 1
    assert (await last).ordinal == 3
    for cancelled in (first, queued):
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    await committer.aclose()
    assert seen == [b"first", b"companion", b"queued", b"last"]
    with log:
        assert [payload for _p, payload in log.records()] == seen


@pytest.mark.asyncio
async def test_a_failing_before_ack_stops_the_committer(tmp_path: Path) -> None:
    log, _recovery = SegmentLog.open(tmp_path / "log")
    batches = 0

    def before_ack(batch: Any) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise RuntimeError("index out of step")

    committer = GroupCommitter(log, before_ack=before_ack)
    assert (await committer.append(b"one")).ordinal == 0
    with pytest.raises(RuntimeError, match="out of step"):
        await committer.append(b"two")
    with pytest.raises(LogClosedError):
        await committer.append(b"three")
    await committer.aclose()
    with log:
        assert len(log) == 2  # durable, though never acknowledged


@pytest.mark.asyncio
async def test_aclose_drains_what_is_queued(tmp_path: Path) -> None:
    log, _recovery = SegmentLog.open(tmp_path / "log")
    committer = GroupCommitter(log, max_batch_records=3)
    pending = [asyncio.ensure_future(committer.append(b"%d" % i)) for i in range(10)]
    await asyncio.sleep(0)
    await committer.aclose()
    assert [position.ordinal for position in await asyncio.gather(*pending)] == list(range(10))
    with pytest.raises(LogClosedError):
        await committer.append(b"late")
    with pytest.raises(ValueError, match="at most"):
        await GroupCommitter(log).append(b"x" * (MAX_RECORD_BYTES + 1))
    log.close()


def test_a_loop_shutting_down_mid_batch_leaves_a_sound_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real_fdatasync = os.fdatasync

    def held(fd: int) -> None:
        entered.set()
        assert release.wait(10)
        real_fdatasync(fd)

    log, _recovery = SegmentLog.open(tmp_path / "log")
    monkeypatch.setattr(os, "fdatasync", held)
    committer = GroupCommitter(log)
    submitted: list[asyncio.Future[Position]] = []

    async def abandon() -> None:
        submitted.append(asyncio.ensure_future(committer.append(b"in flight")))
        assert await asyncio.to_thread(entered.wait, 10)
        # returning cancels every task left: the submitter and the committer's own

    asyncio.run(abandon())
    assert submitted[0].cancelled()

    async def later() -> None:
        with pytest.raises(LogClosedError):
            await committer.append(b"refused")

    asyncio.run(later())
    release.set()
    log.close()  # waits for the batch still in the worker thread
    log, recovery = SegmentLog.open(tmp_path / "log")
    with log:
        assert recovery.clean
        assert [payload for _p, payload in log.records()] == [b"in flight"]


# ------------------------------------------------------------ SIGKILL

CHILD = textwrap.dedent(
    """
    import asyncio, hashlib, os, sys
    from pathlib import Path
    from blockproof.collector.segments import GroupCommitter, SegmentLog

    async def main(directory):
        log, _recovery = SegmentLog.open(directory, segment_bytes=256 * 1024)
        committer = GroupCommitter(log)
        out = sys.stdout

        async def submitter(worker):
            n = 0
            while True:
                payload = os.urandom(100 + (worker * 7919 + n * 104729) % 6000)
                position = await committer.append(payload)
                digest = hashlib.sha256(payload).hexdigest()
                out.write(f"{position.ordinal} {digest}\\n")
                out.flush()
                n += 1

        await asyncio.gather(*(submitter(w) for w in range(32)))

    asyncio.run(main(Path(sys.argv[1])))
    """
)


@pytest.mark.timeout(120)
def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    acknowledged: dict[int, str] = {}
    for run in range(5):
        out = tmp_path / f"acks-{run}.txt"
        with out.open("wb") as stdout:
            child = subprocess.Popen([sys.executable, str(script), str(directory)], stdout=stdout)
        try:
            deadline = time.monotonic() + 20
            while out.stat().st_size < 20_000:  # a few hundred acknowledgements: under load
                assert child.poll() is None, f"the child died by itself (seed {seed})"
                assert time.monotonic() < deadline, "the child never got going"
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.3))
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert child.returncode == -signal.SIGKILL
        for line in out.read_text().splitlines(keepends=True):
            if line.endswith("\n"):  # the last line may be cut by the kill
                ordinal, digest = line.split()
                assert int(ordinal) not in acknowledged, "an ordinal was handed out twice"
                acknowledged[int(ordinal)] = digest

        log, recovery = SegmentLog.open(directory, segment_bytes=256 * 1024)
        with log:
            stored = {
                p.ordinal: hashlib.sha256(payload).hexdigest() for p, payload in log.records()
            }
        assert len(stored) == recovery.records
        lost = {o for o, digest in acknowledged.items() if stored.get(o) != digest}
        assert not lost, f"run {run} (seed {seed}): acknowledged records lost: {sorted(lost)[:5]}"
    assert len(acknowledged) > 5 * 200
