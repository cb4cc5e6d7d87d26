"""Reading the store's tables and kept bytes for the explorer's pages.

One place for the DuckDB table expression over a set of Parquet files and for a
measurement's bytes as received (from the store's kept source files), with their
SHA-256 and signature status.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from blockproof.custody.signing import SignatureStatus, verify_measurement
from blockproof.pipeline.store import Store


def parquet(files: list[Any]) -> str:
    """A DuckDB table expression over some of the store's Parquet files."""
    names = [str(p) for p in files]
    return f"read_parquet({names!r}, hive_partitioning = true, union_by_name = true)"


def kept_bytes(
    store: Store, source_sha256: str, source_line: int
) -> tuple[bytes | None, str | None, str, str | None]:
    """A measurement's bytes as received, their SHA-256, its signature status and key id.

    A source file missing from the store gives (None, None, "unknown", None).
    """
    try:
        raw = store.raw_measurement(source_sha256, int(source_line))
    except Exception:
        return None, None, "unknown", None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        check = verify_measurement(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return raw, digest, str(SignatureStatus.INVALID), None
    return raw, digest, str(check.status), check.key_id
