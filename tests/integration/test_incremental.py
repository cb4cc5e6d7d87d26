"""The incremental pipeline on a simulated campaign: ingest skips what it has, analyze
keeps event ids stable with revisions.

The campaign (a scenario of its own, below): three networks of country XA for three
weeks, X blocked by TLS resets on two of them from 12 March 06:00 to 16 March 18:00 UTC.
Its measurements are cut at 14 March 00:00: the first part holds the block's start (an
ongoing event), the second its end.

* ingest: a second ingest of the same folder reads nothing, adds nothing, leaves every
  stored file as it was, and is fast; a file that grew (lines appended) is read again
  and only its new measurements are added; a copy under another name, or the same file
  touched, is skipped by its hash; an ingest interrupted mid-way records nothing, and
  the next one finishes the work without storing anything twice.
* analyze: twice on the same store gives the same ids, revision 1, nothing updated;
  after the second part is ingested, the same event ends: the same id, revision 2,
  ``end`` set, ``first_seen`` kept and ``updated`` moved.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.compute as pc
import pytest

from blockproof.pipeline import ingest as ingest_module
from blockproof.pipeline.analyze import analyze_store, save
from blockproof.pipeline.events import read_events, read_history, resolve_event_id
from blockproof.pipeline.ingest import IngestReport, ingest
from blockproof.pipeline.store import Store
from blockproof.simulate import resolve_sim_scenario, simulate

pytestmark = pytest.mark.timeout(300)

SCENARIO = """
name = "incremental"
description = "X blocked (TLS reset) on two of three networks for four and a half days"
country = "XA"
start = 2024-03-01
days = 21
probes = 60
urls = ["https://x.com/", "https://www.wikipedia.org/"]

[behaviour]
mean_interval_hours = 6
skip_probability = 0.1
stable_fraction = 0.5
mean_lifetime_days = 30
empty_hour_probability = 0.005

[baseline]
false_positive_rate = 0.005

[[network]]
asn = "AS64496"
name = "Test Fixed One"
share = 0.34

[[network]]
asn = "AS64497"
name = "Test Fixed Two"
share = 0.33

[[network]]
asn = "AS64498"
name = "Test Mobile One"
share = 0.33
mobile = true

[[episode]]
label = "X blocked on two networks"
platform = "x"
networks = ["AS64496", "AS64498"]
start = 2024-03-12T06:00:00Z
end = 2024-03-16T18:00:00Z
method = "tls-reset"
"""
CUT = "2024-03-14 00:00:00"  # the block is on at the cut and ends after it


class Campaign:
    def __init__(self, root: Path) -> None:
        scenario = root / "incremental.toml"
        scenario.write_text(SCENARIO)
        whole = root / "whole.jsonl.gz"
        simulate(resolve_sim_scenario(scenario), whole, seed=3, compresslevel=1)
        self.first: list[bytes] = []
        self.second: list[bytes] = []
        with gzip.open(whole, "rb") as f:
            for line in f:
                when = orjson.loads(line)["measurement_start_time"]
                (self.first if when < CUT else self.second).append(line)
        assert len(self.first) > 1000
        assert len(self.second) > 1000

    def write(self, path: Path, lines: list[bytes], mode: str = "wb") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, mode, compresslevel=1) as f:
            f.writelines(lines)
        return path


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    return Campaign(tmp_path_factory.mktemp("campaign"))


def snapshot(store: Store) -> dict[str, tuple[int, int, str]]:
    """Every file of the store's tables and kept sources: size, mtime, SHA-256."""
    out: dict[str, tuple[int, int, str]] = {}
    for top in ("measurements", "verdicts", "obs_dns", "obs_tcp", "obs_tls", "obs_http",
                "sources", "rejects"):  # fmt: skip
        base = store.root / top
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            if path.is_file():
                st = path.stat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[str(path.relative_to(store.root))] = (st.st_size, st.st_mtime_ns, digest)
    return out


def stored_ids(store: Store) -> list[str]:
    ids: list[str] = store.read("measurements", ["msm_id"]).column("msm_id").to_pylist()
    return ids


