"""`blockproof ingest`: raw measurement files into the store, streaming, on every core.

Theory of operation (one reader, N workers, one committer):

1. ``discover`` expands the paths into measurement files (``.json``,
   ``.jsonl``, ``.json.gz``, ``.jsonl.gz``, in folders recursively); an
   ``s3://BUCKET/PREFIX`` path is listed (``sources.objects``) and its objects
   downloaded into the staging area (by threads of the reader, a few ahead of the
   workers; on Spark by the executors), then read as local files.
2. The **reader** (the parent process) hashes each file (SHA-256, its name in
   the store's ``sources/``; files ingested whole before are skipped, see below;
   the next file is hashed on a thread while the workers judge this one), then
   turns it into tasks on a bounded queue (``_tasks``): a plain JSON-lines file
   becomes byte ranges of whole lines (about ``CHUNK_BYTES``) that the workers
   read themselves, so one big file is spread over every core and no record's
   bytes cross a pipe (the reader only counts line breaks, for the line numbers);
   a gzipped file is one task, decompressed by its worker (OONI's bucket is many
   small files); ``.json`` documents (one object or an array) are parsed by the
   reader and their records passed on re-encoded.
3. **Workers** (forked processes, ``--jobs``, default one per core) parse each
   line with orjson, skip measurements whose id the store already holds (the
   set is inherited from the parent at fork, never copied; so is the compiled
   fingerprint matcher), and feed the rest to an ``Extractor`` (decode, judge,
   tabulate). When a worker holds ``batch`` measurements (and at the end) it
   writes them as Parquet under ``.staging`` and reports the batch: ids, files,
   and the source files its rows point to. With ``engine="spark"`` the same
   ``Worker`` runs as Spark tasks, one per partition of the tasks
   (``_spark_workers``), and the driver commits their batches as below.
4. A line that is not a measurement (bad JSON, not an object, no time, no test
   name, or a record the extractor cannot handle) is counted and written by the
   worker to ``rejects/<run>-<worker>.jsonl`` with its source, line number and
   reason: never a crash, never silently dropped.
5. The **committer** (the parent again) drops rows of measurements that an
   earlier batch of the same run already holds (the same data given twice),
   keeps the batch's source files whole in ``sources/`` (a hard link when
   possible), then moves the batch's files into place (``Store.commit``).
   Re-ingesting the same data therefore adds nothing.

Memory is bounded by the queue (``2 x jobs`` chunks) and the workers' batches.
Progress is the number of input bytes read, reported to ``on_progress``.

Skipping files ingested whole (``_Triage``; the store's ``ingested.json``):

* A file is identified by the path it was given as (resolved), its size and the
  SHA-256 of its bytes. When a run has finished (every batch committed), each file
  it read is recorded with its size and modification time as they were before it
  was hashed, provided they are still the same (a file that changed while it was
  read is not recorded, so it is read again next time). An interrupted run
  records nothing: its files are read again, and the measurements it had already
  committed are skipped by their ids.
* The next run skips a file without reading it when its path is recorded with the
  same size and modification time (ns), like rsync and make; the time is trusted
  only if it was more than ``IngestedFile.RACY_NS`` (2 s) older than the check, as
  a write in the same tick of a coarse clock could leave it unchanged (git's "racy
  clean" rule). Otherwise the file is hashed: the same bytes as any file ingested
  whole (a touched, copied or renamed file) are skipped too, and recorded under the
  new path and time; different bytes (lines appended, a file republished) are read
  again whole, and the measurements already stored are skipped by their ids (a
  stored measurement is never replaced), so nothing is stored twice.
* ``reread`` (``--reread``) reads every file regardless. Skipped files count in
  ``IngestReport.skipped``; with nothing to read, no worker is started and the
  store's ids are not even loaded, so ingesting an unchanged tree costs a ``stat``
  per file.
* Bad lines of a file read again are kept again in the new run's ``rejects/``.
"""

from __future__ import annotations

import functools
import gc
import gzip
import hashlib
import multiprocessing as mp
import os
import queue
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from blockproof.codec.jsonl import BadRecord, iter_json_objects
from blockproof.pipeline.extract import (
    Extractor,
    RecordError,
    Source,
    measurement_id,
    parse_time_us,
)
from blockproof.pipeline.schema import TABLES
from blockproof.pipeline.store import IngestedFile, Store
from blockproof.sources import objects
from blockproof.sources.ooni_bucket import DEFAULT_REGION
from blockproof.verdict.fingerprints import FingerprintDB

MAX_REJECT_TEXT = 1 << 20  # a rejected line is kept up to 1 MiB
DEFAULT_BATCH = 20_000
INGEST_ENGINES = ("local", "spark")
CHUNK_BYTES = 4 << 20
DOWNLOADS = 4  # objects of s3:// paths downloaded at once by a local ingest


class IngestError(RuntimeError):
    """Bad arguments: a path that does not exist, no measurement files found."""


