"""``blockproof fetch ooni`` against a real S3 server on loopback, filled like OONI's bucket.

The server is moto's (``ThreadedMotoServer``, 127.0.0.1, a free port): real HTTP, real
S3 listings with delimiters and pages, real ETags, a public-read bucket policy like the
one of ``ooni-data-eu-fra``. The bucket holds real OONI measurements (tests/data/ooni and
tests/data/ooni-extra, see their SOURCES.md), one JSON line each, gzipped, under keys laid
out as OONI's uploader lays them out (``raw/YYYYMMDD/HH/CC/TESTNAME/...n1.0.jsonl.gz``),
each with its postcan twin (``.tar.gz`` of ``{"format": "json", "content": ...}`` posts),
plus one folder with only a postcan, and decoys: other countries, other tests, the hours
just outside the asked days, a sub-folder. The keys are this test's choice (each file's
country and test are those of its measurements; the hours are not their measurement
times, as in OONI's bucket, where the hour is that of the upload).

A small proxy (``FaultyProxy``) in front of the server breaks chosen requests (503, a
connection closed without an answer, a body cut in the middle, 404) to show the
retries; a client wrapper raises Ctrl-C in the middle of a download.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import re
import sys
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blockproof.cli import main
from blockproof.sources.fetch import Options, fetch
from blockproof.sources.ooni_bucket import LOCK_NAME, MANIFEST_NAME, TEMP_SUFFIX, make_request
from blockproof.sources.s3 import Body, BucketClient, ObstoreBucket
from s3_kit import REGION, FaultyProxy, admin, public_bucket, s3_server

DATA = Path(__file__).parent.parent / "data"
REAL = DATA / "ooni" / "probe-cli-real"
FASTPATH = DATA / "ooni" / "fastpath-testdata"
EXTRA = DATA / "ooni-extra" / "fastpath-testdata"

# What the tests ask for: two countries, Web Connectivity, two days.
ASK = ["--cc", "IT", "--cc", "IR", "--since", "2024-01-23", "--until", "2024-01-24"]
WC = "webconnectivity"

# Stem -> the measurements it holds. Each asked stem has its .jsonl.gz and its postcan
# twin, as OONI's uploader writes them; the JSON lines are taken, the twin left aside.
ASKED_JSONL: dict[str, list[Path]] = {
    f"raw/20240123/14/IT/{WC}/2024012314_IT_{WC}.n1.0": [
        REAL / "manual-issue-2456.measurement.json.gz"
    ],
    f"raw/20240124/13/IT/{WC}/2024012413_IT_{WC}.n1.0": [
        REAL / "manual-firefoxcom.measurement.json.gz"
    ],
    f"raw/20240124/14/IT/{WC}/2024012414_IT_{WC}.n1.0": [REAL / "manual-8844.measurement.json"],
    f"raw/20240124/14/IT/{WC}/2024012414_IT_{WC}.n1.1": [
        REAL / "cmd-minipipeline-nexa.polito.it.measurement.json",
        REAL / "manual-dnsgoogle80.measurement.json",
    ],
}
# Uploaded in one part of a multipart upload: its ETag is not an MD5 ("...-1").
ASKED_MULTIPART = {f"raw/20240124/20/IR/{WC}/2024012420_IR_{WC}.n1.0": [FASTPATH / "bug_352.json"]}
# A folder with only a postcan: taken, and converted to .postcan.jsonl.gz.
ASKED_POSTCAN = {
    f"raw/20240123/19/IR/{WC}/2024012319_IR_{WC}.n1.0": [
        FASTPATH / "web_connectivity_ir_fp.json",
        FASTPATH / "web_connectivity_null2.json",
    ]
}
DECOYS: dict[str, list[Path]] = {
    # other countries, in asked hours
    f"raw/20240123/14/ID/{WC}/2024012314_ID_{WC}.n1.0": [
        FASTPATH / "20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json"
    ],
    f"raw/20240124/13/NL/{WC}/2024012413_NL_{WC}.n1.0": [FASTPATH / "bug_351.json"],
    # other tests, in asked countries and hours
    "raw/20240123/14/IT/signal/2024012314_IT_signal.n1.0": [EXTRA / "signal_022.json"],
    "raw/20240124/14/IT/telegram/2024012414_IT_telegram.n1.0": [EXTRA / "telegram_nourl.json"],
    "raw/20240123/19/IT/tor/2024012319_IT_tor.n1.0": [EXTRA / "tor.json"],
    # the hour before the first asked day, the hour after the last
    f"raw/20240122/23/IT/{WC}/2024012223_IT_{WC}.n1.0": [
        REAL / "manual-noipv6.measurement.json.gz"
    ],
    f"raw/20240125/00/IT/{WC}/2024012500_IT_{WC}.n1.0": [
        REAL / "manual-youtube.measurement.json.gz"
    ],
    # a sub-folder of an asked folder is not a file of that folder
    f"raw/20240124/13/IT/{WC}/extra/2024012413_IT_{WC}.n1.0": [
        FASTPATH / "web_connectivity_no_body.json"
    ],
}

EXPECTED_FILES = sorted(
    [f"{stem}.jsonl.gz" for stem in (*ASKED_JSONL, *ASKED_MULTIPART)]
    + [f"{stem}.tar.gz" for stem in ASKED_POSTCAN]
    + [f"{stem}.postcan.jsonl.gz" for stem in ASKED_POSTCAN]
)
EXPECTED_LINES = sum(
    len(v) for d in (ASKED_JSONL, ASKED_MULTIPART, ASKED_POSTCAN) for v in d.values()
)


def measurement(path: Path) -> dict[str, Any]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    document = json.loads(raw)
    assert isinstance(document, dict)
    return document


def jsonl_gz(paths: list[Path]) -> bytes:
    lines = b"".join(
        json.dumps(measurement(p), separators=(",", ":")).encode() + b"\n" for p in paths
    )
    return gzip.compress(lines, mtime=0)


def postcan(stem: str, paths: list[Path]) -> bytes:
    """A postcan as OONI's uploader writes it: a tar.gz of one .post document each."""
    hour = stem.rsplit("/", 1)[-1].split(".", 1)[0]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in paths:
            msmt = measurement(path)
            start = datetime.strptime(msmt["measurement_start_time"], "%Y-%m-%d %H:%M:%S")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            uid = f"{start:%Y%m%d%H%M%S}.000000_{msmt['probe_cc']}_webconnectivity_{digest}"
            data = json.dumps({"format": "json", "content": msmt}).encode()
            info = tarfile.TarInfo(f"var/lib/ooniapi/measurements/incoming/{hour}/{uid}.post")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# -- the S3 server and its buckets ------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(server: str) -> dict[str, bytes]:
    """A fresh bucket filled as described above; returns {"": name, key: bytes...}."""
    name = public_bucket(server)
    s3 = admin(server)
    objects: dict[str, bytes] = {}
    for stem, paths in {**ASKED_JSONL, **DECOYS}.items():
        objects[f"{stem}.jsonl.gz"] = jsonl_gz(paths)
        objects[f"{stem}.tar.gz"] = postcan(stem, paths)
    for stem, paths in ASKED_POSTCAN.items():
        objects[f"{stem}.tar.gz"] = postcan(stem, paths)
    for key, data in objects.items():
        s3.put_object(Bucket=name, Key=key, Body=data)
    for stem, paths in ASKED_MULTIPART.items():
        key, data = f"{stem}.jsonl.gz", jsonl_gz(paths)
        upload = s3.create_multipart_upload(Bucket=name, Key=key)
        part = s3.upload_part(
            Bucket=name, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=data
        )
        s3.complete_multipart_upload(
            Bucket=name,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )
        objects[key] = data
    return {"": name.encode(), **objects}


