"""Collector benchmark: durable, acknowledged submissions per second on loopback.

Usage: python tests/bench/collector_bench.py [--write docs/benchmarks.md] [--requests N]

What is measured, side by side in one run, in one directory on one disk:

- **bare append**: the physical limit. ``concurrency`` records of the same size
  as the collector's (header + 10 KB measurement) written with one ``write``
  and made durable with one ``fdatasync``, again and again: what group commit
  at that concurrency could at best achieve with no HTTP, JSON, hashing,
  signatures or Merkle tree at all.
- **collector**: ``blockproof serve collector`` as its own process, fed by
  ``concurrency`` keep-alive connections from a small asyncio client that sends
  pre-built requests and times each answer. Variants: OONI's single
  submission (``POST /report/{id}``) unsigned and signed (the collector checks
  each Ed25519 signature), and our batch endpoint (``POST /measurements``,
  signed, 16 measurements per request). The collector runs its admission
  (parsing, canonical form, signature check) in worker processes beside the
  log writer (``collector.workers``); the "inline" variant turns them off
  (``BLOCKPROOF_COLLECTOR_WORKERS=0``), everything then running in one process.

CPU is counted for the collector's whole process tree (writer + workers) and,
separately, for the writer process alone.

Each variant runs ``--rounds`` times, interleaved; the table shows medians.
Every request loop is bounded in count (``--requests``) and time (``--seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from collector_kit import REPORT_ID, CollectorProcess, measurement  # noqa: E402

from blockproof.codec.jcs import canonicalize  # noqa: E402
from blockproof.collector.workers import WORKERS_ENV  # noqa: E402
from blockproof.custody.signing import sign_measurement  # noqa: E402

BEGIN = "<!-- collector:begin -->"
END = "<!-- collector:end -->"
SIZE = 10 * 1024
BATCH = 16


def bodies(count: int, *, signed: bool, offset: int, batch: int = 0) -> list[bytes]:
    """Distinct ~10 KB measurements as request bodies (bk-003 wrapper, or JSON lines)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    template = measurement(0, pad=1)
    pad = SIZE - len(canonicalize(template)) - (150 if signed else 0)
    out: list[bytes] = []
    lines: list[bytes] = []
    for i in range(offset, offset + count):
        m = measurement(i, pad=pad)
        if signed:
            m = sign_measurement(m, key)
        canonical = canonicalize(m)
        if batch:
            lines.append(canonical)
            if len(lines) == batch:
                out.append(b"\n".join(lines))
                lines = []
        else:
            out.append(b'{"format":"json","content":' + canonical + b"}")
    if lines:
        out.append(b"\n".join(lines))
    return out