PathLike = str | os.PathLike[str]


def split_urls(paths: Iterable[PathLike]) -> tuple[list[PathLike], list[str]]:
    """(local paths, ``s3://`` URLs), each in the order given."""
    local: list[PathLike] = []
    urls: list[str] = []
    for raw in paths:
        if isinstance(raw, str) and objects.is_url(raw):
            urls.append(raw)
        else:
            local.append(raw)
    return local, urls


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The measurement files under ``paths`` (local ones), sorted, each once."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and objects.is_measurement_name(child.name):
                    found[child.resolve()] = None
        elif path.is_file():
            found[path.resolve()] = None
        else:
            raise IngestError(f"{path}: no such file or directory")
    return list(found)


@dataclass(slots=True)
class IngestReport:
    files: int = 0
    bytes: int = 0
    read: int = 0
    new: int = 0
    duplicate: int = 0
    bad: int = 0
    skipped: int = 0  # files ingested whole before, met again unchanged: not read
    skipped_bytes: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    rejects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "read": self.read,
            "new": self.new,
            "duplicate": self.duplicate,
            "bad": self.bad,
            "skipped": self.skipped,
            "skipped_bytes": self.skipped_bytes,
            "seconds": round(self.seconds, 3),
            "bad_reasons": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1])),
            "rejects": self.rejects,
        }

    def count_bad(self, reason: str) -> None:
        self.bad += 1
        short = reason.split(":", 1)[0]
        self.reasons[short] = self.reasons.get(short, 0) + 1


# -- reading files -------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_document(path: Path) -> bool:
    """A ``.json`` file holds one document (object or array), not JSON lines."""
    return path.name.lower().removesuffix(".gz").endswith(".json")


