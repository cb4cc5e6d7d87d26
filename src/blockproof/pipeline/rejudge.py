"""`blockproof rejudge`: recompute every verdict with today's rules.

Verdicts carry the ``rules_version`` that produced them. When the rules or the
fingerprint data change, this reads the input files the store keeps
(``STORE/sources/``, byte for byte as ingested), judges every measurement the
store holds again (the same ``Extractor`` as ingest: observations decoded,
classified, fingerprinted) and swaps in a new ``verdicts`` table atomically
(``Store.replace_table``). Nothing else in the store changes.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from blockproof.codec.jsonl import BadRecord
from blockproof.pipeline.extract import Extractor, RecordError, Source
from blockproof.pipeline.ingest import read_records
from blockproof.pipeline.store import Store, StoreError


def rejudge_store(store: Store) -> tuple[int, int]:
    """Re-judge every stored measurement; return (count, verdicts whose outcome or rule changed)."""
    store.require()
    old = store.read("verdicts", ["msm_id", "outcome", "rule_id"])
    before = {
        m: (o, r)
        for m, o, r in zip(
            old.column("msm_id").to_pylist(),
            old.column("outcome").to_pylist(),
            old.column("rule_id").to_pylist(),
            strict=True,
        )
    }
    sources = (
        sorted(p for p in store.sources.glob("*") if not p.name.endswith(".tmp"))
        if store.sources.is_dir()
        else []
    )
    if before and not sources:
        raise StoreError(f"{store.root} keeps no source files to re-judge from (sources/)")
    extractor = Extractor()
    parts: list[pa.Table] = []
    done: set[str] = set()
    for path in sources:
        sha256 = path.name.split(".", 1)[0]
        with open(path, "rb") as raw:
            for line, _text, obj in read_records(path, raw):
                if isinstance(obj, BadRecord) or not isinstance(obj, dict):
                    continue
                try:
                    msm_id = extractor.add(obj, Source(path.name, sha256, line))
                except (RecordError, ValueError, TypeError):
                    continue
                done.add(msm_id)
                if extractor.count >= 20_000:
                    parts.append(extractor.take()["verdicts"])
    parts.append(extractor.take()["verdicts"])
    new = pa.concat_tables(parts)
    keep = pa.array(sorted(before), type=pa.string())
    new = new.filter(pc.is_in(new.column("msm_id"), value_set=keep))
    # one verdict per measurement (a source file may hold a measurement twice)
    seen: set[str] = set()
    mask = []
    for m in new.column("msm_id").to_pylist():
        mask.append(m not in seen)
        seen.add(m)
    new = new.filter(pa.array(mask))
    missing = set(before) - seen
    if missing:
        raise StoreError(
            f"{len(missing)} stored measurement(s) are not in the kept source files;"
            " nothing was changed"
        )
    changed = sum(
        1
        for m, o, r in zip(
            new.column("msm_id").to_pylist(),
            new.column("outcome").to_pylist(),
            new.column("rule_id").to_pylist(),
            strict=True,
        )
        if before.get(m) != (o, r)
    )
    new = new.sort_by([("measurement_start_time", "ascending"), ("msm_id", "ascending")])
    store.clean_staging()
    store.replace_table("verdicts", new, store.new_run())
    store.clean_staging()
    return new.num_rows, changed
