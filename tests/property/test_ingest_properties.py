"""Properties of ``blockproof ingest`` (pipeline/ingest.py) on arbitrary and damaged input.

Input lines are real OONI samples (tests/data/ooni), the same samples with parts
replaced, deleted or retyped, arbitrary JSON, and arbitrary bytes. Whatever the mix:

- nothing raises, in a worker (parse, extract, stage its batch) or in a whole run;
- every line is accounted for: ``read == new + duplicate + bad``; each bad line is
  in the rejects with its line number and a reason; each new one has its rows staged
  (one ``measurements`` and one ``verdicts`` row, observation rows only for kept
  measurements); real samples are never rejected;
- the same holds for ``.json`` documents written by any JSON writer, and for
  gzipped files cut short.

tests/integration/test_pipeline_ooni.py ingests the samples as they are.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from hypothesis import example
from hypothesis import strategies as st
from properties_kit import JSON_SCALARS, RUNS, explore, json_values, mutated_sample, ooni_samples

from blockproof.pipeline.ingest import Worker, ingest
from blockproof.pipeline.schema import TABLES
from blockproof.pipeline.store import Store
from figures import Figures

TARGET = "ingest of arbitrary JSON lines"
# a failing example made of real samples is big: hypothesis warns before printing it
pytestmark = [
    pytest.mark.reliability,
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

SHA = "0" * 64
GOOD = (
    b'{"test_name":"web_connectivity","measurement_start_time":"2024-02-17 17:05:12",'
    b'"probe_cc":"PK","input":"https://x.com/","report_id":"r1","test_keys":{}}'
)


@cache
def measurement_samples() -> tuple[bytes, ...]:
    """The samples that are measurements (a bare ``test_keys`` file is not)."""
    return tuple(raw for _name, raw in ooni_samples() if b'"measurement_start_time"' in raw)


# values a censor's data, a broken probe or a hostile uploader might put anywhere
ODD = st.sampled_from(
    [
        2**31,
        2**63 - 1,
        2**64 - 1,
        -(2**63),
        -1,
        1e308,
        -0.0,
        "AS" + "9" * 30,
        "AS-1",
        "ZZ",
        "/.",
        "..",
        "a/",
        "\x00x",
        "é",
        "",
        "2024-02-17 17:05:12",
        "0001-01-01 00:00:00",
        "9999-12-31T23:59:59.999999+14:00",
        "2024-02-17",
        "web_connectivity",
        "\udce9x",
        "https://x.com:99999/",
        "http://[::1/",
        "[::1]:443",
        "1.2.3.4:65536",
        "\U0001f600",
    ]
)
replacement = ODD | json_values(ODD | JSON_SCALARS, max_leaves=6)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # a lone surrogate: the standard library writes it as an escape
        return json.dumps(value).encode()


lines = st.one_of(
    st.sampled_from(measurement_samples()),
    mutated_sample(replacement).map(_dumps),
    mutated_sample(replacement).map(_dumps),
    json_values(ODD | JSON_SCALARS).map(_dumps),
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b" ").strip() or b"x"),
    st.sampled_from(measurement_samples()).flatmap(
        lambda raw: st.integers(1, len(raw) - 1).map(lambda n: raw[:n])  # cut short
    ),
)


def _staged_rows(files: list[Path]) -> dict[str, list[str]]:
    """msm_id of every staged row, by table."""
    rows: dict[str, list[str]] = {name: [] for name in TABLES}
    for path in files:
        table = next(part for part in path.parts if part in TABLES)
        rows[table] += pq.read_table(path, columns=["msm_id"]).column("msm_id").to_pylist()
    return rows


@example(
    batch=[GOOD, GOOD.replace(b"{}", b'{"tcp_connect":[{"ip":"1.2.3.4","port":1099511627776}]}')]
)
@example(
    batch=[
        GOOD.replace(b"r1", b"r2"),
        GOOD.replace(b'"PK"', b'"PK","probe_asn":"AS' + b"9" * 30 + b'"'),
    ]
)
@example(batch=[GOOD, GOOD.replace(b"{}", b'{"requests":[{"response":{"code":4294967296}}]}')])
@example(
    batch=[GOOD, GOOD.replace(b"{}", b'{"queries":[{"transaction_id":18446744073709551615}]}')]
)
def prop_worker_accounts_for_every_line(batch: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker(Store(tmp), "run", 0, batch=len(batch) + 1)
        numbered = list(enumerate(batch, 1))
        assert worker.feed("/in/lines.jsonl", SHA, numbered) is None
        done = worker.flush()
        kept_rejects = worker.rejects.close()
        counts, bad = worker.counts, sum(worker.reasons.values())
        assert counts["read"] == len(batch)
        assert counts["new"] + counts["duplicate"] + bad == counts["read"]
        rejected = []
        if kept_rejects is not None:
            for text in Path(kept_rejects).read_bytes().splitlines():
                record = orjson.loads(text)
                assert record["source"] == "/in/lines.jsonl"
                assert record["reason"]
                rejected.append(record["line"])
        assert len(rejected) == bad
        for number in rejected:
            assert batch[number - 1] not in measurement_samples(), "a real sample was rejected"
        if done is None:
            assert counts["new"] == 0
            return
        assert len(done["ids"]) == counts["new"]
        rows = _staged_rows([Path(f) for f in done["files"]])
        assert sorted(rows["measurements"]) == sorted(done["ids"])
        assert sorted(rows["verdicts"]) == sorted(done["ids"])
        for name in ("obs_dns", "obs_tcp", "obs_tls", "obs_http"):
            assert set(rows[name]) <= set(done["ids"]), f"{name} rows of a rejected measurement"


@pytest.mark.parametrize("run", RUNS)
def test_a_worker_accounts_for_every_line(run: str, figures: Figures) -> None:
    explore(
        figures,
        run,
        TARGET,
        prop_worker_accounts_for_every_line,
        st.lists(lines, min_size=1, max_size=8),
        scale=0.5,
    )


# ------------------------------------------------------------------ whole runs


def _json_text(value: Any, how: str) -> str:
    """JSON text as different writers write it (the standard library allows what orjson
    refuses: integers beyond 64 bits, lone surrogates, deep nesting)."""
    if how == "orjson":
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # what orjson cannot write, the standard library can
            pass
    return json.dumps(value)


big_or_odd = st.sampled_from([10**30, -(10**25), "\ud800", "\udfff x", [[[[[[[[[[[]]]]]]]]]]]])
deep = st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)


@st.composite
def input_files(draw: st.DrawFn) -> tuple[str, bytes, int | None]:
    """(file name, content, number of non-blank lines if it is JSON lines read whole)."""
    kind = draw(st.sampled_from(["jsonl", "jsonl.gz", "cut.jsonl.gz", "json", "json.gz"]))
    if kind.endswith(("jsonl", "jsonl.gz")):
        batch = draw(st.lists(lines, min_size=1, max_size=6))
        if draw(st.booleans()):
            batch.append(draw(deep).encode())
        text = b"\n".join(batch) + b"\n"
        if kind == "jsonl":
            return "in.jsonl", text, len(batch)
        packed = gzip.compress(text)
        if kind == "cut.jsonl.gz":
            return "in.jsonl.gz", packed[: draw(st.integers(10, len(packed)))], None
        return "in.jsonl.gz", packed, len(batch)
    objects = draw(st.lists(mutated_sample(replacement | big_or_odd), min_size=1, max_size=4))
    if draw(st.booleans()):
        objects.append(draw(st.sampled_from([1, "x", None, []]) | big_or_odd))
    text = (
        "["
        + ", ".join(_json_text(o, draw(st.sampled_from(["stdlib", "orjson"]))) for o in objects)
        + "]"
    )
    if draw(st.booleans()):
        text = text[:-1] + ", " + draw(deep) + "]"
    name = "in.json"
    data = text.encode("utf-8", "surrogatepass")
    if kind == "json.gz":
        name, data = "in.json.gz", gzip.compress(data)
    return name, data, None


def _check_run(tmp: Path, name: str, content: bytes, nonblank: int | None) -> None:
    source = tmp / "input" / name
    source.parent.mkdir()
    source.write_bytes(content)
    store = Store(tmp / "store")
    report = ingest([source], store, jobs=1, batch=3)
    assert report.read == report.new + report.duplicate + report.bad
    if nonblank is not None:
        assert report.read == nonblank
    rejected = [
        orjson.loads(text)
        for path in report.rejects
        for text in Path(path).read_bytes().splitlines()
    ]
    assert len(rejected) == report.bad
    assert all(r["reason"] and r["source"] == str(source.resolve()) for r in rejected)
    assert sum(report.reasons.values()) == report.bad
    kept = store.files("measurements")
    stored = sum(pq.read_metadata(p).num_rows for p in kept)
    assert stored == report.new
    assert not (store.root / ".staging").exists()
    again = ingest([source], store, jobs=1)  # the same input again adds nothing:
    assert again.new == 0
    if report.new:  # a file ingested whole into a store is not even read again
        assert (again.skipped, again.read) == (1, 0)
    else:  # a store without measurements knows no file: read again, as bad as before
        assert (again.skipped, again.read, again.bad) == (0, report.read, report.bad)
    reread = ingest([source], store, jobs=1, reread=True)  # and read again, every record
    assert reread.new == 0  # it holds is one already stored
    assert reread.duplicate == report.new + report.duplicate


@example(
    case=(
        "in.json",
        b'[{"test_name":"x","measurement_start_time":"2024-02-17 17:05:12","v":'
        + b"9" * 30
        + b"}]",
        None,
    )
)
@example(
    case=(
        "in.json",
        b'[{"test_name":"x","measurement_start_time":"2024-02-17 17:05:12","v":"\\ud800"}]',
        None,
    )
)
@example(case=("in.json", b"[" + GOOD + b", " + b"[" * 5000 + b"]" * 5000 + b"]", None))
@example(case=("in.jsonl", GOOD + b"\n" + b"[" * 5000 + b"]" * 5000 + b"\n", 2))
def prop_a_run_accounts_for_every_record(case: tuple[str, bytes, int | None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _check_run(Path(tmp), *case)


@pytest.mark.parametrize("run", RUNS)
def test_an_ingest_run_accounts_for_every_record(run: str, figures: Figures) -> None:
    explore(figures, run, TARGET, prop_a_run_accounts_for_every_record, input_files(), scale=0.1)
