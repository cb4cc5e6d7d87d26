"""The collector's durable storage: an append-only segment log with group commit.

Theory of operation
===================

A measurement is acknowledged only once it is on disk. This package is the disk
part: ``SegmentLog`` appends records and makes them durable, ``GroupCommitter``
lets many concurrent submitters share one ``fdatasync``, so that durability
costs latency (about one disk flush) but not throughput.

The parts, each in its own module (the dependencies run one way, down this list):

``framing``
    The format: a directory of numbered segment files, each a checksummed
    header followed by records, each record a checksummed header carrying its
    ordinal, then the payload; ``Position`` names a record. Reading records
    back and telling a torn tail from damage in the middle.
``log``
    ``SegmentLog``: appending a batch with one write per segment and one
    ``fdatasync``; why acknowledged records survive SIGKILL and power loss;
    the recovery rules applied on open (a torn tail is cut, any other damage
    raises ``CorruptLogError``); undoing a batch whose write failed
    (``LogWriteError``).
``commit``
    ``GroupCommitter``: concurrent submitters queue while the disk is busy and
    go out together as the next batch; ``before_ack`` sees each durable batch
    before its submitters resume.
"""

from __future__ import annotations

from blockproof.collector.segments.commit import BeforeAck, GroupCommitter
from blockproof.collector.segments.framing import (
    MAX_RECORD_BYTES,
    RECORD_HEADER_SIZE,
    SEGMENT_HEADER_SIZE,
    Position,
    segment_name,
)
from blockproof.collector.segments.log import (
    DEFAULT_SEGMENT_BYTES,
    CorruptLogError,
    LogClosedError,
    LogWriteError,
    Recovery,
    SegmentLog,
)

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "MAX_RECORD_BYTES",
    "RECORD_HEADER_SIZE",
    "SEGMENT_HEADER_SIZE",
    "BeforeAck",
    "CorruptLogError",
    "GroupCommitter",
    "LogClosedError",
    "LogWriteError",
    "Position",
    "Recovery",
    "SegmentLog",
    "segment_name",
]
