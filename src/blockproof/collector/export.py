"""``blockproof collector export``: the log as daily raw files in OONI's layout.

Output, one JSON-lines gzip file per (day, country, test), the day being the
measurement's start day (UTC)::

    OUT/20240217/PK/webconnectivity/20240217_PK_webconnectivity.jsonl.gz
    OUT/20240217/PK/webconnectivity/20240217_PK_webconnectivity.receipts.jsonl.gz
    OUT/tree-head.json

Each measurement line is exactly the logged canonical JSON (so its SHA-256 and
leaf hash can be recomputed from the file). The ``.receipts`` file beside it
holds, line for line, the measurement's uid, leaf index, leaf hash and
inclusion proof against ``tree-head.json``, a tree head signed at export time.
``blockproof ingest OUT`` reads the measurement files and skips the receipts.

Files are written under a temporary directory and moved into place when
complete, so a reader never sees half a file. The export reads the log while
holding the data directory's lock: stop the collector first, or export from a
copy of its data directory.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from blockproof.collector.segments import SegmentLog
from blockproof.collector.service import (
    KEY_DIR,
    LOG_DIR,
    LOG_KEY_FILE,
    data_dir_lock,
    split_record,
)
from blockproof.custody.keys import load_or_create_key
from blockproof.custody.merkle import MerkleTree, leaf_hash
from blockproof.custody.proofs import sign_tree_head
from blockproof.errors import InputError

RECEIPTS_SUFFIX = ".receipts.jsonl.gz"
MAX_OPEN_FILES = 128


@dataclass(slots=True)
class ExportReport:
    measurements: int = 0
    files: int = 0
    unreadable: int = 0
    tree_size: int = 0
    paths: list[str] = field(default_factory=list)


def _key_of(canonical: bytes) -> tuple[str, str, str]:
    obj = json.loads(canonical)
    start = str(obj.get("measurement_start_time", ""))[:10].replace("-", "")
    return start or "00000000", str(obj.get("probe_cc", "ZZ")), str(obj.get("test_name", ""))


def _relative(key: tuple[str, str, str]) -> Path:
    day, cc, test = key
    name = test.replace("_", "")
    return Path(day) / cc / name / f"{day}_{cc}_{name}.jsonl.gz"


class _Writers:
    """Gzip writers per output file, at most MAX_OPEN_FILES open (others reopened to append)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._open: OrderedDict[Path, gzip.GzipFile] = OrderedDict()
        self.seen: set[Path] = set()

    def write(self, relative: Path, line: bytes) -> None:
        handle = self._open.get(relative)
        if handle is None:
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = gzip.open(path, "ab", compresslevel=6)  # noqa: SIM115 - closed in close()
            self._open[relative] = handle
            self.seen.add(relative)
            if len(self._open) > MAX_OPEN_FILES:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
        else:
            self._open.move_to_end(relative)
        handle.write(line)

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open.clear()


def export(data_dir: Path, out: Path) -> ExportReport:
    """Write the collector's log under ``out`` (see the module docstring)."""
    if not (data_dir / LOG_DIR).is_dir():
        raise InputError(f"{data_dir}: not a collector data directory (no {LOG_DIR}/)")
    lock = data_dir_lock(data_dir)
    report = ExportReport()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        log, _recovery = SegmentLog.open(data_dir / LOG_DIR)
        tree = MerkleTree()
        members: dict[Path, list[tuple[int, str]]] = {}
        writers = _Writers(staging)
        try:
            for position, payload in log.records():
                header, canonical = split_record(payload)
                tree.append(leaf_hash(canonical))
                try:
                    relative = _relative(_key_of(canonical))
                except ValueError:
                    report.unreadable += 1
                    relative = Path("unreadable") / "unreadable.jsonl.gz"
                writers.write(relative, canonical + b"\n")
                members.setdefault(relative, []).append((position.ordinal, header["uid"]))
                report.measurements += 1
        finally:
            writers.close()
            log.close()
        key = load_or_create_key(data_dir / KEY_DIR, filename=LOG_KEY_FILE).private_key
        import time

        size = len(tree)
        head = sign_tree_head(size, tree.root(size), int(time.time() * 1000), key)
        report.tree_size = size
        for relative, ordinals in members.items():
            receipts = staging / relative.with_name(
                relative.name[: -len(".jsonl.gz")] + RECEIPTS_SUFFIX
            )
            with gzip.open(receipts, "wb", compresslevel=6) as handle:
                for ordinal, uid in ordinals:
                    line = {
                        "measurement_uid": uid,
                        "leaf_index": ordinal,
                        "leaf_hash": tree.leaf(ordinal).hex(),
                        "inclusion_proof": [h.hex() for h in tree.inclusion_proof(ordinal, size)],
                    }
                    handle.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
        (staging / "tree-head.json").write_text(json.dumps(head.to_json(), indent=1) + "\n")
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = out / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            report.files += 1
            report.paths.append(str(target))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(lock)
    return report