def _lines(fileobj: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, stripped line) of a JSON-lines stream, gzipped or not; blank lines
    skipped. A stream that breaks off raises EOFError/OSError after the lines read."""
    head = fileobj.read(2)
    fileobj.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=fileobj) if head == b"\x1f\x8b" else fileobj  # type: ignore[assignment]
    for number, line in enumerate(stream, 1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def read_records(path: Path, fileobj: IO[bytes]) -> Iterator[tuple[int, bytes | None, Any]]:
    """(line number, raw line, parsed object or BadRecord) for every record of a file.

    Used where one process reads a file alone (re-judging); ``ingest`` splits the
    same work between its reader and its workers."""
    if is_document(path):
        bad: list[BadRecord] = []
        for ordinal, obj in enumerate(iter_json_objects(str(path), on_error=bad.append), 1):
            while bad:
                error = bad.pop(0)
                yield error.line, None, error
            yield ordinal, None, obj  # a document's records are numbered, not lines
        for error in bad:
            yield error.line, None, error
        return
    number = 0
    try:
        for number, line in _lines(fileobj):
            try:
                yield number, line, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, line, BadRecord(str(path), number, f"not JSON: {exc}")
    except (EOFError, OSError) as exc:
        yield number + 1, None, BadRecord(str(path), number + 1, f"file breaks off: {exc}")


# -- worker side ---------------------------------------------------------------------

# What a worker is given (None: no more work, flush and stop):
# ("lines", path, sha256, [(line number, bytes)]): records the reader cut (.json documents);
# ("range", path, sha256, start, end, first line number): bytes [start, end) of a plain
#   JSON-lines file, whole lines, read by the worker itself;
# ("file", path, sha256): a whole gzipped JSON-lines file, decompressed by the worker;
# ("from", URL, task): a task of a downloaded object's local copy (rejects name the URL);
# ("object", URL, "", RemoteFile): an object to download, then read (Spark's executors).
Task = tuple[Any, ...] | None

_KNOWN: set[str] = set()


class _Rejects:
    def __init__(self, store: Store, run: str, worker: int) -> None:
        self.path = store.rejects / f"{run}-{worker}.jsonl"
        self._file: IO[bytes] | None = None
        self.origins: dict[str, str] = {}  # a downloaded object's local path -> its URL

    def add(self, source: str, line: int, reason: str, raw: bytes | None) -> None:
        source = self.origins.get(source, source)
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        text = None if raw is None else raw[:MAX_REJECT_TEXT].decode("utf-8", "replace")
        record = {"source": source, "line": line, "reason": reason, "text": text}
        self._file.write(orjson.dumps(record) + b"\n")

    def close(self) -> str | None:
        if self._file is None:
            return None
        self._file.close()
        return str(self.path)


def peek_id(obj: dict[str, Any]) -> str | None:
    """The msm_id a record will get, without extracting it (None if it cannot be placed)."""
    try:
        time_us = parse_time_us(obj.get("measurement_start_time"))
    except RecordError:
        return None
    cc_value = obj.get("probe_cc")
    cc = cc_value.upper() if isinstance(cc_value, str) and len(cc_value) == 2 else "ZZ"
    test_name = obj.get("test_name")
    if not isinstance(test_name, str):
        return None
    return measurement_id(obj, time_us, cc, test_name)


class Receipts:
    """A collector export's receipts, line for line beside its measurement files
    (``X.jsonl.gz`` and ``X.receipts.jsonl.gz``), each completed with the export's signed
    tree head (``tree-head.json`` at the export's root, above DAY/CC/TEST), so that every
    stored receipt can be checked on its own. Read once per file, on first need."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.lines: list[bytes] = []

    def receipt(self, path: str, line: int) -> bytes | None:
        if path != self.path:
            self.path, self.lines = path, self._load(Path(path))
        return self.lines[line - 1] if 0 < line <= len(self.lines) else None

    @staticmethod
    def _load(path: Path) -> list[bytes]:
        if not path.name.endswith(".jsonl.gz"):
            return []
        sibling = path.with_name(path.name.removesuffix(".jsonl.gz") + objects.NOT_MEASUREMENTS[0])
        heads = [p / "tree-head.json" for p in path.parents[:4]]
        head_path = next((h for h in heads if h.is_file()), None)
        if not sibling.is_file() or head_path is None:
            return []
        try:
            head = orjson.loads(head_path.read_bytes())
            with gzip.open(sibling, "rb") as f:
                return [
                    orjson.dumps({**orjson.loads(text), "tree_head": head})
                    for text in f
                    if text.strip()
                ]
        except (OSError, EOFError, orjson.JSONDecodeError, TypeError):
            return []  # unreadable receipts: the measurements stand alone, without proofs


# The integer columns of each table and the values they hold: a value out of range
# (a port of 2**40, an ASN of 30 digits) would fail the whole batch when it is written.
_INT_RANGES: dict[str, list[tuple[str, int, int]]] = {
    table: [
        (f.name, -(2 ** (f.type.bit_width - 1)), 2 ** (f.type.bit_width - 1) - 1)
        for f in table_schema
        if pa.types.is_signed_integer(f.type)
    ]
    for table, table_schema in TABLES.items()
}


def _out_of_range(extractor: Extractor, mark: dict[str, int]) -> str | None:
    """Where the rows added since ``mark`` hold an integer their column cannot."""
    for table, columns in extractor.tables.items():
        start = mark[table]
        if len(columns) == start:
            continue
        for name, low, high in _INT_RANGES[table]:
            for value in columns.data[name][start:]:
                if value is not None and not low <= value <= high:
                    return f"{table}.{name}: {value} is out of range"
    return None


def _rollback(extractor: Extractor, mark: dict[str, int], added: bool) -> None:
    """Remove the rows added since ``mark`` (one measurement's, kept or half-made)."""
    for table, columns in extractor.tables.items():
        for column in columns.data.values():
            del column[mark[table] :]
    if added:
        extractor.count -= 1


class Worker:
    """The state of one worker process: its extractor, batch, counters and rejects."""

    def __init__(self, store: Store, run: str, index: int, batch: int) -> None:
        self.store = store
        self.run = run
        self.index = index
        self.batch = batch
        self.extractor = Extractor()
        self.receipts = Receipts()
        self.rejects = _Rejects(store, run, index)
        self.ids: list[str] = []
        self.sources: dict[str, str] = {}  # sha256 -> path of the files the batch points to
        self.flushes = 0
        self.seen: set[str] = set()
        self.counts = {"read": 0, "new": 0, "duplicate": 0}
        self.reasons: dict[str, int] = {}
        self.fetched: list[dict[str, Any]] = []  # the objects downloaded and read (s3://)

    def reject(self, source: str, line: int, reason: str, raw: bytes | None) -> None:
        short = reason.split(":", 1)[0]
        self.reasons[short] = self.reasons.get(short, 0) + 1
        self.rejects.add(source, line, reason, raw)

    def take(self, task: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Do one task; the batches it filled."""
        kind, path, sha256 = task[:3]
        if kind == "object":
            return self._object(task[3])
        if kind == "from":  # ("from", URL, task of the object's local copy)
            self.rejects.origins[sha256[1]] = path
            return self.take(sha256)
        done: list[dict[str, Any]] = []
        if kind == "lines":
            lines: Iterable[tuple[int, bytes]] = task[3]
        elif kind == "range":
            lines = self._range(path, *task[3:])
        else:
            lines = self._file(path)
        chunk: list[tuple[int, bytes]] = []
        size = 0
        for number, raw in lines:
            chunk.append((number, raw))
            size += len(raw)
            if size >= CHUNK_BYTES:
                if (batch := self.feed(path, sha256, chunk)) is not None:
                    done.append(batch)
                chunk, size = [], 0
        if chunk and (batch := self.feed(path, sha256, chunk)) is not None:
            done.append(batch)
        return done

    def _object(self, item: objects.RemoteFile) -> list[dict[str, Any]]:
        """Download an object (``_download``), then read it as a file (Spark's executors
        do this; a local ingest downloads in the parent, see ``ingest``)."""
        got = _download(self.store, f"{self.run}-{self.index}-{len(self.fetched)}", item)
        if isinstance(got, str):
            self.counts["read"] += 1
            self.reject(item.url, 0, got, None)
            return []
        self.fetched.append(got)
        self.rejects.origins[got["path"]] = item.url
        # the tasks a local file becomes (a document is parsed here, not read as lines)
        found = IngestReport()
        done: list[dict[str, Any]] = []
        for task, _position in _tasks(Path(got["path"]), got["sha256"], self.rejects, found):
            done.extend(self.take(task))
        self.counts["read"] += found.read
        for reason, count in found.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        return done

    def end(self) -> dict[str, Any]:
        """The last message: counters, reasons, where the rejects went, objects read."""
        return {
            "counts": self.counts,
            "reasons": self.reasons,
            "rejects": self.rejects.close(),
            "fetched": self.fetched,
        }

    def _range(self, path: str, start: int, end: int, first: int) -> Iterator[tuple[int, bytes]]:
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), end - start, start)
        for number, line in enumerate(data.split(b"\n"), first):
            stripped = line.strip()
            if stripped:
                yield number, stripped

    def _file(self, path: str) -> Iterator[tuple[int, bytes]]:
        number = 0
        with open(path, "rb") as f:
            try:
                for number, line in _lines(f):
                    yield number, line
            except (EOFError, OSError) as exc:
                self.counts["read"] += 1
                self.reject(path, number + 1, f"file breaks off: {exc}", None)

    def feed(self, path: str, sha256: str, lines: list[tuple[int, bytes]]) -> dict[str, Any] | None:
        name = Path(path).name
        for number, raw in lines:
            self.counts["read"] += 1
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                self.reject(path, number, f"not JSON: {exc}", raw)
                continue
            if not isinstance(obj, dict):
                self.reject(path, number, f"not a JSON object: {type(obj).__name__}", raw)
                continue
            mark = {table: len(columns) for table, columns in self.extractor.tables.items()}
            try:
                msm_id = peek_id(obj)
                if msm_id is not None and (msm_id in _KNOWN or msm_id in self.seen):
                    self.counts["duplicate"] += 1
                    continue
                receipt = self.receipts.receipt(path, number)
                msm_id = self.extractor.add(obj, Source(name, sha256, number, raw, receipt))
            except RecordError as exc:
                _rollback(self.extractor, mark, added=False)
                self.reject(path, number, f"not a measurement: {exc}", raw)
                continue
            except Exception as exc:
                _rollback(self.extractor, mark, added=False)
                self.reject(
                    path, number, f"unreadable measurement: {type(exc).__name__}: {exc}", raw
                )
                continue
            problem = _out_of_range(self.extractor, mark)
            if problem is not None:
                _rollback(self.extractor, mark, added=True)
                self.reject(path, number, f"unreadable measurement: {problem}", raw)
                continue
            self.seen.add(msm_id)
            self.ids.append(msm_id)
            self.sources[sha256] = path
            self.counts["new"] += 1
        return self.flush() if self.extractor.count >= self.batch else None

    def flush(self) -> dict[str, Any] | None:
        if self.extractor.count == 0:
            return None
        tables = self.extractor.take()
        files = self.store.stage(tables, f"{self.run}-{self.index}-{self.flushes}")
        self.flushes += 1
        out = {"ids": self.ids, "files": [str(f) for f in files], "sources": self.sources}
        self.ids, self.sources = [], {}
        return out


def _download(store: Store, tag: str, item: objects.RemoteFile) -> dict[str, Any] | str:
    """An object into the store's staging area, under its own name (so that rows name it
    as a local ingest of the fetched file would; kept in ``sources/`` at commit like any
    input): what ``ingested.json`` will record of it, or why it could not be read."""
    checked_ns = time.time_ns()
    try:
        got = objects.download(item, store.staging / "objects" / tag)
    except objects.ObjectError as exc:
        return f"object unreadable: {exc}"
    listed = item.listed
    return {
        "url": item.url, "size": listed.size, "etag": listed.etag, "sha256": got.sha256,
        "checked_ns": checked_ns, "path": str(got.path),
    }  # fmt: skip


def _worker_main(
    store_root: str, run: str, index: int, batch: int, tasks: Any, results: Any
) -> None:
    worker = Worker(Store(store_root), run, index, batch)
    try:
        while (task := tasks.get()) is not None:
            for done in worker.take(task):
                results.put(("batch", index, done))
        last = worker.flush()
        if last is not None:
            results.put(("batch", index, last))
        results.put(("end", index, worker.end()))
    except BaseException as exc:  # report, never hang the parent
        results.put(("error", index, f"{type(exc).__name__}: {exc}"))
        raise


# -- parent side ---------------------------------------------------------------------


class _Committer:
    def __init__(self, store: Store, report: IngestReport) -> None:
        self.store = store
        self.report = report
        self.seen: set[str] = set()  # ids committed by this run (workers skip the store's)

    def batch(self, done: dict[str, Any]) -> None:
        ids = set(done["ids"])
        files = [Path(f) for f in done["files"]]
        again = ids & self.seen
        if again:  # the same measurement came twice in this run (e.g. a file given twice)
            self.store.drop_rows(files, again)
            self.report.new -= len(again)
            self.report.duplicate += len(again)
        self.seen |= ids
        for sha256, path in done["sources"].items():
            self.store.keep_source(Path(path), sha256)
        self.store.commit(files)


@dataclass(slots=True)
class _ToRead:
    """A file to read, as it was before it was hashed (recorded if still so at the end)."""

    path: Path
    sha256: str
    size: int
    mtime_ns: int
    checked_ns: int


class _Triage:
    """Which files to read: the files a finished run read whole, met again unchanged, are
    skipped (module docstring, "Skipping files ingested whole")."""

    def __init__(self, store: Store, report: IngestReport, reread: bool) -> None:
        self.report = report
        self.known = {} if reread else store.ingested()
        self.whole = {f.sha256 for f in self.known.values()}
        self.refreshed: dict[str, IngestedFile] = {}  # the same bytes, under a new size/time

    def unchanged_by_stat(self, path: Path) -> bool:
        st = path.stat()
        known = self.known.get(str(path))
        return known is not None and known.unchanged(st.st_size, st.st_mtime_ns)

    def hash(self, path: Path) -> _ToRead | None:
        """The file to read, or None (and recorded under its new time) when its bytes are
        those of a file ingested whole."""
        return self.hashed(path, *_hash_stat(path))

    def hashed(
        self, path: Path, sha256: str, size: int, mtime_ns: int, checked_ns: int
    ) -> _ToRead | None:
        """``hash``, given the file's SHA-256 and its stat before hashing (``_hash_stat``)."""
        todo = _ToRead(path, sha256, size, mtime_ns, checked_ns)
        if todo.sha256 not in self.whole:
            return todo
        self.refreshed[str(path)] = IngestedFile(
            str(path), todo.size, todo.mtime_ns, todo.sha256, checked_ns
        )
        self.skip(todo.size)
        return None

    def skip(self, size: int) -> None:
        self.report.skipped += 1
        self.report.skipped_bytes += size

    def unchanged_object(self, item: objects.RemoteFile) -> bool:
        """An object read whole by an earlier run, listed now with the same size and ETag."""
        known = self.known.get(item.url)
        return (
            known is not None
            and known.etag is not None
            and (known.size, known.etag) == (item.listed.size, item.listed.etag)
        )

    def record(self, store: Store, read: list[_ToRead], fetched: list[dict[str, Any]]) -> None:
        """After a finished run: the files read whole, unless one changed meanwhile, and
        the objects downloaded and read (by URL, size and ETag)."""
        entries = dict(self.refreshed)
        for o in fetched:
            entries[o["url"]] = IngestedFile(
                o["url"], o["size"], 0, o["sha256"], o["checked_ns"], etag=o["etag"]
            )
        for f in read:
            try:
                st = f.path.stat()
            except OSError:
                continue
            if (st.st_size, st.st_mtime_ns) == (f.size, f.mtime_ns):
                entries[str(f.path)] = IngestedFile(
                    str(f.path), f.size, f.mtime_ns, f.sha256, f.checked_ns
                )
        store.record_ingested(entries)


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    store: Store,
    *,
    jobs: int | None = None,
    batch: int = DEFAULT_BATCH,
    reread: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    engine: str = "local",
    spark_master: str | None = None,
    s3_region: str = DEFAULT_REGION,
    s3_endpoint: str | None = None,
) -> IngestReport:
    """Ingest files into ``store``; ``on_progress(bytes_done, bytes_total)`` is called often.

    A path may be an ``s3://BUCKET/PREFIX`` URL: every measurement file under it is
    downloaded (``sources.objects``; ``s3_region``, and ``s3_endpoint`` for an
    S3-compatible server; by threads of this process, a few ahead of the workers, or on
    Spark by the executors) and ingested like a local one. An object read whole
    before and listed again with the same size and ETag is skipped without download.

    Files ingested whole by an earlier run and unchanged are skipped (``reread`` reads
    every file again; measurements already stored are skipped all the same).

    ``engine="spark"`` runs the same workers as Spark tasks (``spark_master``, default
    ``local[*]``; see ``_spark_workers``): the same tasks, batches, commits and store."""
    if engine not in INGEST_ENGINES:
        raise IngestError(f"unknown engine {engine!r}: choose one of {', '.join(INGEST_ENGINES)}")
    started = time.perf_counter()
    local_paths, urls = split_urls(paths)
    files = discover(local_paths)
    remote = _list_objects(urls, s3_region, s3_endpoint)
    if not files and not remote:
        where = " under " + ", ".join(urls) if urls and not local_paths else ""
        raise IngestError(f"no measurement files (.json, .jsonl, .json.gz, .jsonl.gz) found{where}")
    report = IngestReport(files=len(files) + len(remote))
    sizes = {p: p.stat().st_size for p in files}
    report.bytes = sum(sizes.values()) + sum(r.listed.size for r in remote)
    store.root.mkdir(parents=True, exist_ok=True)
    store.clean_staging()
    store.table_dir("measurements").mkdir(parents=True, exist_ok=True)
    triage = _Triage(store, report, reread)
    candidates: list[Path] = []
    for path in files:
        if triage.unchanged_by_stat(path):
            triage.skip(sizes[path])
        else:
            candidates.append(path)
    remote_todo: list[objects.RemoteFile] = []
    for item in remote:
        if triage.unchanged_object(item):  # never with ``reread``: nothing is known then
            triage.skip(item.listed.size)
        else:
            remote_todo.append(item)
    total = sum(sizes[p] for p in candidates) + sum(r.listed.size for r in remote_todo)
    run = store.new_run()
    busy = bool(candidates or remote_todo)
    spark = _spark_session(spark_master) if engine == "spark" and busy else None
    default_jobs = spark.sparkContext.defaultParallelism if spark is not None else os.cpu_count()
    jobs = max(1, jobs or default_jobs or 1)
    ctx = mp.get_context("fork")
    tasks: Any = ctx.Queue(maxsize=2 * jobs)
    results: Any = ctx.Queue()
    workers: list[Any] = []  # started with the first file to read
    committer = _Committer(store, report)
    ended = 0
    done_bytes = 0
    fetched: list[dict[str, Any]] = []  # the objects the workers downloaded and read

    def start_workers() -> None:
        global _KNOWN
        _KNOWN = store.known_ids()  # inherited by the forked workers
        FingerprintDB.default()  # compiled once here, inherited by every worker
        workers.extend(
            ctx.Process(
                target=_worker_main,
                args=(str(store.root), run, i, batch, tasks, results),
                daemon=True,
            )
            for i in range(jobs)
        )
        # The workers are forked: what the parent allocated stays out of their garbage
        # collector (collected here first, then frozen), so that a worker never frees an
        # object of the parent's native libraries (Arrow, DuckDB), whose allocators and
        # threads a fork does not carry over (a worker crashed so after in-process
        # analyses).
        gc.collect()
        gc.freeze()
        try:
            for w in workers:
                w.start()
        finally:
            gc.unfreeze()

    def handle(kind: str, payload: Any) -> None:
        nonlocal ended
        if kind == "batch":
            report.new += len(payload["ids"])
            committer.batch(payload)
        elif kind == "end":
            ended += 1
            # "new" is counted per committed batch, net of same-run duplicates
            report.read += payload["counts"]["read"]
            report.duplicate += payload["counts"]["duplicate"]
            for reason, count in payload["reasons"].items():
                report.reasons[reason] = report.reasons.get(reason, 0) + count
                report.bad += count
            if payload["rejects"]:
                report.rejects.append(payload["rejects"])
            fetched.extend(payload["fetched"])
        else:
            raise RuntimeError(f"an ingest worker failed: {payload}")

    def drain(block: bool) -> None:
        while True:
            try:
                kind, _index, payload = results.get(block=block, timeout=0.2 if block else None)
            except queue.Empty:
                return
            handle(kind, payload)
            if block:  # one message was waited for; the caller decides whether to wait again
                return

    def put(task: Task) -> None:
        while True:
            try:
                tasks.put(task, timeout=0.2)
                return
            except queue.Full:
                drain(block=False)
                dead = [w for w in workers if not w.is_alive()]
                if dead:
                    drain(block=False)
                    codes = ", ".join(str(w.exitcode) for w in dead)
                    raise RuntimeError(f"an ingest worker died (exit code {codes})") from None

    reader_rejects = _Rejects(store, run, jobs)  # the reader's own: broken files, bad documents
    read: list[_ToRead] = []
    # files are hashed one ahead, on a thread (hashlib lets go of the GIL), while the
    # workers judge the one before
    spark_tasks: list[tuple[Any, ...]] = []
    hasher = ThreadPoolExecutor(1, thread_name_prefix="ingest-hash")
    hashed = [hasher.submit(_hash_stat, path) for path in candidates]
    downloader = ThreadPoolExecutor(DOWNLOADS, thread_name_prefix="ingest-download")
    downloads: deque[tuple[objects.RemoteFile, Future[dict[str, Any] | str]]] = deque()
    try:
        for path, pending in zip(candidates, hashed, strict=True):
            todo = triage.hashed(path, *pending.result())
            if todo is None:  # the bytes of a file ingested whole, under another name or time
                done_bytes += sizes[path]
                continue
            read.append(todo)
            if spark is not None:  # every task first, then one Spark job (below)
                spark_tasks.extend(t for t, _ in _tasks(path, todo.sha256, reader_rejects, report))
                done_bytes += sizes[path]
                continue
            if not workers:
                start_workers()
            for task, position in _tasks(path, todo.sha256, reader_rejects, report):
                put(task)
                drain(block=False)
                if on_progress:
                    on_progress(done_bytes + position, total)
            done_bytes += sizes[path]
            if on_progress:
                on_progress(done_bytes, total)
        # Objects: Spark's executors download their own; a local ingest downloads here,
        # on threads, ahead of the workers, which never touch the object store's client
        # (its runtime's threads do not survive a fork: a worker forked after the client
        # was used in this process would hang on it). The workers are forked before the
        # first download starts.
        if spark is not None:
            spark_tasks.extend(("object", item.url, "", item) for item in remote_todo)
            done_bytes += sum(item.listed.size for item in remote_todo)
        to_download = iter(enumerate(remote_todo if spark is None else []))

        def download_ahead() -> None:  # at most 2 x DOWNLOADS objects ahead of the workers
            while len(downloads) < 2 * DOWNLOADS and (nth := next(to_download, None)):
                n, item = nth
                downloads.append((item, downloader.submit(_download, store, f"{run}-{n}", item)))

        if spark is None and remote_todo and not workers:
            start_workers()  # forked before any download thread runs
        download_ahead()
        while downloads:
            item, downloading = downloads.popleft()
            download_ahead()
            got = downloading.result()
            done_bytes += item.listed.size
            if isinstance(got, str):
                report.read += 1
                report.count_bad(got)
                reader_rejects.add(item.url, 0, got, None)
                continue
            fetched.append(got)
            reader_rejects.origins[got["path"]] = item.url
            for task, _position in _tasks(Path(got["path"]), got["sha256"], reader_rejects, report):
                put(("from", item.url, task))  # rejects name the URL, not the local copy
                drain(block=False)
            if on_progress:
                on_progress(done_bytes, total)
        if spark is not None and spark_tasks:
            known = store.known_ids()
            for kind, _index, payload in _spark_workers(
                spark, spark_tasks, store, run, batch, jobs, known
            ):
                handle(kind, payload)
            if on_progress:
                on_progress(total, total)
        for _ in workers:
            put(None)
        while ended < len(workers):
            drain(block=True)
            if ended < len(workers) and all(not w.is_alive() for w in workers):
                drain(block=False)
                if ended < len(workers):
                    raise RuntimeError("ingest workers stopped without finishing")
    finally:
        for pending in hashed:
            pending.cancel()
        hasher.shutdown(wait=True)
        downloader.shutdown(wait=True, cancel_futures=True)
        aborted = ended < len(workers)
        for w in workers:
            if w.is_alive() and aborted:
                w.terminate()
            w.join(timeout=5)
        if aborted:  # tasks nobody will read: do not wait at exit to flush them
            tasks.cancel_join_thread()
            results.cancel_join_thread()
        kept = reader_rejects.close()
        if kept:
            report.rejects.append(kept)
        store.clean_staging()
        if spark is not None:
            spark.stop()
    # every batch is committed: the files read are now in the store whole
    triage.record(store, read, fetched)
    report.seconds = time.perf_counter() - started
    return report