@dataclass
class LoadResult:
    measurements: int
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu: float = 0.0  # CPU seconds used by the collector's processes during the run
    writer_cpu: float = 0.0  # ... by the writer (main) process alone

    @property
    def writer_cpu_per_measurement_us(self) -> float:
        return self.writer_cpu / max(1, self.measurements) * 1e6

    @property
    def cpu_per_measurement_us(self) -> float:
        return self.server_cpu / max(1, self.measurements) * 1e6

    @property
    def rate(self) -> float:
        return self.measurements / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _load(
    port: int, path: str, payloads: list[bytes], per: int, concurrency: int, seconds: float
) -> LoadResult:
    queue = list(reversed(payloads))
    latencies: list[float] = []
    errors = 0
    done = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors, done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue and time.monotonic() < deadline:
                body = queue.pop()
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + body)
                status_line = await reader.readline()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if b" 200 " in status_line:
                    done += per
                else:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(done, time.perf_counter() - started, latencies, errors)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of ``pid`` and its living children (the admission workers), and of ``pid``."""
    own = process_cpu(pid)
    total = own
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            children += (task / "children").read_text().split()
    for child in children:
        with contextlib.suppress(OSError):  # a child that exited meanwhile
            total += process_cpu(int(child))
    return total, own


def run_collector(
    directory: Path, payloads: list[bytes], *, path: str, per: int, concurrency: int,
    seconds: float, workers: int | None = None,
) -> LoadResult:  # fmt: skip
    data = Path(tempfile.mkdtemp(prefix="collector-", dir=directory))
    collector = CollectorProcess(data)
    saved = os.environ.get(WORKERS_ENV)
    if workers is not None:
        os.environ[WORKERS_ENV] = str(workers)
    try:
        collector.start()
    finally:
        os.environ.pop(WORKERS_ENV, None)
        if saved is not None:
            os.environ[WORKERS_ENV] = saved
    try:
        import uvloop

        assert collector.proc is not None
        time.sleep(0.5)  # let the workers finish importing (their start-up is not the load)
        total0, own0 = tree_cpu(collector.proc.pid)
        result = uvloop.run(_load(collector.port, path, payloads, per, concurrency, seconds))
        total1, own1 = tree_cpu(collector.proc.pid)
        result.server_cpu, result.writer_cpu = total1 - total0, own1 - own0
        return result
    finally:
        collector.stop()
        shutil.rmtree(data, ignore_errors=True)


def bare_append(directory: Path, record: bytes, *, count: int, concurrency: int) -> LoadResult:
    path = directory / "bare.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    batch = record * concurrency
    latencies: list[float] = []
    started = time.perf_counter()
    written = 0
    try:
        while written < count:
            t0 = time.perf_counter()
            os.write(fd, batch)
            os.fdatasync(fd)
            latencies.extend([time.perf_counter() - t0] * concurrency)
            written += concurrency
    finally:
        os.close(fd)
        path.unlink()
    return LoadResult(written, time.perf_counter() - started, latencies, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", type=Path, help="Update this markdown file's section.")
    parser.add_argument("--requests", type=int, default=12_000, help="Measurements per run.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Time bound per run.")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="On the disk to measure.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix=".collector-bench-", dir=args.dir))
    n, c = args.requests, args.concurrency
    single = f"/report/{REPORT_ID}"
    record = b"h" * 120 + canonicalize(measurement(0, pad=SIZE - 900)) + b"x" * 16
    variants: dict[str, tuple[str, bool, int | None] | None] = {
        "bare append (write + fdatasync per 32)": None,
        "collector, bk-003 single, unsigned": ("single", False, None),
        "collector, bk-003 single, signed": ("single", True, None),
        f"collector, batch of {BATCH}, signed": ("batch", True, None),
        "collector, bk-003 single, signed, inline (no workers)": ("single", True, 0),
        f"collector, batch of {BATCH}, signed, inline (no workers)": ("batch", True, 0),
    }
    results: dict[str, list[LoadResult]] = {name: [] for name in variants}
    offset = 0
    try:
        for round_no in range(args.rounds):
            for name, spec in variants.items():
                if spec is None:
                    result = bare_append(work, record, count=n, concurrency=c)
                else:
                    kind, signed, workers = spec
                    batch = BATCH if kind == "batch" else 0
                    payloads = bodies(n, signed=signed, offset=offset, batch=batch)
                    offset += n
                    result = run_collector(
                        work, payloads, path=single if kind == "single" else "/measurements",
                        per=batch or 1, concurrency=c, seconds=args.seconds, workers=workers,
                    )  # fmt: skip
                results[name].append(result)
                print(
                    f"round {round_no + 1} {name}: {result.rate:,.0f}/s "
                    f"p50 {result.pct(0.5):.1f} ms p99 {result.pct(0.99):.1f} ms "
                    f"collector CPU {result.cpu_per_measurement_us:.0f} us/measurement "
                    f"(writer {result.writer_cpu_per_measurement_us:.0f}) "
                    f"errors {result.errors}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    bare_rate = statistics.median(r.rate for r in results[next(iter(variants))])
    rows = []
    for name, runs in results.items():
        rate = statistics.median(r.rate for r in runs)
        p50 = statistics.median(r.pct(0.5) for r in runs)
        p99 = statistics.median(r.pct(0.99) for r in runs)
        errors = sum(r.errors for r in runs)
        cpu = statistics.median(r.cpu_per_measurement_us for r in runs)
        writer = statistics.median(r.writer_cpu_per_measurement_us for r in runs)
        cpu_text = f"{cpu:.0f} | {writer:.0f}" if runs[0].server_cpu else "- | -"
        rows.append(
            f"| {name} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {bare_rate / rate:.2f} "
            f"| {cpu_text} | {errors} |"
        )
    table = "\n".join(
        [
            f"_Measured {datetime.now(UTC):%Y-%m-%d} with `python tests/bench/collector_bench.py "
            f"--write docs/benchmarks.md`: {n:,} measurements of ~10 KB per run, concurrency "
            f"{c}, {args.rounds} interleaved rounds, medians; loopback, one disk._",
            "",
            "| variant | durable acknowledged measurements/s | p50 latency (ms) "
            "| p99 latency (ms) | bare append / this | collector CPU per measurement (µs), "
            "all processes | of which the log writer process (µs) | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(table)
    if args.write:
        old = args.write.read_text()
        section = f"{BEGIN}\n{table}\n{END}"
        if BEGIN in old:
            new = old[: old.index(BEGIN)] + section + old[old.index(END) + len(END) :]
        else:
            new = old.rstrip("\n") + "\n\n" + section + "\n"
        args.write.write_text(new)


if __name__ == "__main__":
    main()
