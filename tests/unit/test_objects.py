"""The triage of a bucket listing for ``ingest s3://...`` and the URL it is given."""

from __future__ import annotations

import pytest

from blockproof.errors import InputError
from blockproof.sources.objects import Remote, choose, parse_url
from blockproof.sources.ooni_bucket import Listed

F = "raw/20240217/09/PK/webconnectivity/"


def listed(*keys: str, size: int = 10) -> list[Listed]:
    return [Listed(k, size, '"0123"') for k in keys]


@pytest.mark.parametrize(
    ("keys", "taken", "why"),
    [
        ([f"{F}a.n1.0.jsonl.gz"], [f"{F}a.n1.0.jsonl.gz"], []),
        ([f"{F}a.n1.0.tar.gz"], [f"{F}a.n1.0.tar.gz"], []),  # a postcan alone: converted
        (
            [f"{F}a.n1.0.tar.gz", f"{F}a.n1.0.jsonl.gz"],
            [f"{F}a.n1.0.jsonl.gz"],
            ["its twin a.n1.0.jsonl.gz is taken"],
        ),
        (
            ["x/m.json", "x/m.jsonl", "x/m.json.gz", "x/M.NDJSON"],
            ["x/M.NDJSON", "x/m.json", "x/m.json.gz", "x/m.jsonl"],
            [],
        ),
        (["x/export.receipts.jsonl.gz"], [], ["not a measurement file by its name"]),
        (["x/tree-head.json"], [], ["not a measurement file by its name"]),
        (["x/README.txt"], [], ["not a measurement file by its name"]),
        ([f"{F}a.n1.0.postcan.jsonl.gz"], [], ["uses the name fetch gives converted postcans"]),
        (["x/"], [], []),  # a folder marker
    ],
)
def test_choose_takes_measurement_files_and_says_why_it_leaves_the_rest(
    keys: list[str], taken: list[str], why: list[str]
) -> None:
    choice = choose(listed(*keys))
    assert [o.key for o in choice.files] == taken
    assert [reason for _, reason in choice.ignored] == why


def test_choose_leaves_a_negative_size() -> None:
    choice = choose([Listed("x/a.jsonl", -1, None)])
    assert (choice.files, choice.ignored) == ([], [("x/a.jsonl", "negative size in the listing")])


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://ooni-data-eu-fra/raw/20240217/", "ooni-data-eu-fra", "raw/20240217/"),
        ("s3://ooni-data-eu-fra/raw/2024021", "ooni-data-eu-fra", "raw/2024021"),
        ("s3://ooni-data-eu-fra", "ooni-data-eu-fra", ""),
    ],
)
def test_parse_url(url: str, bucket: str, prefix: str) -> None:
    assert parse_url(url) == (bucket, prefix)


def test_a_remote_names_its_objects_by_url() -> None:
    assert (
        Remote("ooni-data-eu-fra").url("raw/a.jsonl.gz") == "s3://ooni-data-eu-fra/raw/a.jsonl.gz"
    )


@pytest.mark.parametrize(
    "url", ["ooni-data-eu-fra/raw/", "s3://Bad_Name/raw/", "s3:///raw/", "s3://ooni/raw/../etc"]
)
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(InputError):
        parse_url(url)
