"""Admission in worker processes: parsing, canonical form and signature checks off the loop.

Theory of operation
-------------------
The collector has one process that owns the log (``service.Collector``: the
group commit, the Merkle tree, the signed tree heads) and serves HTTP. What a
submission costs before it reaches the log is pure CPU that needs nothing but
the request's bytes: parsing the JSON, its RFC 8785 canonical form, the field
checks, the leaf hash and above all the Ed25519 signature check (about 120 µs
for a 10 KB measurement, more than all the rest together). ``AdmissionPool``
runs exactly that part (``admission.admit_bytes`` for a batch line, the bk-003
parse + ``admission.admit_object`` for a single submission) in a few worker
processes, so that it runs beside the log writer instead of on its thread. The
workers hold no state and write nothing: the decision "admitted, with these
canonical bytes" or "refused, with this status, code and sentence" is the same
function of the bytes as when it runs inline, and durability is still decided
in the one writer (a receipt is still handed out only after the fsync and the
signed tree head).

Plumbing, chosen for a low cost per measurement on the writer's side:

- each worker is ``python -m blockproof.collector.workers FD``, started with
  ``subprocess`` (not ``multiprocessing``: no fork of a threaded event loop,
  no hidden manager thread), joined to the collector by a private
  ``socketpair`` and inheriting no other descriptor (in particular not the
  data directory's lock);
- messages are length-prefixed pickles over that socket; only the collector
  and its own child hold the two ends, so nothing from the network is ever
  unpickled (requests carry raw bytes, answers small tuples);
- *micro-batching*: jobs queued during one turn of the event loop go out
  together, one message per worker (the least loaded first), when the loop
  turns (``call_soon``), so under load one write and one wake-up carry many
  measurements;
- the canonical bytes usually do not travel back: a batch line that already is
  canonical (as our probes send it) comes back as ``None`` ("the line itself"),
  and a bk-003 body holding the canonical measurement verbatim comes back as
  the ``(start, end)`` slice of the body.

Failure: a worker that dies (killed, crashed) fails its outstanding jobs with
``WorkerLost`` and is not used again; callers then admit inline, in the
collector process, with the same functions. An unexpected exception inside a
worker is reported the same way for its job (the inline rerun then raises it
where it is logged). When the collector dies, even by SIGKILL, each worker
reads end-of-file on its socket and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from blockproof.collector import admission
from blockproof.collector.admission import Admitted, Rejection

log = logging.getLogger("blockproof.collector")

WORKERS_ENV = "BLOCKPROOF_COLLECTOR_WORKERS"
"""Overrides the number of admission worker processes (0: admit inline)."""

_LENGTH = struct.Struct(">I")
LINES = 0  # a job: a list of batch lines (JSON text, one measurement each)
SINGLE = 1  # a job: (report_id, body) of one bk-003 submission

# One admission outcome as it crosses the socket (see ``_encode``/``_decode``).
_OK, _REJECTED, _ERROR = 0, 1, 2
Outcome = tuple[Any, ...]


class WorkerLost(Exception):
    """The job's worker process is gone (or failed on it): admit inline instead."""


def default_workers() -> int:
    """Worker processes to start: $BLOCKPROOF_COLLECTOR_WORKERS, else one per core up to 4.

    On a single core there is nothing to run beside the writer: admission is inline.
    """
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw.isdigit():
        return min(int(raw), 64)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 0 if cores < 2 else min(cores, 4)


# ------------------------------------------------------------------ worker side


def _encode(admitted: Admitted, canonical: Any) -> Outcome:
    return (
        _OK,
        canonical,
        admitted.leaf_hash,
        admitted.test_name,
        admitted.probe_cc,
        admitted.measurement_start_time,
        admitted.key_id,
    )


def _admit_line(line: bytes) -> Outcome:
    try:
        admitted = admission.admit_bytes(line)
    except Rejection as rej:
        return (_REJECTED, rej.status, rej.code, rej.detail)
    except Exception as exc:  # a bug: the collector reruns the job inline, where it shows
        return (_ERROR, repr(exc))
    return _encode(admitted, None if admitted.canonical == line else admitted.canonical)


def admit_submission(report_id: str, body: bytes) -> Admitted:
    """A bk-003 submission body -> the admitted measurement (raises ``Rejection``)."""
    content, checked = admission.parse_submission(report_id, admission.parse_json_body(body))
    return admission.admit_object(content, checked)


def _admit_single(report_id: str, body: bytes) -> Outcome:
    try:
        admitted = admit_submission(report_id, body)
    except Rejection as rej:
        return (_REJECTED, rej.status, rej.code, rej.detail)
    except Exception as exc:
        return (_ERROR, repr(exc))
    canonical = admitted.canonical
    start = body.find(canonical)
    return _encode(admitted, (start, start + len(canonical)) if start >= 0 else canonical)


def _run_job(kind: int, payload: Any) -> Any:
    if kind == LINES:
        return [_admit_line(line) for line in payload]
    report_id, body = payload
    return _admit_single(report_id, body)


