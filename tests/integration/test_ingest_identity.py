"""Ingest, redesigned for speed, still gives the store it gave before: row for row.

``tests/data/golden/ingest-tables.jsonl.gz`` is every table's rows from an ingest of
the repository's real OONI measurements made before the redesign (``tests/ingest_golden.py``):
``.json`` documents, ``.json.gz`` files, and the Web Connectivity ones as JSON lines in
three copies. Each row here must be that row: every verdict, observation, fingerprint,
title, hash and source line. Run with one and two workers, and with chunks so small
that every JSON line travels in a byte range of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from blockproof.pipeline import ingest as ingest_module
from ingest_golden import ingest_snapshot, read_golden


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("jobs", "chunk_bytes"),
    [(2, None), (1, None), (2, 1)],
    ids=["2-workers", "1-worker", "tiny-chunks"],
)
def test_ingest_gives_the_golden_store_row_for_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int, chunk_bytes: int | None
) -> None:
    if chunk_bytes is not None:
        monkeypatch.setattr(ingest_module, "CHUNK_BYTES", chunk_bytes)
    golden = read_golden()
    got = ingest_snapshot(tmp_path, jobs=jobs)
    assert sorted(got) == sorted(golden)
    for table, rows in golden.items():
        assert len(got[table]) == len(rows), table
        for i, (new, old) in enumerate(zip(got[table], rows, strict=True)):
            assert new == old, f"{table} row {i}"
