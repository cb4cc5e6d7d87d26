"""The sans-IO half of ``fetch ooni``: request checks, prefixes, the choice of files, the
plan against the manifest and the disk, the manifest's format, the retry delays."""

from __future__ import annotations

from datetime import date

import pytest

from blockproof.errors import InputError
from blockproof.sources.ooni_bucket import (
    Action,
    Chosen,
    Converted,
    Entry,
    Kind,
    Listed,
    Local,
    Manifest,
    ManifestError,
    backoff_delay,
    bucket_test_name,
    check_bucket,
    check_endpoint,
    check_region,
    make_request,
    md5_of_etag,
    parse_day,
    plan,
    prefixes,
    select,
)

TODAY = date(2024, 5, 1)
MD5 = '"0123456789abcdef0123456789abcdef"'
MD5_2 = '"fedcba9876543210fedcba9876543210"'
MULTIPART = '"0123456789abcdef0123456789abcdef-3"'


def test_prefixes_are_every_hour_country_and_test_of_the_asked_days() -> None:
    request = make_request(
        ["pk", "IR,IT"], ["web_connectivity", "webconnectivity", "signal"],
        date(2024, 2, 29), date(2024, 3, 1), today=TODAY,
    )  # fmt: skip
    assert request.countries == ("PK", "IR", "IT")
    assert request.bucket_tests == ("webconnectivity", "signal")  # the same folder once
    found = prefixes(request)
    assert len(found) == 2 * 24 * 3 * 2
    assert found[0] == "raw/20240229/00/PK/webconnectivity/"
    assert found[1] == "raw/20240229/00/PK/signal/"
    assert found[-1] == "raw/20240301/23/IT/signal/"
    assert len(set(found)) == len(found)
    assert all(p.endswith("/") for p in found)


@pytest.mark.parametrize(
    ("test", "folder"),
    [
        ("web_connectivity", "webconnectivity"),
        ("facebook_messenger", "facebookmessenger"),
        ("http_header_field_manipulation", "httpheaderfieldmanipulation"),
        ("signal", "signal"),
    ],
)
def test_bucket_test_names_drop_the_underscores(test: str, folder: str) -> None:
    assert bucket_test_name(test) == folder


REQUEST_ERRORS = [
    (["PAK"], ["web_connectivity"], "2024-02-01", "2024-02-02", "two-letter country"),
    ([""], ["web_connectivity"], "2024-02-01", "2024-02-02", "at least one country"),
    (["PK"], ["Web Connectivity"], "2024-02-01", "2024-02-02", "OONI test name"),
    (["PK"], ["web_connectivity;rm"], "2024-02-01", "2024-02-02", "OONI test name"),
    (["PK"], [","], "2024-02-01", "2024-02-02", "at least one test"),
    (["PK"], ["web_connectivity"], "2024-02-02", "2024-02-01", "before --since"),
    (["PK"], ["web_connectivity"], "2020-10-19", "2020-10-21", "raw/ layout starts"),
    (["PK"], ["web_connectivity"], "2024-04-30", "2024-05-02", "in the future"),
    (["PK"], ["web_connectivity"], "2023-01-01", "2024-01-02", "add --yes"),
]


@pytest.mark.parametrize(("ccs", "tests", "since", "until", "message"), REQUEST_ERRORS)
def test_bad_requests_are_one_line_input_errors(
    ccs: list[str], tests: list[str], since: str, until: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        make_request(ccs, tests, date.fromisoformat(since), date.fromisoformat(until), today=TODAY)
    assert "\n" not in str(info.value)


def test_a_long_range_passes_with_allow_long() -> None:
    request = make_request(
        ["PK"], ["web_connectivity"], date(2023, 1, 1), date(2024, 1, 2),
        today=TODAY, allow_long=True,
    )  # fmt: skip
    assert request.days == 367
    assert make_request(["PK"], ["signal"], TODAY, TODAY, today=TODAY).days == 1


@pytest.mark.parametrize("text", ["2024-2-1", "2024-02-30", "20240201", "", "2024-02-01T00:00"])
def test_parse_day_wants_yyyy_mm_dd(text: str) -> None:
    with pytest.raises(InputError, match="--since"):
        parse_day(text, "--since")


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (check_bucket, "ooni-data-eu-fra", True),
        (check_bucket, "a", False),
        (check_bucket, "Upper", False),
        (check_bucket, "a..b", False),
        (check_bucket, "-leading", False),
        (check_region, "eu-central-1", True),
        (check_region, "us-gov-west-1", True),
        (check_region, "central", False),
        (check_endpoint, "http://127.0.0.1:9000", True),
        (check_endpoint, "https://s3.example.org/", True),
        (check_endpoint, "http://127.0.0.1:99999", False),
        (check_endpoint, "127.0.0.1:9000", False),
        (check_endpoint, "http://127.0.0.1:9000/bucket", False),
        (check_endpoint, "http://127.0.0.1:9000?x=1", False),
        (check_endpoint, "http://u:p@127.0.0.1:9000", False),
    ],
)
def test_bucket_region_and_endpoint_checks(check: object, value: str, ok: bool) -> None:
    assert callable(check)
    if ok:
        assert check(value) == value.rstrip("/")
    else:
        with pytest.raises(InputError):
            check(value)


