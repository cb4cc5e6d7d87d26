"""The store an ingest of the repository's real measurements must produce, row for row.

``corpus(dir)`` writes the input: every real OONI measurement of ``tests/data/ooni`` as
it is (``.json`` documents, ``.json.gz``), plus the Web Connectivity ones as JSON lines
in three copies with distinct report ids (the path a big JSON-lines file takes: cut in
byte ranges, read by the workers). ``snapshot(store)`` is every table's rows, sorted,
as JSON-ready dicts. ``tests/data/golden/ingest-tables.jsonl.gz`` holds the snapshot
that ingest gave before it was redesigned for speed (made by ``python
tests/ingest_golden.py --write``); ``tests/integration/test_ingest_identity.py``
compares every later ingest with it.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.dataset as ds

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden" / "ingest-tables.jsonl.gz"
COPIES = 3


def corpus(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    samples: list[dict[str, Any]] = []
    for path in sorted((DATA / "ooni").rglob("*")):
        if not path.is_file() or path.name == "SOURCES.md":
            continue
        shutil.copy(path, directory / f"{path.parent.name}--{path.name}")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            try:
                obj = orjson.loads(f.read())
            except orjson.JSONDecodeError:
                continue
        if isinstance(obj, dict) and obj.get("test_name") == "web_connectivity":
            samples.append(obj)
    lines = []
    for copy in range(COPIES):
        for i, obj in enumerate(samples):
            twin = dict(obj)
            twin.pop("measurement_uid", None)
            twin["report_id"] = f"{obj.get('report_id') or 'r'}-copy{copy}-{i}"
            lines.append(orjson.dumps(twin))
    (directory / "copies.jsonl").write_bytes(b"\n".join(lines) + b"\n\n")
    return directory


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def snapshot(store_root: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for table_dir in sorted(p for p in store_root.iterdir() if p.is_dir()):
        files = sorted(table_dir.rglob("*.parquet"))
        if not files or table_dir.name in ("sources", "rejects"):
            continue
        rows = ds.dataset(files, format="parquet", partitioning="hive").to_table().to_pylist()
        plain = [{k: _plain(v) for k, v in sorted(r.items())} for r in rows]
        out[table_dir.name] = sorted(plain, key=lambda r: orjson.dumps(r))
    return out


def ingest_snapshot(
    work: Path, *, jobs: int = 2, engine: str = "local"
) -> dict[str, list[dict[str, Any]]]:
    from blockproof.pipeline.ingest import ingest
    from blockproof.pipeline.store import Store

    inputs = corpus(work / "in")
    store = Store(work / "store")
    ingest([inputs], store, jobs=jobs, engine=engine)
    return snapshot(store.root)


def write_golden(snap: dict[str, list[dict[str, Any]]]) -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    with open(GOLDEN, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for table, rows in snap.items():
            for row in rows:
                f.write(orjson.dumps({"table": table, "row": row}, option=orjson.OPT_SORT_KEYS))
                f.write(b"\n")


def read_golden() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    with gzip.open(GOLDEN, "rb") as f:
        for line in f:
            record = orjson.loads(line)
            out.setdefault(record["table"], []).append(record["row"])
    return out


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        snap = ingest_snapshot(Path(tmp))
    write_golden(snap)
    print({t: len(r) for t, r in snap.items()}, GOLDEN.stat().st_size)