def _read_exactly(stream: Any, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def worker_main(fd: int) -> None:
    """A worker's life: read a message of jobs, answer it, until end-of-file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the collector, which stops us
    sock = socket.socket(fileno=fd)
    reader = sock.makefile("rb", buffering=1 << 20)
    try:
        while True:
            head = _read_exactly(reader, _LENGTH.size)
            if head is None:
                return
            message = _read_exactly(reader, _LENGTH.unpack(head)[0])
            if message is None:
                return
            seq, jobs = pickle.loads(message)
            answer = pickle.dumps(
                (seq, [_run_job(kind, payload) for kind, payload in jobs]),
                protocol=pickle.HIGHEST_PROTOCOL,
            )
            sock.sendall(_LENGTH.pack(len(answer)) + answer)
    except (BrokenPipeError, ConnectionResetError):
        return  # the collector is gone
    finally:
        with contextlib.suppress(OSError):
            sock.close()


# --------------------------------------------------------------- collector side


@dataclass(slots=True)
class _Job:
    kind: int
    payload: Any
    size: int  # measurements in it (for load balancing)
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Sent:
    jobs: list[_Job]


class _Worker(asyncio.Protocol):
    """The collector's end of one worker's socket."""

    def __init__(self, proc: subprocess.Popen[bytes], on_lost: Callable[[_Worker], None]) -> None:
        self.proc = proc
        self.transport: asyncio.Transport | None = None
        self.outstanding = 0  # measurements sent and not answered yet
        self.alive = True
        self._sent: dict[int, _Sent] = {}
        self._seq = 0
        self._buffer = bytearray()
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, jobs: list[_Job]) -> None:
        assert self.transport is not None
        self._seq += 1
        message = pickle.dumps(
            (self._seq, [(job.kind, job.payload) for job in jobs]),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        self._sent[self._seq] = _Sent(jobs)
        self.outstanding += sum(job.size for job in jobs)
        self.transport.writelines((_LENGTH.pack(len(message)), message))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer)
            end = _LENGTH.size + length
            if len(buffer) < end:
                break
            seq, results = pickle.loads(memoryview(buffer)[_LENGTH.size : end])
            del buffer[:end]
            sent = self._sent.pop(seq)
            for job, result in zip(sent.jobs, results, strict=True):
                self.outstanding -= job.size
                if not job.future.done():
                    job.future.set_result(result)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        for sent in self._sent.values():
            for job in sent.jobs:
                if not job.future.done():
                    job.future.set_exception(WorkerLost("an admission worker exited"))
        self._sent.clear()
        self.outstanding = 0
        self._on_lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class AdmissionPool:
    """Worker processes that admit measurements for the one log writer (module docstring)."""

    processes: int
    _workers: list[_Worker] = field(default_factory=list)
    _queued: list[_Job] = field(default_factory=list)
    _flush_scheduled: bool = False
    _closing: bool = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.processes):
            ours, proc = await loop.run_in_executor(None, _spawn)
            worker = _Worker(proc, self._lost)
            await loop.create_connection(lambda w=worker: w, sock=ours)  # type: ignore[misc]
            self._workers.append(worker)

    @property
    def available(self) -> bool:
        return any(w.alive for w in self._workers)

    def _lost(self, worker: _Worker) -> None:
        if not self._closing:
            log.warning("an admission worker stopped; admitting in the collector process instead")

    async def aclose(self) -> None:
        self._closing = True
        for worker in self._workers:
            worker.close()
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            try:
                await asyncio.wait_for(loop.run_in_executor(None, worker.proc.wait), 5)
            except TimeoutError:
                worker.proc.kill()
        self._workers.clear()

    # ---------------------------------------------------------------- jobs

    def _submit(self, kind: int, payload: Any, size: int) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        job = _Job(kind, payload, size, loop.create_future())
        self._queued.append(job)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return job.future

    def _flush(self) -> None:
        """Send what queued during this loop turn: each job to the least loaded worker."""
        self._flush_scheduled = False
        jobs, self._queued = self._queued, []
        alive = [w for w in self._workers if w.alive]
        if not alive:
            for job in jobs:
                job.future.set_exception(WorkerLost("no admission worker is running"))
            return
        shares: dict[int, list[_Job]] = {}
        load = {id(w): w.outstanding for w in alive}
        for job in jobs:
            worker = min(alive, key=lambda w: load[id(w)])
            load[id(worker)] += job.size
            shares.setdefault(id(worker), []).append(job)
        for worker in alive:
            share = shares.get(id(worker))
            if share:
                worker.send(share)

    async def admit_lines(self, lines: list[bytes]) -> list[Admitted | Rejection]:
        """Each batch line admitted or refused, as ``admission.admit_bytes`` would."""
        outcomes = await self._submit(LINES, lines, len(lines))
        return [_decode(outcome, line) for outcome, line in zip(outcomes, lines, strict=True)]

    async def admit_submission(self, report_id: str, body: bytes) -> Admitted:
        """A bk-003 body admitted (or ``Rejection`` raised), as ``admit_submission`` would."""
        result = _decode(await self._submit(SINGLE, (report_id, body), 1), body)
        if isinstance(result, Rejection):
            raise result
        return result


def _spawn() -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """One worker process and the collector's end of its socket."""
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "blockproof.collector.workers", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return ours, proc


def _decode(outcome: Outcome, source: bytes) -> Admitted | Rejection:
    if outcome[0] == _REJECTED:
        return Rejection(outcome[1], outcome[2], outcome[3])
    if outcome[0] != _OK:
        raise WorkerLost(f"an admission worker failed: {outcome[1]}")
    _ok, canonical, leaf, test_name, probe_cc, start, key_id = outcome
    if canonical is None:
        canonical = source
    elif isinstance(canonical, tuple):
        canonical = source[canonical[0] : canonical[1]]
    return Admitted(canonical, leaf, test_name, probe_cc, start, key_id)


if __name__ == "__main__":
    worker_main(int(sys.argv[1]))
