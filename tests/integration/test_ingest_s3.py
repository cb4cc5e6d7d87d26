"""``blockproof ingest s3://BUCKET/PREFIX``: measurement files read straight from a bucket.

The bucket is a real S3 server on loopback (moto, ``s3_kit``). It holds the input of
the verdict-identity test (``ingest_golden.corpus``: the repository's real OONI
measurements as documents, gzipped files and JSON lines) under nested keys, and
decoys that are not measurement files. Ingesting the URL must give the golden store
row for row, as a local ingest of the same files does, locally and on Spark; a second
run downloads nothing; OONI's postcans are converted; a flaky server is retried; an
object that cannot be read is counted, kept aside with its reason, and read again by
the next run, while every other object is stored.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from blockproof.cli import main
from blockproof.pipeline.ingest import ingest
from blockproof.pipeline.store import Store
from ingest_golden import corpus, read_golden, snapshot
from s3_kit import FaultyProxy, admin, public_bucket, s3_server

PREFIX = "raw/20240301/"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def golden() -> dict[str, list[dict[str, Any]]]:
    return read_golden()


def put(endpoint: str, bucket: str, objects: dict[str, bytes]) -> None:
    s3 = admin(endpoint)
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)


@pytest.fixture
def filled(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """A bucket holding the golden corpus under nested keys, and decoys; (name, keys)."""
    name = public_bucket(server)
    files = sorted(corpus(tmp_path_factory.mktemp("corpus")).iterdir())
    keys = [f"{PREFIX}{i % 3:02d}/IT/webconnectivity/{f.name}" for i, f in enumerate(files)]
    objects = {key: f.read_bytes() for key, f in zip(keys, files, strict=True)}
    objects |= {
        f"{PREFIX}README.txt": b"not measurements",
        f"{PREFIX}00/export.receipts.jsonl.gz": gzip.compress(b"{}\n"),
        f"{PREFIX}00/tree-head.json": b"{}",
        "raw/20240302/00/IT/webconnectivity/outside.jsonl": b"{}\n",  # not under the prefix
    }
    put(server, name, objects)
    return name, keys


def url(bucket: str, prefix: str = PREFIX) -> str:
    return f"s3://{bucket}/{prefix}"


def assert_golden(store: Store, golden: dict[str, list[dict[str, Any]]]) -> None:
    got = snapshot(store.root)
    assert sorted(got) == sorted(golden)
    for table, rows in golden.items():
        assert got[table] == rows, table


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.timeout(300)
def test_a_bucket_prefix_gives_the_golden_store_and_a_second_run_downloads_nothing(
    server: str,
    filled: tuple[str, list[str]],
    golden: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    bucket, keys = filled
    store = tmp_path / "store"
    code, out, err = invoke(
        "ingest", url(bucket), "--store", str(store), "--s3-endpoint", server, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    # as a local ingest of the same files: one of them is not a measurement (no test_name)
    assert (report["files"], report["new"], report["bad"]) == (len(keys), 84, 1)
    reject = orjson.loads(Path(report["rejects"][0]).read_bytes().splitlines()[0])
    assert reject["source"].startswith(f"s3://{bucket}/{PREFIX}")
    assert reject["source"].endswith("_PK_webconnectivity_19f5e0d803cbaea7.test_keys.json")
    assert_golden(Store(store), golden)
    # the same files kept whole (named by their SHA-256) as by a local ingest of the corpus
    local = Store(tmp_path / "local")
    ingest([corpus(tmp_path / "in")], local, jobs=2)
    kept = sorted(p.name for p in (store / "sources").iterdir())
    assert kept == sorted(p.name for p in local.sources.iterdir())
    # every object recorded under its URL and ETag
    recorded = orjson.loads((store / "ingested.json").read_bytes())["files"]
    assert sorted(f["path"] for f in recorded) == sorted(f"s3://{bucket}/{k}" for k in keys)
    assert all(f["etag"] for f in recorded)
    # again, behind a proxy that would fail any download: nothing is downloaded
    with FaultyProxy(server, broken={k: "404" for k in keys}) as proxy:
        again = ingest([url(bucket)], Store(store), jobs=2, s3_endpoint=proxy.url)
    assert proxy.injected == 0
    assert (again.skipped, again.new, again.bad, again.read) == (len(keys), 0, 0, 0)
    # a changed object (same size, other bytes: only its ETag tells) is read again
    lines = next(k for k in keys if k.endswith("copies.jsonl"))
    s3 = admin(server)
    data = s3.get_object(Bucket=bucket, Key=lines)["Body"].read()
    assert data.endswith(b"\n\n")
    s3.put_object(Bucket=bucket, Key=lines, Body=data[:-1] + b" ")
    third = ingest([url(bucket)], Store(store), jobs=2, s3_endpoint=server)
    assert (third.skipped, third.read, third.duplicate) == (len(keys) - 1, 63, 63)
    assert third.new == 0  # its measurements are all stored already
    # --reread downloads and reads every object again, and stores nothing twice
    fourth = ingest([url(bucket)], Store(store), jobs=2, s3_endpoint=server, reread=True)
    assert (fourth.skipped, fourth.new, fourth.duplicate, fourth.bad) == (0, 0, 84, 1)


@pytest.mark.timeout(300)
def test_a_flaky_server_is_retried_and_a_hopeless_object_is_kept_aside(
    server: str,
    filled: tuple[str, list[str]],
    golden: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    bucket, keys = filled
    store = Store(tmp_path / "store")
    hopeless = next(k for k in keys if k.endswith("copies.jsonl"))
    with FaultyProxy(server, faults=["503", "reset", "cut"], broken={hopeless: "404"}) as proxy:
        report = ingest([url(bucket)], store, jobs=2, s3_endpoint=proxy.url)
    assert proxy.injected >= 4
    assert report.bad == 2  # and the one that is not a measurement
    assert report.as_dict()["bad_reasons"] == {"object unreadable": 1, "not a measurement": 1}
    rejects = b"".join(Path(p).read_bytes() for p in report.rejects)
    assert f"s3://{bucket}/{hopeless}".encode() in rejects
    assert report.new == 84 - 3 * 21  # the JSON lines hold three copies of 21 measurements
    # the next run reads the object it could not read, and only that one
    after = ingest([url(bucket)], store, jobs=2, s3_endpoint=server)
    assert (after.skipped, after.new, after.bad, after.read) == (len(keys) - 1, 63, 0, 63)
    assert_golden(store, golden)


def _postcan(lines: list[bytes]) -> bytes:
    """A postcan as OONI's uploader writes it: a tar.gz of one .post document each."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i, line in enumerate(lines):
            data = json.dumps({"format": "json", "content": json.loads(line)}).encode()
            info = tarfile.TarInfo(f"var/lib/ooniapi/measurements/incoming/2024030100/{i}.post")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.timeout(300)