def _list_objects(urls: list[str], region: str, endpoint: str | None) -> list[objects.RemoteFile]:
    """The measurement files under each ``s3://`` URL, each once, in key order."""
    from blockproof.errors import InputError

    found: dict[str, objects.RemoteFile] = {}
    for url in urls:
        try:
            bucket, prefix = objects.parse_url(url)
            where = objects.Remote(bucket, region, endpoint)
            choice = objects.list_files(where, prefix)
        except InputError as exc:
            raise IngestError(str(exc)) from exc
        except Exception as exc:  # the client's PermanentError / TransientError
            raise IngestError(f"cannot list {url}: {exc}") from exc
        for listed in choice.files:
            item = objects.RemoteFile(where, listed)
            found.setdefault(item.url, item)
    return list(found.values())


def _spark_session(spark_master: str | None) -> Any:
    from blockproof.pipeline.spark import SparkUnavailable, session

    try:
        return session(spark_master)
    except SparkUnavailable as exc:
        raise IngestError(str(exc)) from exc


def _spark_workers(
    spark: Any,
    tasks: list[tuple[Any, ...]],
    store: Store,
    run: str,
    batch: int,
    slices: int,
    known: set[str],
) -> list[tuple[str, int, Any]]:
    """The workers as Spark tasks: each partition of ``tasks`` is one ``Worker`` (the
    same code as a local worker process), staging its batches under the store, which
    the executors must reach at the same path (a local master, or a shared file
    system); the messages come back to the driver, which commits as locally."""
    sc = spark.sparkContext
    ids = sc.broadcast(known)
    rdd = sc.parallelize(tasks, numSlices=max(1, min(len(tasks), slices)))
    work = functools.partial(_spark_partition, str(store.root), run, batch, ids)
    with warnings.catch_warnings():
        # pyspark leaves the local socket a collect() reads from to the garbage collector
        warnings.simplefilter("ignore", ResourceWarning)
        messages: list[tuple[str, int, Any]] = rdd.mapPartitionsWithIndex(work).collect()
        gc.collect()
    ids.unpersist()
    return messages


