"""Following OONI's data end to end: a bucket -> ``fetch ooni`` -> ``ingest`` -> ``analyze``
-> ``alerts``, and the same in rounds with ``blockproof pipeline``.

The bucket is a real S3 server on loopback (moto, ``s3_kit``), laid out as OONI's
``ooni-data-eu-fra`` (``raw/YYYYMMDD/HH/CC/TESTNAME/...jsonl.gz``). It holds:

- real OONI measurements of Italy (tests/data/ooni, see its SOURCES.md);
- a block with an onset and an end, in country XA (a user-assigned code, documentation AS
  numbers): no series of real raw measurements with a block in it is in the repository,
  so this one is simulated (``blockproof simulate``: X blocked by TLS resets on two of
  four networks from 10 to 17 March 2024), each hour's measurements in that hour's file;
- decoys that must not be downloaded: other countries, other tests, the days around.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner

from blockproof.alerts.atom import entry_id
from blockproof.cli import main
from blockproof.sources.ooni_bucket import LOCK_NAME, MANIFEST_NAME
from s3_kit import admin, public_bucket, s3_server

DATA = Path(__file__).parent.parent / "data"
REAL = DATA / "ooni" / "probe-cli-real"
FASTPATH = DATA / "ooni" / "fastpath-testdata"
EXTRA = DATA / "ooni-extra" / "fastpath-testdata"
WC = "webconnectivity"
SINCE, UNTIL = "2024-03-01", "2024-03-24"
ASK = ["--cc", "XA", "--cc", "IT", "--since", SINCE, "--until", UNTIL]

SCENARIO = """
name = "follow-block"
description = "X blocked (TLS reset) on AS64496 and AS64498 from 10 to 17 March 2024."
country = "XA"
start = 2024-03-01
days = 24
probes = 60
urls = ["https://x.com/", "https://twitter.com/", "https://www.wikipedia.org/",
        "https://www.youtube.com/"]

[behaviour]
mean_interval_hours = 8
skip_probability = 0.1
stable_fraction = 0.5
mean_lifetime_days = 30
empty_hour_probability = 0.005

[baseline]
false_positive_rate = 0.005

[[network]]
asn = "AS64496"
name = "Test Fixed One"
share = 0.25

[[network]]
asn = "AS64497"
name = "Test Fixed Two"
share = 0.25

[[network]]
asn = "AS64498"
name = "Test Mobile One"
share = 0.25
mobile = true

[[network]]
asn = "AS64499"
name = "Test Mobile Two"
share = 0.25
mobile = true

[[episode]]
label = "X blocked on two networks"
platform = "x"
networks = ["AS64496", "AS64498"]
start = 2024-03-10T06:00:00Z
end = 2024-03-17T18:00:00Z
method = "tls-reset"
"""

# Real Italian measurements, in days and hours of the window.
REAL_IT = {
    f"raw/20240305/14/IT/{WC}/2024030514_IT_{WC}.n1.0": [
        REAL / "manual-issue-2456.measurement.json.gz",
        REAL / "manual-firefoxcom.measurement.json.gz",
    ],
    f"raw/20240312/09/IT/{WC}/2024031209_IT_{WC}.n1.0": [REAL / "manual-8844.measurement.json"],
}
DECOYS = {
    f"raw/20240305/14/ID/{WC}/2024030514_ID_{WC}.n1.0": [
        FASTPATH / "20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json"
    ],
    "raw/20240312/09/IT/signal/2024031209_IT_signal.n1.0": [EXTRA / "signal_022.json"],
    "raw/20240313/10/XA/tor/2024031310_XA_tor.n1.0": [EXTRA / "tor.json"],
    f"raw/20240229/23/IT/{WC}/2024022923_IT_{WC}.n1.0": [
        REAL / "manual-noipv6.measurement.json.gz"
    ],
    f"raw/20240325/00/IT/{WC}/2024032500_IT_{WC}.n1.0": [
        REAL / "manual-youtube.measurement.json.gz"
    ],
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _document(path: Path) -> dict[str, Any]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    document = json.loads(raw)
    assert isinstance(document, dict)
    return document


def _jsonl_gz(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(line.rstrip(b"\n") + b"\n" for line in lines), mtime=0)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The simulated XA campaign's JSON lines."""
    work = tmp_path_factory.mktemp("campaign")
    (work / "follow.toml").write_text(SCENARIO)
    out = work / "follow.jsonl.gz"
    code, stdout, stderr = invoke("simulate", str(work / "follow.toml"), "--out", str(out))
    assert code == 0, stdout + stderr
    return gzip.decompress(out.read_bytes()).splitlines()