# -- select ----------------------------------------------------------------------------

P = "raw/20240217/15/PK/webconnectivity/"
STEM = "2024021715_PK_webconnectivity.n1"


def listed(name: str, size: int = 10, etag: str | None = MD5) -> Listed:
    return Listed(P + name, size, etag)


SELECT_CASES = [
    # (names in the folder, chosen (name, kind), twins, ignored)
    ([f"{STEM}.0.jsonl.gz", f"{STEM}.0.tar.gz"], [(f"{STEM}.0.jsonl.gz", "jsonl")], 1, 0),
    ([f"{STEM}.0.tar.gz"], [(f"{STEM}.0.tar.gz", "postcan")], 0, 0),
    (
        [f"{STEM}.0.jsonl.gz", f"{STEM}.0.tar.gz", f"{STEM}.1.tar.gz"],
        [(f"{STEM}.0.jsonl.gz", "jsonl"), (f"{STEM}.1.tar.gz", "postcan")],
        1,
        0,
    ),
    ([f"{STEM}.0.json.gz", "README", f"{STEM}.0.tar.lz4"], [], 0, 3),
    ([".hidden.jsonl.gz", "a b.jsonl.gz", "x/../y.jsonl.gz"], [], 0, 3),
    ([f"{STEM}.0.postcan.jsonl.gz"], [], 0, 1),  # the name we give conversions
    ([], [], 0, 0),
]


@pytest.mark.parametrize(("names", "chosen", "twins", "ignored"), SELECT_CASES)
def test_select_takes_json_lines_and_postcans_without_a_twin(
    names: list[str], chosen: list[tuple[str, str]], twins: int, ignored: int
) -> None:
    selection = select(P, [listed(n) for n in names])
    assert [(c.name, c.kind.value) for c in selection.chosen] == chosen
    assert selection.twins == twins
    assert len(selection.ignored) == ignored


def test_select_ignores_keys_outside_the_folder() -> None:
    selection = select(P, [Listed("raw/20240217/15/PK/signal/x.jsonl.gz", 1, None)])
    assert selection.chosen == []
    assert len(selection.ignored) == 1


def test_a_postcan_converts_to_a_jsonl_gz_beside_it() -> None:
    (postcan,) = select(P, [listed(f"{STEM}.0.tar.gz")]).chosen
    assert postcan.converted_name == f"{STEM}.0.postcan.jsonl.gz"
    (jsonl,) = select(P, [listed(f"{STEM}.0.jsonl.gz")]).chosen
    assert jsonl.converted_name is None


@pytest.mark.parametrize(
    ("etag", "md5"),
    [
        (MD5, "0123456789abcdef0123456789abcdef"),
        ("0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef"),
        (MULTIPART, None),
        ('"short"', None),
        (None, None),
    ],
)
def test_md5_of_etag(etag: str | None, md5: str | None) -> None:
    assert md5_of_etag(etag) == md5


# -- plan ------------------------------------------------------------------------------

JSONL = Chosen(listed(f"{STEM}.0.jsonl.gz", 100, MD5), Kind.JSONL)
PART = Chosen(listed(f"{STEM}.0.jsonl.gz", 100, MULTIPART), Kind.JSONL)
CAN = Chosen(listed(f"{STEM}.1.tar.gz", 100, MD5), Kind.POSTCAN)
CONV = Converted(f"{STEM}.1.postcan.jsonl.gz", 80, 3)