def name_of(bucket: dict[str, bytes]) -> str:
    return bucket[""].decode()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def run_cli(
    endpoint: str, bucket: dict[str, bytes], out: Path, *extra: str
) -> tuple[int, str, str]:
    return invoke(
        "fetch", "ooni", *ASK, "--out", str(out), "--endpoint", endpoint,
        "--bucket", name_of(bucket), *extra,
    )  # fmt: skip


def files_under(out: Path) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.name not in (MANIFEST_NAME, LOCK_NAME)
    )


def snapshot(out: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime in ns, size) of every file, the manifest and the lock included."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for p in out.rglob("*")
        if p.is_file()
    }


def request() -> Any:
    return make_request(
        ["IT", "IR"], ["web_connectivity"], datetime(2024, 1, 23).date(),
        datetime(2024, 1, 24).date(), today=datetime.now(UTC).date(),
    )  # fmt: skip


# -- the tests --------------------------------------------------------------------------


def test_fetch_takes_exactly_the_asked_files_whole(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    code, stdout, stderr = run_cli(server, bucket, out)
    assert code == 0, stderr
    assert files_under(out) == EXPECTED_FILES
    for key in EXPECTED_FILES:
        if key.endswith(".postcan.jsonl.gz"):
            continue
        assert (out / key).read_bytes() == bucket[key], key
    # the postcan's conversion holds its measurements, each with its measurement_uid
    (stem, paths), = ASKED_POSTCAN.items()  # fmt: skip
    lines = gzip.decompress((out / f"{stem}.postcan.jsonl.gz").read_bytes()).splitlines()
    converted = [json.loads(line) for line in lines]
    assert [m["report_id"] for m in converted] == [measurement(p)["report_id"] for p in paths]
    uid = re.compile(r"\d{14}\.000000_IR_webconnectivity_[0-9a-f]{16}")
    assert all(uid.fullmatch(m["measurement_uid"]) for m in converted)
    # 2 days x 24 hours x 2 countries x 1 test
    assert stdout.startswith("96 folder(s) listed, 6 file(s) (1 postcan(s) without JSON lines)")
    assert "0 already complete, 6 downloaded" in stdout
    assert "1 postcan(s) converted (2 measurements), 0 failed" in stdout
    assert not list(out.rglob(f"*{TEMP_SUFFIX}"))


def test_second_run_downloads_nothing_and_rewrites_no_file(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    assert run_cli(server, bucket, out)[0] == 0
    before = snapshot(out)
    code, stdout, stderr = run_cli(server, bucket, out)
    assert code == 0, stderr
    assert "6 already complete, 0 downloaded (0 B), 0 failed" in stdout
    assert snapshot(out) == before


def test_an_interrupted_run_is_completed_by_the_next(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    assert run_cli(server, bucket, out)[0] == 0
    keys = [k for k in EXPECTED_FILES if k.endswith(".jsonl.gz") and ".postcan." not in k]
    cut = out / keys[0]
    cut.write_bytes(cut.read_bytes()[:100])  # a file cut short
    stale = cut.parent / f".{cut.name}.0123456789ab{TEMP_SUFFIX}"  # a crash's leftover
    stale.write_bytes(b"partial")
    manifest = json.loads((out / MANIFEST_NAME).read_bytes())
    del manifest["files"][keys[1]]  # finished after the manifest's last write
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    (stem, _), = ASKED_POSTCAN.items()  # fmt: skip
    (out / f"{stem}.postcan.jsonl.gz").unlink()  # the conversion never happened
    kept = {k: v for k, v in snapshot(out).items() if k in (keys[1], f"{stem}.tar.gz")}

    code, stdout, stderr = run_cli(server, bucket, out, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["downloaded"] == 1
    assert report["adopted"] == 1
    assert report["converted"] == 1
    assert report["stale_temporary_files_removed"] == 1
    assert files_under(out) == EXPECTED_FILES
    assert cut.read_bytes() == bucket[keys[0]]
    assert {k: v for k, v in snapshot(out).items() if k in kept} == kept  # not rewritten
    before = snapshot(out)
    assert run_cli(server, bucket, out)[0] == 0
    assert snapshot(out) == before


class _CtrlC(BucketClient):
    """Raises KeyboardInterrupt (as Ctrl-C would) in the middle of one download."""

    def __init__(self, inner: BucketClient, key: str) -> None:
        self.inner = inner
        self.key = key

    def list_folder(self, prefix: str) -> Any:
        return self.inner.list_folder(prefix)

    def open(self, key: str) -> Body:
        body = self.inner.open(key)
        if key != self.key:
            return body

        class Cut:
            etag, size = body.etag, body.size

            def chunks(self) -> Iterator[bytes]:
                for chunk in body.chunks():
                    yield chunk[: len(chunk) // 2]
                    raise KeyboardInterrupt

        return Cut()


def test_ctrl_c_leaves_no_part_and_the_next_run_completes(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    client = ObstoreBucket(name_of(bucket), region=REGION, endpoint=server)
    victim = EXPECTED_FILES[0]
    with pytest.raises(KeyboardInterrupt):
        fetch(request(), out, _CtrlC(client, victim), bucket=name_of(bucket))
    assert not (out / victim).exists()
    assert not list(out.rglob(f"*{TEMP_SUFFIX}"))
    report = fetch(request(), out, client, bucket=name_of(bucket))
    assert not report.failed
    assert files_under(out) == EXPECTED_FILES
    assert (out / victim).read_bytes() == bucket[victim]


def test_a_changed_object_is_downloaded_again(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    assert run_cli(server, bucket, out)[0] == 0
    key = next(iter(ASKED_JSONL)) + ".jsonl.gz"
    changed = bytearray(bucket[key])
    changed[-5] ^= 0xFF  # same size, other bytes: only the ETag tells
    admin(server).put_object(Bucket=name_of(bucket), Key=key, Body=bytes(changed))
    code, stdout, _ = run_cli(server, bucket, out)
    assert code == 0
    assert "5 already complete, 1 downloaded" in stdout
    assert (out / key).read_bytes() == bytes(changed)


# -- a server that fails ----------------------------------------------------------------


FAST = Options(jobs=4, attempts=4, backoff_base=0.01, backoff_cap=0.05, seed=7)


def test_a_flaky_server_is_retried(server: str, bucket: dict[str, bytes], tmp_path: Path) -> None:
    out = tmp_path / "ooni"
    with FaultyProxy(server, faults=["503", "reset", "cut"], list_faults=2) as proxy:
        client = ObstoreBucket(name_of(bucket), region=REGION, endpoint=proxy.url)
        report = fetch(request(), out, client, bucket=name_of(bucket), options=FAST)
    assert proxy.injected == 5
    assert report.failed == []
    assert report.retries == 5
    assert report.downloaded == 6
    assert files_under(out) == EXPECTED_FILES
    for key in EXPECTED_FILES:
        if not key.endswith(".postcan.jsonl.gz"):
            assert (out / key).read_bytes() == bucket[key], key


def test_retries_are_bounded_and_every_other_file_still_arrives(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    hopeless = EXPECTED_FILES[0]
    with FaultyProxy(server, broken={hopeless: "503"}) as proxy:
        client = ObstoreBucket(name_of(bucket), region=REGION, endpoint=proxy.url)
        report = fetch(request(), out, client, bucket=name_of(bucket), options=FAST)
    assert proxy.injected == FAST.attempts
    assert [key for key, _ in report.failed] == [hopeless]
    assert "after 4 attempts" in report.failed[0][1]
    assert report.downloaded == 5
    assert files_under(out) == [k for k in EXPECTED_FILES if k != hopeless]


def test_a_failed_file_makes_the_command_exit_1_after_trying_all(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    gone = EXPECTED_FILES[-1]
    with FaultyProxy(server, broken={gone: "404"}) as proxy:
        code, stdout, stderr = invoke(
            "fetch", "ooni", *ASK, "--out", str(out), "--endpoint", proxy.url,
            "--bucket", name_of(bucket),
        )  # fmt: skip
    assert code == 1
    assert "5 downloaded" in stdout
    assert "1 failed" in stdout
    assert f"failed: {gone}: getting {gone}" in stderr
    assert proxy.injected == 1  # a 404 is not retried


# -- then ingest ------------------------------------------------------------------------


def test_ingest_reads_every_downloaded_measurement(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    assert run_cli(server, bucket, out)[0] == 0
    lines = sum(len(gzip.decompress(p.read_bytes()).splitlines()) for p in out.rglob("*.jsonl.gz"))
    assert lines == EXPECTED_LINES
    code, stdout, stderr = invoke("ingest", str(out), "--store", str(tmp_path / "store"), "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["files"] == len([k for k in EXPECTED_FILES if k.endswith(".jsonl.gz")])
    assert report["new"] == EXPECTED_LINES
    assert report["bad"] == 0


# -- bad input --------------------------------------------------------------------------

TOMORROW = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
ONE_DAY = ["--cc", "PK", "--since", "2024-02-01", "--until", "2024-02-01"]
BAD = [
    (["--cc", "PK", "--since", "2024-02-10", "--until", "2024-02-01"], "is before --since"),
    (["--cc", "PAK", "--since", "2024-02-01", "--until", "2024-02-01"], "two-letter country"),
    (["--cc", "P1", "--since", "2024-02-01", "--until", "2024-02-01"], "two-letter country"),
    ([*ONE_DAY, "--test", "Web-Connectivity"], "OONI test name"),
    (["--cc", "PK", "--since", "2024-02-30", "--until", "2024-03-01"], "YYYY-MM-DD"),
    (["--cc", "PK", "--since", "1 Feb 2024", "--until", "2024-03-01"], "YYYY-MM-DD"),
    (["--cc", "PK", "--since", "2019-01-01", "--until", "2019-01-02"], "raw/ layout starts"),
    (["--cc", "PK", "--since", "2024-02-01", "--until", TOMORROW], "in the future"),
    (["--cc", "PK", "--since", "2021-01-01", "--until", "2022-12-31"], "add --yes"),
    ([*ONE_DAY, "--endpoint", "ftp://127.0.0.1/"], "expected http"),
    ([*ONE_DAY, "--endpoint", "http://127.0.0.1:9000/some/path"], "no path"),
    ([*ONE_DAY, "--endpoint", "http://user:pw@127.0.0.1:9000"], "no credentials"),
    ([*ONE_DAY, "--bucket", "Bad_Bucket"], "not an S3 bucket name"),
    ([*ONE_DAY, "--region", "europe"], "not an AWS region"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "never"
    code, stdout, stderr = invoke("fetch", "ooni", *args, "--out", str(out))
    assert code == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("blockproof: error: ")
    assert message in stderr
    assert not out.exists()  # nothing written


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, _, stderr = invoke("fetch", "ooni", "--since", "2024-02-01", "--out", str(tmp_path))
    assert code == 2
    assert "--cc" in stderr
    code, _, _ = invoke("fetch", "ooni", *ASK, "--out", str(tmp_path), "--jobs", "0")
    assert code == 2


def test_out_must_be_a_folder(server: str, bucket: dict[str, bytes], tmp_path: Path) -> None:
    out = tmp_path / "a-file"
    out.write_text("mine")
    code, _, stderr = run_cli(server, bucket, out)
    assert code == 2
    assert "is a file" in stderr
    assert out.read_text() == "mine"


def test_another_bucket_or_a_running_fetch_is_refused(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    assert run_cli(server, bucket, out)[0] == 0
    other = {"": public_bucket(server).encode()}
    code, _, stderr = run_cli(server, other, out)
    assert code == 2
    assert "holds files of bucket" in stderr
    with open(out / LOCK_NAME, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, stderr = run_cli(server, bucket, out)
    assert code == 2
    assert "another fetch is writing there" in stderr


def test_a_damaged_manifest_is_set_aside_and_files_checked_by_md5(
    server: str, bucket: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "ooni"
    assert run_cli(server, bucket, out)[0] == 0
    (out / MANIFEST_NAME).write_bytes(b"{not json")
    (multipart,) = (f"{stem}.jsonl.gz" for stem in ASKED_MULTIPART)
    before = {k: v for k, v in snapshot(out).items() if k in EXPECTED_FILES and k != multipart}
    code, stdout, stderr = run_cli(server, bucket, out, "--json")
    assert code == 0
    report = json.loads(stdout)
    # the multipart file has no MD5 to check against: it is downloaded again; the
    # others are kept as they are, the postcan's conversion too
    assert (report["adopted"], report["downloaded"]) == (5, 1)
    assert {k: v for k, v in snapshot(out).items() if k in before} == before
    assert "set aside" in stderr
    assert (out / (MANIFEST_NAME + ".bad")).read_bytes() == b"{not json"


def test_without_the_library_the_command_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)
    code, _, stderr = invoke("fetch", "ooni", *ASK, "--out", str(tmp_path / "o"))
    assert code == 2
    assert "pip install 'blockproof[fetch]'" in stderr


def test_help_teaches() -> None:
    code, out, _ = invoke("fetch", "ooni", "--help")
    assert code == 0
    for words in ("raw/YYYYMMDD/HH/CC/TESTNAME/", "--since", "blockproof ingest", "postcan"):
        assert words in out
    code, out, _ = invoke("--help")
    assert "fetch" in out


def test_ctrl_c_exits_130_with_a_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("blockproof.sources.fetch.fetch", interrupted)
    code, _, stderr = invoke(
        "fetch", "ooni", *ASK, "--out", str(tmp_path / "o"), "--endpoint", "http://127.0.0.1:9"
    )
    assert code == 130
    assert "interrupted: run the same command again" in stderr


def test_aws_endpoint_variables_cannot_redirect_the_client(
    server: str, bucket: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true")
    code, _, stderr = run_cli(server, bucket, tmp_path / "ooni")
    assert code == 0, stderr
    assert files_under(tmp_path / "ooni") == EXPECTED_FILES
    aws = ObstoreBucket("ooni-data-eu-fra", region=REGION)  # no request is made
    assert aws.url == "https://ooni-data-eu-fra.s3.eu-central-1.amazonaws.com"