@pytest.fixture(scope="module")
def bucket(campaign: list[bytes]) -> Iterator[tuple[str, str, dict[str, bytes]]]:
    """(endpoint, bucket name, the objects that must be downloaded)."""
    by_hour: dict[str, list[bytes]] = defaultdict(list)
    for line in campaign:
        start = json.loads(line)["measurement_start_time"]  # "2024-03-10 06:12:00"
        day, hour = start[:10].replace("-", ""), start[11:13]
        by_hour[f"raw/{day}/{hour}/XA/{WC}/{day}{hour}_XA_{WC}.n1.0"].append(line)
    asked = {f"{stem}.jsonl.gz": _jsonl_gz(lines) for stem, lines in by_hour.items()}
    for stem, paths in REAL_IT.items():
        lines = [json.dumps(_document(p)).encode() for p in paths]
        asked[f"{stem}.jsonl.gz"] = _jsonl_gz(lines)
    decoys = {
        f"{stem}.jsonl.gz": _jsonl_gz([json.dumps(_document(p)).encode() for p in paths])
        for stem, paths in DECOYS.items()
    }
    with s3_server() as endpoint:
        name = public_bucket(endpoint)
        s3 = admin(endpoint)
        for key, data in {**asked, **decoys}.items():
            s3.put_object(Bucket=name, Key=key, Body=data)
        yield endpoint, name, asked


def _files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and p.name not in (MANIFEST_NAME, LOCK_NAME) and not p.name.startswith(".")
    }


def _snapshot(out: Path) -> dict[str, tuple[int, int]]:
    return {p.as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*")}


def _lines(objects: dict[str, bytes]) -> int:
    return sum(len(gzip.decompress(data).splitlines()) for data in objects.values())


def _x_block(store: Path) -> dict[str, Any]:
    events = json.loads((store / "events.json").read_text())["events"]
    blocks = [e for e in events if e["platform"] == "x" and e["country"] == "XA"]
    assert len(blocks) == 1, events
    block: dict[str, Any] = blocks[0]
    assert block["end"] is not None
    assert not block["ongoing"]
    assert {n["asn"] for n in block["networks"]} == {64496, 64498}
    return block


def _entry_ids(feed_file: Path) -> list[str]:
    feed = feedparser.parse(feed_file.read_bytes())
    assert feed.bozo == 0, feed.bozo_exception
    return [e.id for e in feed.entries]


def test_fetch_ingest_analyze_alerts(
    bucket: tuple[str, str, dict[str, bytes]], tmp_path: Path
) -> None:
    endpoint, name, asked = bucket
    data, store, feed_file = tmp_path / "ooni", tmp_path / "store", tmp_path / "alerts.atom"
    fetch = ["fetch", "ooni", *ASK, "--out", str(data), "--endpoint", endpoint, "--bucket", name]

    code, out, err = invoke(*fetch)
    assert code == 0, out + err
    assert _files(data) == asked  # exactly the asked countries and test, byte for byte

    before = _snapshot(data)
    code, out, err = invoke(*fetch)
    assert code == 0, out + err
    assert " 0 downloaded" in out
    assert _snapshot(data) == before  # a second fetch rewrites nothing

    code, out, err = invoke("ingest", str(data), "--store", str(store), "--json")
    assert code == 0, out + err
    assert json.loads(out)["new"] == _lines(asked)
    code, out, err = invoke("analyze", "--store", str(store))
    assert code == 0, out + err
    block = _x_block(store)

    code, out, err = invoke("alerts", "--store", str(store), "--atom", str(feed_file))
    assert code == 0, out + err
    ids = _entry_ids(feed_file)
    assert entry_id(f"{block['id']}/onset") in ids
    assert entry_id(f"{block['id']}/resolution") in ids
    feed = feed_file.read_bytes()

    code, out, err = invoke("alerts", "--store", str(store), "--atom", str(feed_file))
    assert code == 0, out + err
    assert "0 new alert(s)" in out
    assert feed_file.read_bytes() == feed  # a second run adds no entry


def test_pipeline_in_rounds_and_a_failed_round_caught_up(
    bucket: tuple[str, str, dict[str, bytes]], tmp_path: Path
) -> None:
    endpoint, name, asked = bucket
    data, store, feed_file = tmp_path / "ooni", tmp_path / "store", tmp_path / "alerts.atom"
    common = ["pipeline", *ASK, "--data", str(data), "--store", str(store), "--bucket", name,
              "--atom", str(feed_file)]  # fmt: skip

    # nothing listens there: the round fails, says so, and loses nothing
    code, out, err = invoke(*common, "--endpoint", "http://127.0.0.1:9", "--attempts", "1")
    assert code == 1, out + err
    assert out.startswith("round 1 ")
    assert "failed" in out
    assert "the next round catches up" in out
    assert not feed_file.exists()

    code, out, err = invoke(*common, "--endpoint", endpoint, "--every", "1s", "--rounds", "2")
    assert code == 0, out + err
    rounds = out.splitlines()
    assert [line.split()[:2] for line in rounds] == [["round", "1"], ["round", "2"]], out
    assert f"{len(asked)} new file(s)" in rounds[0]
    assert "1 new" in rounds[0]
    assert "already fetched" in rounds[1]
    assert f"{len(asked)} file(s) unchanged" in rounds[1]
    assert "alerts: 0 new" in rounds[1]
    assert _files(data) == asked
    block = _x_block(store)
    assert entry_id(f"{block['id']}/onset") in _entry_ids(feed_file)
    assert entry_id(f"{block['id']}/resolution") in _entry_ids(feed_file)
