"""The probe's local spool: every measurement lands here first, one file each.

Layout under the spool directory (``blockproof --help`` names it; default
``$BLOCKPROOF_HOME/spool`` or ``~/.local/share/blockproof/spool``)::

    pending/<id>.json             signed measurement, canonical JSON, not yet uploaded
    uploaded/<id>.json            uploaded; the collector's receipt beside it:
    uploaded/<id>.receipt.json    uid, leaf index, inclusion proof, signed tree head
    rejected/<id>.json            refused by a collector; why, beside it:
    rejected/<id>.reason.json

``<id>`` is ``<start time>-<12 hex digits of the content's SHA-256>``, so names
sort by measurement time and the same measurement always has the same name.

Every write is atomic (temporary file, fsync, rename, directory fsync): after a
crash a measurement is either wholly in ``pending/`` or absent, never half
written. Moving to ``uploaded/`` writes the receipt first and renames the
measurement second; a crash in between leaves it pending, and the next upload
resubmits it, which the collector answers with the same uid (uploads are
idempotent). Listing reads names only; contents are read on demand, so a spool
of 100,000 measurements lists instantly.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from blockproof.errors import InputError

State = Literal["pending", "uploaded", "rejected"]
STATES: tuple[State, ...] = ("pending", "uploaded", "rejected")
_SIDECAR = {"uploaded": ".receipt.json", "rejected": ".reason.json"}


def default_spool_dir() -> Path:
    home = os.environ.get("BLOCKPROOF_HOME")
    if home:
        return Path(home) / "spool"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "blockproof" / "spool"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    id: str
    state: State
    path: Path

    @property
    def time(self) -> datetime:
        return datetime.strptime(self.id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    def read(self) -> bytes:
        return self.path.read_bytes()

    def measurement(self) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.read())
        return obj

    @property
    def sidecar(self) -> Path | None:
        suffix = _SIDECAR.get(self.state)
        return None if suffix is None else self.path.with_name(self.id + suffix)

    def sidecar_json(self) -> dict[str, Any] | None:
        side = self.sidecar
        if side is None or not side.exists():
            return None
        obj: dict[str, Any] = json.loads(side.read_bytes())
        return obj


def entry_id(canonical: bytes, measurement_start_time: str) -> str:
    try:
        stamp = datetime.strptime(measurement_start_time, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        stamp = datetime.now(UTC)
    return f"{stamp:%Y%m%dT%H%M%SZ}-{hashlib.sha256(canonical).hexdigest()[:12]}"


class Spool:
    """The spool directory. Cheap to create; directories are made on first write."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_spool_dir()

    def _dir(self, state: State) -> Path:
        return self.root / state

    def add(self, canonical: bytes, measurement_start_time: str) -> SpoolEntry:
        """Store a (signed, canonical) measurement as pending. Idempotent per content."""
        pending = self._dir("pending")
        pending.mkdir(parents=True, exist_ok=True, mode=0o700)
        ident = entry_id(canonical, measurement_start_time)
        path = pending / f"{ident}.json"
        if not path.exists() and not (self._dir("uploaded") / path.name).exists():
            write_atomic(path, canonical + b"\n")
        return SpoolEntry(ident, "pending", path)

    def entries(self, states: tuple[State, ...] = STATES) -> list[SpoolEntry]:
        """Entries in the given states, oldest first (by measurement time, then content)."""
        found: list[SpoolEntry] = []
        for state in states:
            directory = self._dir(state)
            if not directory.is_dir():
                continue
            with os.scandir(directory) as scan:
                for item in scan:
                    name = item.name
                    if name.startswith(".") or not name.endswith(".json"):
                        continue
                    stem = name[:-5]
                    if "." in stem:  # a sidecar
                        continue
                    found.append(SpoolEntry(stem, state, Path(item.path)))
        found.sort(key=lambda e: e.id)
        return found

    def pending(self) -> list[SpoolEntry]:
        return self.entries(("pending",))

    def find(self, ref: str) -> SpoolEntry:
        """An entry by id, unique id prefix, or the collector's measurement uid."""
        entries = self.entries()
        exact = [e for e in entries if e.id == ref]
        if exact:
            return exact[0]
        prefixed = [e for e in entries if e.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise InputError(f"{ref!r} matches {len(prefixed)} measurements; give more of the id")
        for entry in entries:
            side = entry.sidecar_json() if entry.state == "uploaded" else None
            if side and side.get("measurement_uid") == ref:
                return entry
        raise InputError(f"no measurement {ref!r} in the spool {self.root}")

    def _move(self, entry: SpoolEntry, state: State, sidecar: dict[str, Any]) -> SpoolEntry:
        target = self._dir(state)
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(
            target / (entry.id + _SIDECAR[state]),
            json.dumps(sidecar, indent=1, sort_keys=True).encode() + b"\n",
        )
        destination = target / entry.path.name
        os.replace(entry.path, destination)
        _fsync_dir(target)
        _fsync_dir(entry.path.parent)
        return SpoolEntry(entry.id, state, destination)

    def mark_uploaded(self, entry: SpoolEntry, receipt: dict[str, Any]) -> SpoolEntry:
        return self._move(entry, "uploaded", receipt)

    def mark_rejected(self, entry: SpoolEntry, reason: dict[str, Any]) -> SpoolEntry:
        return self._move(entry, "rejected", reason)

    def remove(self, entry: SpoolEntry) -> None:
        side = entry.sidecar
        entry.path.unlink(missing_ok=True)
        if side is not None:
            side.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[SpoolEntry]:
        return iter(self.entries())
