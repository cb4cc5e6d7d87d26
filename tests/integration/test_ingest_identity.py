"""Ingest, redesigned for speed and run on Spark, still gives the store it gave before.

``tests/data/golden/ingest-tables.jsonl.gz`` is every table's rows from an ingest of
the repository's real OONI measurements made before the redesign (``tests/ingest_golden.py``):
``.json`` documents, ``.json.gz`` files, and the Web Connectivity ones as JSON lines in
three copies. Each row here must be that row: every verdict, observation, fingerprint,
title, hash and source line. Run with one and two workers, and with chunks so small
that every JSON line travels in a byte range of its own; and on Spark
(``ingest --engine spark``, local[2]), which must give the same rows as the local ingest.
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


@pytest.mark.spark
@pytest.mark.timeout(600)
def test_spark_ingest_gives_the_same_rows_as_the_local_one(tmp_path: Path) -> None:
    golden = read_golden()
    got = ingest_snapshot(tmp_path, jobs=2, engine="spark")
    assert sorted(got) == sorted(golden)
    for table, rows in golden.items():
        assert got[table] == rows, table


@pytest.mark.spark
@pytest.mark.timeout(600)
def test_spark_ingest_twice_adds_nothing_and_keeps_the_sources(tmp_path: Path) -> None:
    from blockproof.pipeline.ingest import ingest
    from blockproof.pipeline.store import Store
    from ingest_golden import corpus

    inputs = corpus(tmp_path / "in")
    store, local = Store(tmp_path / "store"), Store(tmp_path / "local")
    first = ingest([inputs], store, jobs=2, engine="spark")
    again = ingest([inputs], store, jobs=2, engine="spark", reread=True)
    ingest([inputs], local, jobs=2)
    assert first.new == 84
    assert (again.new, again.duplicate) == (0, 84)
    kept = sorted(p.name for p in (store.root / "sources").iterdir())
    assert kept == sorted(p.name for p in (local.root / "sources").iterdir())