def age(path: Path, seconds: int = 60) -> None:
    """Date the file's last write a minute back: as a file downloaded earlier is (a size
    and time only seconds old are not trusted, see IngestedFile.unchanged)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


def test_a_second_ingest_of_the_same_folder_reads_nothing(
    campaign: Campaign, tmp_path: Path
) -> None:
    folder = tmp_path / "raw"
    for i in range(3):  # three files of the first part
        age(campaign.write(folder / f"part-{i}.jsonl.gz", campaign.first[i::3]))
    store = Store(tmp_path / "store")
    first = ingest([folder], store, jobs=2)
    assert (first.new, first.skipped, first.bad) == (len(campaign.first), 0, 0)
    before = snapshot(store)
    second = ingest([folder], store, jobs=2)
    assert (second.files, second.skipped, second.read, second.new, second.duplicate) == (
        3, 3, 0, 0, 0,
    )  # fmt: skip
    assert second.skipped_bytes == second.bytes == first.bytes
    assert second.seconds < first.seconds / 10
    assert snapshot(store) == before
    # --reread reads them all again, and still stores nothing twice
    again = ingest([folder], store, jobs=2, reread=True)
    assert (again.skipped, again.new, again.duplicate) == (0, 0, len(campaign.first))
    assert {k: v for k, v in snapshot(store).items() if not k.startswith("rejects")} == before


def test_a_file_that_grew_is_read_again_and_only_its_new_lines_are_added(
    campaign: Campaign, tmp_path: Path
) -> None:
    path = campaign.write(tmp_path / "raw" / "feed.jsonl.gz", campaign.first)
    store = Store(tmp_path / "store")
    assert ingest([path], store, jobs=2).new == len(campaign.first)
    # lines appended in place (a second gzip member, as a growing log file gets them)
    campaign.write(path, campaign.second, mode="ab")
    grown = ingest([path], store, jobs=2)
    assert (grown.skipped, grown.new, grown.duplicate) == (
        0, len(campaign.second), len(campaign.first),
    )  # fmt: skip
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == len(campaign.first) + len(campaign.second)
    age(path)
    assert ingest([path], store, jobs=2).skipped == 1  # recorded with its new size


def test_a_republished_file_replaced_whole_adds_only_what_is_new(
    campaign: Campaign, tmp_path: Path
) -> None:
    path = campaign.write(tmp_path / "raw" / "day.jsonl.gz", campaign.first[:500])
    store = Store(tmp_path / "store")
    assert ingest([path], store, jobs=1).new == 500
    # republished: written under a temporary name and renamed over it, 200 more lines
    tmp = campaign.write(tmp_path / "raw" / "day.jsonl.gz.tmp", campaign.first[:700])
    tmp.replace(path)
    report = ingest([path], store, jobs=1)
    assert (report.new, report.duplicate, report.skipped) == (200, 500, 0)
    assert len(set(stored_ids(store))) == len(stored_ids(store)) == 700


def test_the_same_bytes_under_another_name_or_time_are_skipped_by_their_hash(
    campaign: Campaign, tmp_path: Path
) -> None:
    path = campaign.write(tmp_path / "raw" / "a.jsonl.gz", campaign.first[:300])
    store = Store(tmp_path / "store")
    ingest([path], store, jobs=1)
    copy = tmp_path / "elsewhere" / "b.jsonl.gz"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    os.utime(path)  # touched: a new time, the same bytes
    before = snapshot(store)
    report = ingest([path, copy], store, jobs=1)
    assert (report.skipped, report.read, report.new) == (2, 0, 0)
    assert snapshot(store) == before
    recorded = store.ingested()
    assert set(recorded) == {str(path.resolve()), str(copy.resolve())}
    assert recorded[str(path.resolve())].mtime_ns == path.stat().st_mtime_ns


def test_an_interrupted_ingest_is_redone_without_storing_anything_twice(
    campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = campaign.write(tmp_path / "raw" / "big.jsonl.gz", campaign.first)
    store = Store(tmp_path / "store")
    real_batch = ingest_module._Committer.batch
    committed: list[int] = []

    def batch_then_crash(self: Any, done: dict[str, Any]) -> None:
        if committed:
            raise KeyboardInterrupt  # the user presses Ctrl-C after the first batch
        real_batch(self, done)
        committed.append(len(done["ids"]))

    monkeypatch.setattr(ingest_module._Committer, "batch", batch_then_crash)
    with pytest.raises(KeyboardInterrupt):
        ingest([path], store, jobs=1, batch=1000)
    monkeypatch.undo()
    [done] = committed  # a batch is flushed once it holds 1000 measurements or more
    assert 1000 <= done < len(campaign.first)
    assert not store.ingested_path.exists()  # nothing recorded: the file is redone
    assert len(stored_ids(store)) == done
    report: IngestReport = ingest([path], store, jobs=1)
    assert (report.skipped, report.new, report.duplicate) == (
        0, len(campaign.first) - done, done,
    )  # fmt: skip
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == len(campaign.first)


def _analyze(store: Store, now: str) -> list[Any]:
    analysis = analyze_store(store)
    save(store, analysis, now=datetime.fromisoformat(now).replace(tzinfo=UTC))
    return read_events(store)


def test_analyze_keeps_event_ids_and_counts_revisions(campaign: Campaign, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest([campaign.write(tmp_path / "raw" / "1.jsonl.gz", campaign.first)], store, jobs=2)
    [first] = [e for e in _analyze(store, "2024-03-14T01:00:00") if e.platform == "x"]
    assert first.ongoing
    assert first.end is None
    assert (first.revision, first.first_seen, first.updated) == (
        1, "2024-03-14T01:00:00Z", "2024-03-14T01:00:00Z",
    )  # fmt: skip
    assert {n.asn for n in first.networks} <= {64496, 64498}
    # the same store again: the same ids, nothing updated
    again = _analyze(store, "2024-03-14T02:00:00")
    assert [(e.id, e.revision, e.updated) for e in again] == [
        (e.id, e.revision, e.updated) for e in _analyze(store, "2024-03-14T01:30:00")
    ]
    [same] = [e for e in again if e.platform == "x"]
    assert (same.id, same.revision, same.updated) == (first.id, 1, "2024-03-14T01:00:00Z")
    # the rest of the campaign: the block ends
    ingest([campaign.write(tmp_path / "raw" / "2.jsonl.gz", campaign.second)], store, jobs=2)
    [ended] = [e for e in _analyze(store, "2024-03-22T00:00:00") if e.platform == "x"]
    assert ended.id == first.id
    assert ended.revision == 2
    assert not ended.ongoing
    assert ended.end is not None
    assert ended.end.startswith("2024-03-16")
    assert (ended.first_seen, ended.updated) == ("2024-03-14T01:00:00Z", "2024-03-22T00:00:00Z")
    assert sorted(n.asn for n in ended.networks) == [64496, 64498]
    # every id ever given is in the history; the event's id resolves to itself
    history = {k.id: k for k in read_history(store, "")}
    assert history[first.id].status == "current"
    assert history[first.id].revision == 2
    assert resolve_event_id(store, first.id) == first.id
    assert resolve_event_id(store, "xa-x-2000010100-00000000") is None


def test_the_cells_of_an_analysis_are_the_cells_of_the_store(
    campaign: Campaign, tmp_path: Path
) -> None:
    """Ingesting in two parts gives the cells that ingesting it all at once gives."""
    split, whole = Store(tmp_path / "split"), Store(tmp_path / "whole")
    ingest([campaign.write(tmp_path / "a" / "1.jsonl.gz", campaign.first)], split, jobs=2)
    ingest([campaign.write(tmp_path / "a" / "2.jsonl.gz", campaign.second)], split, jobs=2)
    ingest([tmp_path / "a"], whole, jobs=2)
    one, two = analyze_store(split), analyze_store(whole)
    assert one.cells.equals(two.cells)
    assert [e.as_dict() for e in one.events] == [e.as_dict() for e in two.events]
    assert pc.sum(one.cells.column("n_measurements")).as_py() == len(campaign.first) + len(
        campaign.second
    )