def _spark_partition(
    store_root: str, run: str, batch: int, ids: Any, index: int, tasks: Iterable[tuple[Any, ...]]
) -> Iterator[tuple[str, int, Any]]:
    global _KNOWN
    _KNOWN = ids.value
    worker = Worker(Store(store_root), run, index, batch)
    for task in tasks:
        for done in worker.take(task):
            yield ("batch", index, done)
    last = worker.flush()
    if last is not None:
        yield ("batch", index, last)
    yield ("end", index, worker.end())


def _hash_stat(path: Path) -> tuple[str, int, int, int]:
    """(SHA-256, size, mtime_ns, when checked) of a file, the stat taken before hashing."""
    checked_ns = time.time_ns()
    st = path.stat()
    return file_sha256(path), st.st_size, st.st_mtime_ns, checked_ns


def _tasks(
    path: Path, sha256: str, rejects: _Rejects, report: IngestReport
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """The tasks one file becomes, each with the byte position it reaches.

    A plain JSON-lines file is cut into byte ranges of whole lines (about
    ``CHUNK_BYTES``) that the workers read themselves: the reader only counts the line
    breaks, so no record's bytes cross a pipe. A gzipped one is one task (its worker
    decompresses it: OONI's bucket is many small files, spread over every core). A
    ``.json`` document is parsed here and its records handed over."""
    if is_document(path):
        with open(path, "rb") as f:
            for _number, chunk, position in _chunks(path, f, rejects, report):
                yield ("lines", str(path), sha256, chunk), position
        return
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
        if gzipped:
            yield ("file", str(path), sha256), f.seek(0, os.SEEK_END)
            return
        f.seek(0)
        start, position, line = 0, 0, 1
        while block := f.read(CHUNK_BYTES):
            cut = block.rfind(b"\n")
            if cut >= 0:
                end = position + cut + 1
                yield ("range", str(path), sha256, start, end, line), end
                line += block.count(b"\n", 0, cut + 1)
                start = end
            position += len(block)
        if start < position:  # a last line without a line break
            yield ("range", str(path), sha256, start, position, line), position


def _chunks(
    path: Path, f: IO[bytes], rejects: _Rejects, report: IngestReport
) -> Iterator[tuple[int, list[tuple[int, bytes]], int]]:
    """Chunks of (line number, raw line) of one file, and the byte position reached."""
    chunk: list[tuple[int, bytes]] = []
    size = 0
    if is_document(path):
        bad: list[BadRecord] = []
        for ordinal, obj in enumerate(iter_json_objects(str(path), on_error=bad.append), 1):
            try:
                chunk.append((ordinal, orjson.dumps(obj)))
            except orjson.JSONEncodeError as exc:  # beyond 64-bit integers, lone surrogates...
                bad.append(BadRecord(str(path), ordinal, f"not a measurement: {exc}"))
        for error in bad:
            report.read += 1
            report.count_bad(error.reason)
            rejects.add(str(path), error.line, error.reason, None)
        if chunk:
            yield 0, chunk, f.seek(0, os.SEEK_END)
        return
    number = 0
    try:
        for number, line in _lines(f):
            chunk.append((number, line))
            size += len(line)
            if size >= CHUNK_BYTES:
                yield number, chunk, f.tell()
                chunk, size = [], 0
    except (EOFError, OSError) as exc:
        if chunk:
            yield number, chunk, f.tell()
            chunk = []
        reason = f"file breaks off: {exc}"
        report.read += 1
        report.count_bad(reason)
        rejects.add(str(path), number + 1, reason, None)
    if chunk:
        yield number, chunk, f.tell()


def ingest_file(path: str, store_root: str, run: str, index: int, batch: int) -> dict[str, int]:
    """One file through one in-process worker, staged but not committed.

    For profiling and debugging the per-record work without processes; returns the
    worker's counters."""
    store = Store(store_root)
    worker = Worker(store, run, index, batch)
    report = IngestReport()
    rejects = _Rejects(store, run, index + 1_000_000)
    src = Path(path)
    sha256 = file_sha256(src)
    for task, _position in _tasks(src, sha256, rejects, report):
        worker.take(task)
    worker.flush()
    worker.rejects.close()
    rejects.close()
    return dict(worker.counts)
