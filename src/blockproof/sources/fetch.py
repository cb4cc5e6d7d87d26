"""``blockproof fetch ooni``: OONI's public bucket to local files, resumable.

Theory of operation
-------------------

``fetch(request, out, client)`` runs in five steps; the decisions are sans-IO
(``ooni_bucket``), this module only does the I/O around them:

1. **Lock and manifest.** An exclusive lock (``.blockproof-fetch.lock``, ``flock``)
   keeps a second fetch out of the same folder. The manifest of earlier runs is read;
   an unreadable one is renamed ``.bad`` and every file on disk is then checked by
   its MD5 instead of being trusted. A manifest of another bucket is an error: the
   local layout has no room for two buckets.
2. **Listing.** Every folder of ``prefixes(request)`` is listed on its own, ``jobs`` at
   a time, each with the same bounded retries as downloads; ``select`` keeps the
   ``.jsonl.gz`` files and the postcans that have no twin.
3. **Plan.** Temporary files left by a crash are removed from the folders to write;
   each local file is stat'ed; ``plan`` says what each key needs.
4. **Work**, ``jobs`` at a time (a thread pool: the time goes into waiting on the
   network and the disk, and hashing and writing release the GIL): *verify* hashes
   the file already there and keeps it if its MD5 is the listed ETag (else it is
   downloaded); *download* streams the object into a temporary file beside its final
   name, counting its bytes (never more than listed) and hashing them, checks the size
   and, for a plain MD5 ETag, the MD5, fsyncs, renames and fsyncs the folder; a
   postcan is then converted to ``.jsonl.gz`` beside it (``postcan.convert_postcan``,
   which leaves an identical conversion untouched); *convert* only converts. A
   transient failure (network, 5xx, a short body, an MD5 mismatch) is retried up to
   ``attempts`` times in all, after ``backoff_delay`` (exponential, full jitter); a
   permanent one (404, 403) and a local write error fail the file at once.
   A failed file never stops the others: every file is tried, and the report lists
   the failures.
5. **Record.** Each finished file's size and ETag go into the manifest, written
   atomically every ``MANIFEST_EVERY`` seconds while the work goes on and at the end,
   also after an error or Ctrl-C. A file finished after the last write is not lost:
   the next run finds it complete on disk, unrecorded, and keeps it after checking
   its MD5 (``Action.VERIFY``) without rewriting it.

Resumability follows: a second run lists again, finds every file complete and writes
nothing (not even the manifest, when nothing changed). A file cut short (a crash of
another tool, a full disk) has another size than listed and is downloaded again.

Progress goes to ``on_progress`` (``Progress``: the phase, files and bytes done and
due), called from worker threads one at a time, so a caller may draw a bar from it.
Ctrl-C (``KeyboardInterrupt`` in the calling thread) stops the workers between
chunks, removes their temporary files, writes the manifest and re-raises.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockproof.errors import InputError
from blockproof.sources.files import atomic_file, remove_stale_temps, write_atomic
from blockproof.sources.ooni_bucket import (
    LOCK_NAME,
    MANIFEST_NAME,
    Action,
    Chosen,
    Converted,
    Entry,
    Kind,
    Listed,
    Local,
    Manifest,
    ManifestError,
    Request,
    Step,
    backoff_delay,
    md5_of_etag,
    plan,
    prefixes,
    select,
)
from blockproof.sources.postcan import convert_postcan
from blockproof.sources.s3 import (
    BucketClient,
    IntegrityError,
    PermanentError,
    TransientError,
    receive,
)

DEFAULT_JOBS = 8
MANIFEST_EVERY = 2.0  # seconds between two manifest writes while downloading
HASH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Options:
    jobs: int = DEFAULT_JOBS
    attempts: int = 5  # tries per file or folder, the first included
    backoff_base: float = 0.5  # seconds; the ceiling doubles with each retry
    backoff_cap: float = 30.0
    seed: int | None = None  # of the jitter, for tests


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # "listing" (folders) or "downloading" (files)
    done: int
    total: int
    bytes_done: int = 0
    bytes_total: int = 0


@dataclass(slots=True)
class FetchReport:
    folders: int = 0  # listed
    listed: int = 0  # files taken: .jsonl.gz, and postcans without a twin
    postcans: int = 0  # of which postcans
    twins: int = 0  # postcans left aside: their .jsonl.gz was taken
    ignored: int = 0  # other names in the folders
    complete: int = 0  # already complete on disk
    adopted: int = 0  # on disk without a record, kept after checking their MD5
    downloaded: int = 0
    bytes: int = 0  # downloaded
    converted: int = 0  # postcans written as .jsonl.gz
    lines: int = 0  # measurement lines in those conversions
    retries: int = 0
    stale_removed: int = 0  # temporary files of an earlier, interrupted run
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key or folder, why)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "folders": self.folders,
            "listed": self.listed,
            "postcans": self.postcans,
            "postcan_twins_left_aside": self.twins,
            "ignored": self.ignored,
            "complete": self.complete,
            "adopted": self.adopted,
            "downloaded": self.downloaded,
            "bytes": self.bytes,
            "converted": self.converted,
            "converted_lines": self.lines,
            "retries": self.retries,
            "stale_temporary_files_removed": self.stale_removed,
            "failed": [{"key": k, "reason": r} for k, r in self.failed],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


class _Stopped(Exception):
    """The run is stopping (Ctrl-C): leave the file, remove its temporary file."""


def local_path(out: Path, key: str) -> Path:
    """Where a key lives under ``out``: the same path (keys were checked by ``select``)."""
    return out.joinpath(*key.split("/"))


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    with open(out / LOCK_NAME, "a+b") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{out}: another fetch is writing there ({LOCK_NAME})") from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _read_manifest(out: Path, bucket: str, report: FetchReport) -> Manifest:
    path = out / MANIFEST_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Manifest(bucket)
    try:
        manifest = Manifest.from_bytes(data)
    except ManifestError as exc:
        aside = path.with_name(path.name + ".bad")
        os.replace(path, aside)
        report.notes.append(
            f"{path} was unreadable ({exc}); set aside as {aside.name}:"
            " files on disk are checked against the listed MD5 instead"
        )
        return Manifest(bucket)
    if manifest.bucket != bucket:
        raise InputError(
            f"{out} holds files of bucket {manifest.bucket!r}, not {bucket!r}: give another --out"
        )
    return manifest


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _local_state(out: Path, chosen: Chosen) -> Local:
    path = local_path(out, chosen.key)
    try:
        size: int | None = path.stat().st_size if path.is_file() else None
    except OSError:
        size = None
    converted_size = None
    if chosen.converted_name is not None:
        converted = path.with_name(chosen.converted_name)
        with contextlib.suppress(OSError):
            if converted.is_file():
                converted_size = converted.stat().st_size
    return Local(size, converted_size)


class _Run:
    """One fetch: the shared state of its workers."""

    def __init__(
        self,
        out: Path,
        client: BucketClient,
        manifest: Manifest,
        options: Options,
        report: FetchReport,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.out = out
        self.client = client
        self.manifest = manifest
        self.options = options
        self.report = report
        self.on_progress = on_progress
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.rng = random.Random(options.seed)
        self.dirty = False
        self.phase = "listing"
        self.done = 0
        self.total = 0
        self.bytes_done = 0
        self.bytes_total = 0

    # -- progress and bookkeeping (callers hold no lock) --

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.on_progress(
                Progress(self.phase, self.done, self.total, self.bytes_done, self.bytes_total)
            )

    def advance(self, files: int = 0, nbytes: int = 0, more_bytes: int = 0) -> None:
        with self.lock:
            self.done += files
            self.bytes_done += nbytes
            self.bytes_total += more_bytes
            self._emit()

    def fail(self, what: str, why: str) -> None:
        with self.lock:
            self.report.failed.append((what, why))

    def record(self, chosen: Chosen, converted: Converted | None) -> None:
        entry = Entry(chosen.listed.size, chosen.listed.etag, converted)
        with self.lock:
            self.manifest.files[chosen.key] = entry
            self.dirty = True

    def write_manifest(self) -> None:
        with self.lock:
            if not self.dirty:
                return
            data = self.manifest.to_bytes()
            self.dirty = False
        write_atomic(self.out / MANIFEST_NAME, data)

    def pause(self, attempt: int) -> None:
        with self.lock:
            self.report.retries += 1
            rand = self.rng.random()
        delay = backoff_delay(
            attempt, base=self.options.backoff_base, cap=self.options.backoff_cap, rand=rand
        )
        if self.stop.wait(delay):
            raise _Stopped

    # -- listing --

    def list_folder(self, prefix: str) -> list[Listed] | None:
        attempts = self.options.attempts
        for attempt in range(1, attempts + 1):
            if self.stop.is_set():
                raise _Stopped
            try:
                return self.client.list_folder(prefix)
            except PermanentError as exc:
                self.fail(prefix, str(exc))
                return None
            except TransientError as exc:
                if attempt == attempts:
                    self.fail(prefix, f"{exc} (after {attempts} attempts)")
                    return None
                self.pause(attempt)
        return None

    # -- files --

    def run_step(self, step: Step) -> None:
        """Verify, download and/or convert one file; failures are recorded, not raised."""
        chosen = step.chosen
        path = local_path(self.out, chosen.key)
        try:
            action = step.action
            if action is Action.VERIFY:
                if _file_md5(path) == md5_of_etag(chosen.listed.etag):
                    with self.lock:
                        self.report.adopted += 1
                    action = Action.CONVERT if chosen.kind is Kind.POSTCAN else Action.COMPLETE
                    if action is Action.COMPLETE:
                        self.record(chosen, None)
                else:
                    action = Action.DOWNLOAD
                    self.advance(more_bytes=chosen.listed.size)
            if action is Action.DOWNLOAD and not self.download(chosen, path):
                return
            if chosen.kind is Kind.POSTCAN and action in (Action.DOWNLOAD, Action.CONVERT):
                self.record(chosen, self.convert(chosen, path))
        except OSError as exc:
            self.fail(chosen.key, f"local file {exc.filename or path}: {exc.strerror or exc}")
        finally:
            self.advance(files=1)

    def download(self, chosen: Chosen, path: Path) -> bool:
        attempts = self.options.attempts
        for attempt in range(1, attempts + 1):
            if self.stop.is_set():
                raise _Stopped
            received = [0]
            try:
                self.download_once(chosen, path, received)
            except PermanentError as exc:
                self.advance(nbytes=-received[0])
                self.fail(chosen.key, str(exc))
                return False
            except (TransientError, IntegrityError) as exc:
                self.advance(nbytes=-received[0])
                if attempt == attempts:
                    self.fail(chosen.key, f"{exc} (after {attempts} attempts)")
                    return False
                self.pause(attempt)
                continue
            with self.lock:
                self.report.downloaded += 1
                self.report.bytes += received[0]
            if chosen.kind is Kind.JSONL:
                self.record(chosen, None)
            return True
        return False

    def download_once(self, chosen: Chosen, path: Path, received: list[int]) -> None:
        listed = chosen.listed
        body = self.client.open(chosen.key)
        if listed.etag is not None and body.etag is not None and body.etag != listed.etag:
            raise PermanentError(f"{chosen.key} changed in the bucket since it was listed")
        path.parent.mkdir(parents=True, exist_ok=True)

        def on_chunk(chunk: bytes) -> None:
            if self.stop.is_set():
                raise _Stopped
            received[0] += len(chunk)
            self.advance(nbytes=len(chunk))

        with atomic_file(path) as handle:
            receive(body, listed, handle, on_chunk)

    def convert(self, chosen: Chosen, path: Path) -> Converted:
        name = chosen.converted_name
        assert name is not None
        result = convert_postcan(path, path.with_name(name))
        with self.lock:
            self.report.converted += 1
            self.report.lines += result.lines
            if result.skipped:
                reasons = sorted({why for _, why in result.skipped})
                self.report.notes.append(
                    f"{chosen.key}: {len(result.skipped)} member(s) not converted"
                    f" ({'; '.join(reasons[:3])}); they stay in the postcan"
                )
            if result.broke_off:
                self.report.notes.append(
                    f"{chosen.key}: the postcan breaks off ({result.broke_off});"
                    f" {result.lines} measurement(s) read before the break"
                )
        return Converted(name, result.size, result.lines, len(result.skipped))


def _pump(futures: set[Future[None]], run: _Run) -> None:
    """Wait for every future, writing the manifest now and then; re-raise a bug."""
    last = time.monotonic()
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, timeout=MANIFEST_EVERY, return_when=FIRST_COMPLETED)
        for future in finished:
            exc = future.exception()
            if exc is not None and not isinstance(exc, _Stopped):
                raise exc
        if time.monotonic() - last >= MANIFEST_EVERY:
            run.write_manifest()
            last = time.monotonic()


def fetch(
    request: Request,
    out: Path,
    client: BucketClient,
    *,
    bucket: str,
    options: Options = Options(),
    on_progress: Callable[[Progress], None] | None = None,
) -> FetchReport:
    """Bring the asked files of ``bucket`` under ``out``; see the module's docstring."""
    started = time.monotonic()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: not a directory")
    out.mkdir(parents=True, exist_ok=True)
    report = FetchReport()
    with _locked(out):
        manifest = _read_manifest(out, bucket, report)
        run = _Run(out, client, manifest, options, report, on_progress)
        try:
            with ThreadPoolExecutor(max_workers=options.jobs) as pool:
                try:
                    _work(request, run, pool)
                except BaseException:
                    run.stop.set()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        finally:
            run.write_manifest()
    report.seconds = time.monotonic() - started
    return report