def test_postcans_without_a_twin_are_converted_and_ingested(server: str, tmp_path: Path) -> None:
    lines = (corpus(tmp_path / "in") / "copies.jsonl").read_bytes().split(b"\n")
    lines = [line for line in lines if line]
    bucket = public_bucket(server)
    folder = f"{PREFIX}00/IT/webconnectivity/"
    put(server, bucket, {
        f"{folder}a.n1.0.jsonl.gz": gzip.compress(b"\n".join(lines[:10]) + b"\n"),
        f"{folder}a.n1.0.tar.gz": _postcan(lines[:10]),  # its twin is taken instead
        f"{folder}b.n1.0.tar.gz": _postcan(lines[10:15]),  # alone: converted
    })  # fmt: skip
    store = Store(tmp_path / "store")
    report = ingest([url(bucket)], store, jobs=2, s3_endpoint=server)
    assert (report.files, report.new, report.bad) == (2, 15, 0)
    sources = [row["source"] for row in snapshot(store.root)["measurements"]]
    assert sorted(set(sources)) == ["a.n1.0.jsonl.gz", "b.n1.0.postcan.jsonl.gz"]
    assert sources.count("b.n1.0.postcan.jsonl.gz") == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["s3://Not_A_Bucket/raw/"], "is not a bucket name"),
        (["s3://ooni-test/raw/../x"], "'.' or '..'"),
        (["s3://ooni-test/raw/", "--s3-endpoint", "ftp://127.0.0.1:1"], "--s3-endpoint"),
        (["s3://ooni-test/raw/", "--s3-region", "mars"], "--s3-region"),
    ],
)
def test_bad_urls_and_options_exit_2_with_a_reason(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, _out, err = invoke("ingest", *args, "--store", str(tmp_path / "s"))
    assert code == 2
    assert message in err


def test_a_missing_bucket_or_an_empty_prefix_exits_2_with_a_reason(
    server: str, tmp_path: Path
) -> None:
    missing = ["ingest", "s3://no-such-bucket-here/raw/", "--s3-endpoint", server]
    code, _out, err = invoke(*missing, "--store", str(tmp_path / "s"))
    assert code == 2
    assert "cannot list s3://no-such-bucket-here/raw/" in err
    bucket = public_bucket(server)
    empty = ["ingest", f"s3://{bucket}/raw/", "--s3-endpoint", server]
    code, _out, err = invoke(*empty, "--store", str(tmp_path / "s"))
    assert code == 2
    assert (
        f"no measurement files (.json, .jsonl, .json.gz, .jsonl.gz) found under s3://{bucket}/raw/"
        in " ".join(err.split())
    )


@pytest.mark.spark
@pytest.mark.timeout(600)
def test_spark_ingest_of_a_bucket_gives_the_golden_store(
    server: str,
    filled: tuple[str, list[str]],
    golden: dict[str, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    bucket, keys = filled
    store = Store(tmp_path / "store")
    report = ingest([url(bucket)], store, jobs=2, engine="spark", s3_endpoint=server)
    assert (report.files, report.new, report.bad) == (len(keys), 84, 1)
    assert_golden(store, golden)
    again = ingest([url(bucket)], store, jobs=2, engine="spark", s3_endpoint=server)
    assert (again.skipped, again.new) == (len(keys), 0)
