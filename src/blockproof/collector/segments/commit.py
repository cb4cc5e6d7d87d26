"""``GroupCommitter``: many concurrent appends share one ``fdatasync``.

``GroupCommitter.append(payload)`` queues the payload and waits. While one batch
is being written and flushed in the committer's own worker thread, new
submissions queue up; as soon as the disk is free they all go out as the next
batch, with one ``fdatasync`` between them. There is no timer: a lone
submission is written at once, and under load the batch grows by itself to
whatever arrived during the previous flush (bounded by ``max_batch_records``
and ``max_batch_bytes``). After a batch is durable, ``before_ack`` runs on the
event loop thread with the batch's ``(Position, payload)`` pairs, in ordinal
order, and only then do the submitters resume: the collector appends the Merkle
leaves and signs the tree head there, so no receipt refers to a record that is
not both on disk and in a signed tree head.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from blockproof.collector.segments.framing import MAX_RECORD_BYTES, Position
from blockproof.collector.segments.log import LogClosedError, SegmentLog

BeforeAck = Callable[[Sequence[tuple[Position, bytes]]], None]
"""Called on the event loop with each durable batch, before its submitters resume."""


@dataclass(slots=True)
class _Waiting:
    payload: bytes
    future: asyncio.Future[Position]


class GroupCommitter:
    """Many concurrent ``append`` calls, few ``fdatasync`` calls (see the module docstring).

    ``append`` resolves once the payload's batch is durable and ``before_ack``
    has seen it. A failed batch fails exactly its own submitters (with
    ``LogWriteError``); the committer goes on with the next batch. Cancelling a
    waiting submitter only stops its wait: its payload is still written (and
    passed to ``before_ack``), and nothing else in the batch is affected.
    If ``before_ack`` raises, its batch's submitters get that exception and the
    committer stops (``LogClosedError``), since whoever keeps state next to the
    log is now behind it. ``aclose`` writes what is queued and stops; it does
    not close the log.
    """

    def __init__(
        self,
        log: SegmentLog,
        *,
        max_batch_records: int = 1024,
        max_batch_bytes: int = 16 * 1024 * 1024,
        before_ack: BeforeAck | None = None,
    ) -> None:
        if max_batch_records < 1 or max_batch_bytes < 1:
            raise ValueError("batch limits must be positive")
        self._log = log
        self._max_records = max_batch_records
        self._max_bytes = max_batch_bytes
        self._before_ack = before_ack
        self._queue: collections.deque[_Waiting] = collections.deque()
        self._queued_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segment-log")
        self._closed = False
        self._stopped: BaseException | None = None
        self.batches = 0
        """Batches written so far (each cost one fdatasync)."""

    async def append(self, payload: bytes) -> Position:
        """Log ``payload``; return its position once it is durable and acknowledged."""
        return await self.enqueue(payload)

    def enqueue(self, payload: bytes) -> asyncio.Future[Position]:
        """Queue ``payload`` now; the future resolves as ``append`` returns (no task made).

        Cancelling the returned future only abandons the wait, as with ``append``.
        """
        if self._stopped is not None:
            raise LogClosedError("the group committer stopped") from self._stopped
        if self._closed:
            raise LogClosedError("the group committer is closed")
        if len(payload) > MAX_RECORD_BYTES:
            raise ValueError(f"a record may be at most {MAX_RECORD_BYTES} bytes")
        loop = asyncio.get_running_loop()
        waiting = _Waiting(bytes(payload), loop.create_future())
        self._queue.append(waiting)
        self._queued_bytes += len(waiting.payload)
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return waiting.future

    async def aclose(self) -> None:
        """Write everything queued, then refuse new appends. The log stays open."""
        self._closed = True
        if self._task is not None:
            await asyncio.wait([self._task])
        self._executor.shutdown(wait=False)

    async def _gather(self) -> None:
        """Let submitters that are ready to run join the next batch.

        Yields to the event loop while the queue keeps growing (a few loop
        turns at most, no timer): submitters woken by the previous batch's
        acknowledgement get to queue their next payload first. At low load the
        queue stops growing at once and the batch goes out immediately.
        """
        seen = -1
        for _turn in range(8):
            if len(self._queue) == seen or len(self._queue) >= self._max_records:
                return
            if self._queued_bytes >= self._max_bytes:
                return
            seen = len(self._queue)
            await asyncio.sleep(0)

    def _take_batch(self) -> list[_Waiting]:
        batch = [self._queue.popleft()]
        size = len(batch[0].payload)
        while self._queue and len(batch) < self._max_records:
            if size + len(self._queue[0].payload) > self._max_bytes:
                break
            waiting = self._queue.popleft()
            batch.append(waiting)
            size += len(waiting.payload)
        self._queued_bytes -= size
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Waiting] = []
        try:
            while True:
                await self._gather()
                if not self._queue:
                    return
                batch = self._take_batch()
                payloads = [waiting.payload for waiting in batch]
                try:
                    positions = await loop.run_in_executor(
                        self._executor, self._log.append, payloads
                    )
                except Exception as exc:
                    _fail(batch, exc)
                    batch = []
                    continue
                self.batches += 1
                if self._before_ack is not None:
                    try:
                        self._before_ack(list(zip(positions, payloads, strict=True)))
                    except Exception as exc:
                        self._stop(exc, batch)
                        return
                for waiting, position in zip(batch, positions, strict=True):
                    if not waiting.future.done():
                        waiting.future.set_result(position)
                batch = []
        except asyncio.CancelledError as exc:
            # The loop is shutting down: whether the batch in flight landed is unknown,
            # and the state kept by before_ack may be behind the log from now on.
            self._stop(exc, batch)
            raise
        finally:
            self._task = None

    def _stop(self, exc: BaseException, batch: list[_Waiting]) -> None:
        """Fail ``batch`` with ``exc`` and everything queued with ``LogClosedError``."""
        self._stopped = exc
        if isinstance(exc, asyncio.CancelledError):
            for waiting in batch:
                waiting.future.cancel()
        else:
            _fail(batch, exc)
        queued = list(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        closed = LogClosedError("the group committer stopped")
        closed.__cause__ = exc
        _fail(queued, closed)


def _fail(batch: list[_Waiting], exc: BaseException) -> None:
    for waiting in batch:
        if not waiting.future.done():
            waiting.future.set_exception(exc)
