"""The store on disk: Parquet tables partitioned by day and country.

Layout::

    STORE/
      measurements/day=2024-02-17/cc=PK/part-<run>-<n>.parquet
      obs_dns/ obs_tcp/ obs_tls/ obs_http/ verdicts/   (same partitioning)
      sources/<sha256>.jsonl.gz    every input file, byte for byte, named by its hash
      cells/cells.parquet          written by `analyze`
      events.json                  written by `analyze`
      event-history.json           every event id `analyze` ever gave (pipeline.identity)
      ingested.json                the input files ingested whole (see below)
      rejects/<run>.jsonl          bad input lines, kept aside with the reason
      .staging/<run>/...           files being written; moved into place at commit

Files are written under ``.staging`` and moved into place with ``os.replace``
(atomic per file) once a batch is complete, so a reader never sees half a
file; leftovers of an interrupted run are removed at the next ingest. The
``measurements`` files of a batch are moved last: a measurement counts as
stored (and is skipped by a later ingest) only once all its rows are in place.

All partition values are also columns inside the files, so a reader may ignore
the directory names.

``ingested.json`` lists every input file ingested whole, by the path it was given
as (resolved), with its size, modification time (ns), SHA-256 and when it was
checked: ``ingest`` skips such a file when it meets it again unchanged (see
``pipeline.ingest``). It is written last, atomically, by a run that finished:
a run that is interrupted records nothing, so its files are read again.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from blockproof.pipeline.schema import TABLES

PARTITIONING = ds.partitioning(
    pa.schema([("day", pa.string()), ("cc", pa.string())]), flavor="hive"
)
COMMIT_ORDER = [t for t in TABLES if t != "measurements"] + ["measurements"]


# Big free-text columns: dictionary encoding and min/max statistics only cost time there.
_PLAIN = {"explanation", "body_sha256", "msm_id", "report_id"}


def _write_options(schema: pa.Schema) -> ds.FileWriteOptions:
    names = [n for n in schema.names if n not in _PLAIN and n not in ("day", "cc")]
    return ds.ParquetFileFormat().make_write_options(
        compression="zstd",
        use_dictionary=names,
        write_statistics=names,
    )


_SOURCE_SUFFIXES = (".jsonl.gz", ".json.gz", ".ndjson.gz", ".jsonl", ".json", ".ndjson", ".gz")


def read_record(path: Path, line: int) -> bytes:
    """Record ``line`` of a kept source file: a line of JSON lines, or the ``line``-th
    object of a ``.json`` document (re-encoded compactly, since it has no line of its own)."""
    import gzip

    import orjson

    from blockproof.codec.jsonl import iter_json_objects

    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".json"):
        for number, obj in enumerate(iter_json_objects(str(path), on_error=lambda _e: None), 1):
            if number == line:
                return orjson.dumps(obj)
        raise StoreError(f"{path.name} has no record {line}")
    with open(path, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
        for number, text in enumerate(stream, 1):
            if number == line:
                return text.strip()
    raise StoreError(f"{path.name} has no line {line}")


class StoreError(RuntimeError):
    """A store directory that is not usable (not a store, unreadable)."""


@dataclass(frozen=True, slots=True)
class IngestedFile:
    """An input file that a finished ``ingest`` read whole (one entry of ``ingested.json``).

    ``size`` and ``mtime_ns`` are as the file was before it was hashed and read, and as
    it still was after; ``checked_ns`` is the wall clock (ns) before it was hashed: a
    modification time that close to it may hide a later change (see ``unchanged``).
    An object of a bucket is recorded under its ``s3://`` URL with its ``etag``
    (``mtime_ns`` 0): it is skipped while it is listed with the same size and ETag."""

    path: str  # as given, resolved; or an s3:// URL
    size: int
    mtime_ns: int
    sha256: str
    checked_ns: int
    etag: str | None = None

    # A modification time within this of the check may be shared by a later write on
    # file systems with coarse timestamps (2 s on FAT): then size and time prove nothing.
    RACY_NS = 2_000_000_000

    def unchanged(self, size: int, mtime_ns: int) -> bool:
        """Whether a file now of ``size`` and ``mtime_ns`` is, by its size and time, the
        file recorded: the same size and time, recorded long enough after its last write
        that a later write would have moved its time."""
        return (
            size == self.size
            and mtime_ns == self.mtime_ns
            and mtime_ns < self.checked_ns - self.RACY_NS
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "sha256": self.sha256,
            "checked_ns": self.checked_ns,
            **({"etag": self.etag} if self.etag is not None else {}),
        }

    @classmethod
    def from_dict(cls, value: Any) -> IngestedFile:
        if not isinstance(value, dict):
            raise ValueError("not an object")
        path, sha256 = value.get("path"), value.get("sha256")
        numbers = [value.get(k) for k in ("size", "mtime_ns", "checked_ns")]
        if (
            not isinstance(path, str)
            or not isinstance(sha256, str)
            or len(sha256) != 64
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)
        ):
            raise ValueError(f"not an ingested file: {value!r}"[:200])
        etag = value.get("etag")
        if etag is not None and not isinstance(etag, str):
            raise ValueError(f"not an ingested file (etag): {value!r}"[:200])
        return cls(path, value["size"], value["mtime_ns"], sha256, value["checked_ns"], etag)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: written to a temporary file, flushed to disk,
    then renamed over it, so that a reader (or a crash) sees the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Store:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths -----------------------------------------------------------------------

    def table_dir(self, table: str) -> Path:
        return self.root / table

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    def source_path(self, sha256: str, name: str) -> Path:
        """Where an input file with this hash is kept (its original suffixes preserved)."""
        lower = name.lower()
        suffix = next((s for s in _SOURCE_SUFFIXES if lower.endswith(s)), "")
        return self.sources / f"{sha256}{suffix}"

    def keep_source(self, path: Path, sha256: str) -> Path:
        """Keep an input file in the store (a hard link when possible, else a copy)."""
        target = self.source_path(sha256, path.name)
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        return target

    def find_source(self, sha256: str) -> Path | None:
        found = sorted(self.sources.glob(f"{sha256}*")) if self.sources.is_dir() else []
        return next((p for p in found if not p.name.endswith(".tmp")), None)

    def raw_measurement(self, sha256: str, line: int) -> bytes:
        """The bytes of one stored measurement, as received (see ``read_record``)."""
        path = self.find_source(sha256)
        if path is None:
            raise StoreError(f"source file {sha256} is not in the store")
        return read_record(path, line)

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def cells_path(self) -> Path:
        return self.root / "cells" / "cells.parquet"

    @property
    def networks_path(self) -> Path:
        """Each network's name, (country, ASN) -> name, written by ``analyze``."""
        return self.root / "cells" / "networks.json"

    @property
    def events_path(self) -> Path:
        return self.root / "events.json"

    @property
    def event_history_path(self) -> Path:
        """Every event id ever given, with what it was last (``pipeline.identity``)."""
        return self.root / "event-history.json"

    @property
    def ingested_path(self) -> Path:
        return self.root / "ingested.json"

    def ingested(self) -> dict[str, IngestedFile]:
        """The input files ingested whole, by resolved path (empty for a new store, or
        one whose tables are gone: then nothing is known to be in it)."""
        import orjson

        if not self.files("measurements"):
            return {}
        try:
            data = orjson.loads(self.ingested_path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StoreError(
                f"{self.ingested_path} is unreadable ({exc}): delete it and ingest again"
                " (every file is then read again; nothing is stored twice)"
            ) from exc
        try:
            if not isinstance(data, dict) or not isinstance(data.get("files"), list):
                raise ValueError("no 'files' list")
            found = [IngestedFile.from_dict(item) for item in data["files"]]
        except ValueError as exc:
            raise StoreError(
                f"{self.ingested_path}: {exc}: delete it and ingest again"
                " (every file is then read again; nothing is stored twice)"
            ) from exc
        return {f.path: f for f in found}

    def record_ingested(self, files: Mapping[str, IngestedFile]) -> None:
        """Add (or update) entries of ``ingested.json``, atomically. The file is read
        again first, so entries another run recorded meanwhile are kept."""
        import orjson

        if not files:
            return
        merged = {**self.ingested(), **files}
        payload = {"version": 1, "files": [merged[k].as_dict() for k in sorted(merged)]}
        write_atomically(self.ingested_path, orjson.dumps(payload) + b"\n")

    def files(
        self,
        table: str,
        *,
        cc: str | None = None,
        first_day: str | None = None,
        last_day: str | None = None,
    ) -> list[Path]:
        """The table's committed Parquet files, in a stable order; with ``cc`` and a day
        range (``YYYY-MM-DD``, inclusive), only the partitions that can hold such rows
        (directories are listed, never every file of the table)."""
        base = self.table_dir(table)
        if not base.is_dir():
            return []
        if cc is None and first_day is None and last_day is None:
            return sorted(base.rglob("*.parquet"))
        out: list[Path] = []
        for day_dir in sorted(base.iterdir()):
            day = day_dir.name.removeprefix("day=")
            if day == day_dir.name or (first_day and day < first_day):
                continue
            if last_day and day > last_day:
                continue
            parts = [day_dir / f"cc={cc}"] if cc else sorted(day_dir.iterdir())
            for part in parts:
                if part.is_dir():
                    out.extend(sorted(part.glob("*.parquet")))
        return out

    def exists(self) -> bool:
        return self.table_dir("measurements").is_dir()

    def require(self) -> None:
        if not self.exists():
            raise StoreError(
                f"{self.root} is not a blockproof store (no measurements table):"
                " run `blockproof ingest PATH --store DIR` first"
            )

    # -- reading ---------------------------------------------------------------------

    def dataset(self, table: str) -> ds.Dataset:
        files = [str(p) for p in self.files(table)]
        return ds.dataset(files, schema=TABLES[table], format="parquet")

    def read(
        self, table: str, columns: list[str] | None = None, filter: pc.Expression | None = None
    ) -> pa.Table:
        return self.dataset(table).to_table(columns=columns, filter=filter)

    def known_ids(self) -> set[str]:
        """Every msm_id already stored."""
        if not self.files("measurements"):
            return set()
        column = self.read("measurements", ["msm_id"]).column("msm_id")
        return set(column.to_pylist())

    # -- writing ---------------------------------------------------------------------

    def new_run(self) -> str:
        return uuid.uuid4().hex[:12]

    def clean_staging(self) -> None:
        if self.staging.exists():
            shutil.rmtree(self.staging)

    def stage(self, tables: dict[str, pa.Table], tag: str) -> list[Path]:
        """Write tables partitioned by day and country under ``.staging``; return the files."""
        written: list[Path] = []
        for name, table in tables.items():
            if table.num_rows == 0:
                continue
            day = pc.strftime(table.column("measurement_start_time"), format="%Y-%m-%d")
            keyed = table.append_column("day", day).append_column("cc", table.column("probe_cc"))
            base = self.staging / tag / name

            def visit(written_file: ds.WrittenFile) -> None:
                written.append(Path(written_file.path))

            ds.write_dataset(
                keyed,
                base,
                format="parquet",
                partitioning=PARTITIONING,
                basename_template=f"part-{tag}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
                file_options=_write_options(table.schema),
                file_visitor=visit,
                max_rows_per_group=128 * 1024,
                create_dir=True,
            )
        return written

    def drop_rows(self, files: Iterable[Path], ids: set[str]) -> None:
        """Rewrite staged files without the rows whose msm_id is in ``ids``."""
        wanted = pa.array(sorted(ids), type=pa.string())
        for path in files:
            table = pq.read_table(path)
            kept = table.filter(pc.invert(pc.is_in(table.column("msm_id"), value_set=wanted)))
            if kept.num_rows == 0:
                path.unlink()
            elif kept.num_rows != table.num_rows:
                pq.write_table(kept, path, compression="zstd")

    def commit(self, files: Iterable[Path]) -> None:
        """Move staged files into place, measurements last."""
        by_table: dict[str, list[Path]] = {}
        for path in files:
            if not path.exists():
                continue
            rel = path.relative_to(self.staging)
            by_table.setdefault(rel.parts[1], []).append(path)
        for table in COMMIT_ORDER:
            for path in by_table.get(table, []):
                rel = path.relative_to(self.staging)
                target = self.root.joinpath(*rel.parts[1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)

    def replace_table(self, table: str, data: pa.Table, tag: str) -> None:
        """Replace a whole table (``rejudge``): stage the new files, then swap directories."""
        staged = self.stage({table: data}, tag)
        new_dir = self.staging / tag / table
        old_dir = self.table_dir(table)
        trash = self.staging / f"{tag}-old-{table}"
        if old_dir.exists():
            os.replace(old_dir, trash)
        if staged:
            os.replace(new_dir, old_dir)
        else:
            old_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(trash, ignore_errors=True)