def _work(request: Request, run: _Run, pool: ThreadPoolExecutor) -> None:
    report = run.report
    folders = prefixes(request)
    report.folders = len(folders)
    run.phase, run.done, run.total = "listing", 0, len(folders)
    run.advance()
    listings: dict[str, list[Listed] | None] = {}

    def list_one(prefix: str) -> None:
        listings[prefix] = run.list_folder(prefix)
        run.advance(files=1)

    _pump({pool.submit(list_one, prefix) for prefix in folders}, run)

    chosen: list[Chosen] = []
    found_tests: set[str] = set()
    for prefix in folders:
        objects = listings.get(prefix)
        if objects is None:
            continue
        selection = select(prefix, objects)
        chosen.extend(selection.chosen)
        report.twins += selection.twins
        report.ignored += len(selection.ignored)
        if selection.chosen:
            found_tests.add(prefix.rstrip("/").rsplit("/", 1)[-1])
    report.listed = len(chosen)
    report.postcans = sum(c.kind is Kind.POSTCAN for c in chosen)
    for test in request.tests:
        name = test.replace("_", "")
        if name not in found_tests and not report.failed:
            report.notes.append(
                f"no {test} file in the asked days and countries"
                " (OONI's test names: web_connectivity, signal, telegram, whatsapp, ...)"
            )

    for directory in sorted({local_path(run.out, p) for p in folders}):
        report.stale_removed += remove_stale_temps(directory)
    local = {c.key: _local_state(run.out, c) for c in chosen}
    steps = plan(chosen, run.manifest.files, local)
    work: list[Step] = []
    for step in steps:
        if step.action is Action.COMPLETE:
            report.complete += 1
        elif step.action is Action.REFUSE:
            report.failed.append((step.chosen.key, step.reason))
        else:
            work.append(step)
    run.phase, run.done, run.total = "downloading", 0, len(work)
    run.bytes_done = 0
    run.bytes_total = sum(s.chosen.listed.size for s in work if s.action is Action.DOWNLOAD)
    run.advance()
    _pump({pool.submit(run.run_step, step) for step in work}, run)