PLAN_CASES = [
    # (chosen, manifest entry, local, action)
    (JSONL, None, Local(None), Action.DOWNLOAD),
    (JSONL, Entry(100, MD5), Local(None), Action.DOWNLOAD),  # deleted by hand
    (JSONL, Entry(100, MD5), Local(40), Action.DOWNLOAD),  # cut short
    (JSONL, Entry(100, MD5), Local(100), Action.COMPLETE),
    (JSONL, Entry(100, MD5_2), Local(100), Action.DOWNLOAD),  # changed in the bucket
    (JSONL, Entry(90, MD5), Local(100), Action.DOWNLOAD),  # recorded size differs
    (JSONL, None, Local(100), Action.VERIFY),  # finished after the manifest's last write
    (PART, None, Local(100), Action.DOWNLOAD),  # nothing to verify against
    (PART, Entry(100, MULTIPART), Local(100), Action.COMPLETE),
    (CAN, Entry(100, MD5, CONV), Local(100, 80), Action.COMPLETE),
    (CAN, Entry(100, MD5, CONV), Local(100, None), Action.CONVERT),
    (CAN, Entry(100, MD5, CONV), Local(100, 79), Action.CONVERT),
    (CAN, Entry(100, MD5, None), Local(100, 80), Action.CONVERT),
    (CAN, None, Local(100, 80), Action.VERIFY),
    (CAN, None, Local(None), Action.DOWNLOAD),
]


@pytest.mark.parametrize(("chosen", "entry", "local", "action"), PLAN_CASES)
def test_plan(chosen: Chosen, entry: Entry | None, local: Local, action: Action) -> None:
    manifest = {} if entry is None else {chosen.key: entry}
    (step,) = plan([chosen], manifest, {chosen.key: local})
    assert step.action is action, step.reason
    assert step.reason


def test_plan_refuses_files_over_the_bound_and_keeps_the_order() -> None:
    big = Chosen(listed("big.jsonl.gz", 10**12), Kind.JSONL)
    steps = plan([JSONL, big, CAN], {}, {})
    assert [s.action for s in steps] == [Action.DOWNLOAD, Action.REFUSE, Action.DOWNLOAD]
    assert "bound" in steps[1].reason


# -- manifest --------------------------------------------------------------------------


def test_manifest_round_trips() -> None:
    manifest = Manifest(
        "ooni-data-eu-fra",
        {JSONL.key: Entry(100, MD5), CAN.key: Entry(100, MD5, CONV), "k": Entry(0, None)},
    )
    again = Manifest.from_bytes(manifest.to_bytes())
    assert again == manifest
    assert manifest.to_bytes() == again.to_bytes()  # stable bytes: sorted keys


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"version": 2, "bucket": "b", "files": {}}',
        b'{"version": 1, "files": {}}',
        b'{"version": 1, "bucket": 3, "files": {}}',
        b'{"version": 1, "bucket": "b", "files": []}',
        b'{"version": 1, "bucket": "b", "files": {"k": {"size": -1, "etag": null}}}',
        b'{"version": 1, "bucket": "b", "files": {"k": {"size": true, "etag": null}}}',
        b'{"version": 1, "bucket": "b", "files": {"k": {"etag": null}}}',
        b'{"version": 1, "bucket": "b", "files": {"k": {"size": 1, "etag": null,'
        b' "converted": {"name": "x"}}}}',
    ],
)
def test_a_damaged_manifest_is_a_manifest_error(data: bytes) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_bytes(data)


# -- backoff ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "rand", "delay"),
    [
        (1, 0.0, 0.0),
        (1, 0.5, 0.25),
        (2, 0.5, 0.5),
        (3, 0.999, 1.998),
        (10, 0.5, 15.0),  # capped at 30 s, half of it
        (500, 1.0, 30.0),
    ],
)
def test_backoff_is_exponential_with_full_jitter_and_capped(
    attempt: int, rand: float, delay: float
) -> None:
    assert backoff_delay(attempt, base=0.5, cap=30.0, rand=rand) == pytest.approx(delay)


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        backoff_delay(0, base=0.5, cap=30.0, rand=0.5)
