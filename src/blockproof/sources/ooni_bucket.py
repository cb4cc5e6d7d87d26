"""OONI's public bucket: what to list, what to take, what to download (sans-IO).

Theory of operation
-------------------

OONI publishes every measurement in the public S3 bucket ``ooni-data-eu-fra``
(region eu-central-1, readable with anonymous, unsigned requests), one folder per
hour of arrival, country and test::

    raw/<YYYYMMDD>/<HH>/<CC>/<TESTNAME>/<YYYYMMDDHH>_<CC>_<TESTNAME>.<collector>.<n>.jsonl.gz
    raw/<YYYYMMDD>/<HH>/<CC>/<TESTNAME>/<YYYYMMDDHH>_<CC>_<TESTNAME>.<collector>.<n>.tar.gz

``TESTNAME`` is OONI's test name without its underscores (``web_connectivity`` is
``webconnectivity``). The day and hour are those of the upload, in UTC, not of the
measurement: a probe that uploads late files its measurement under a later hour. OONI's
uploader writes each batch twice, with the same stem: a ``.jsonl.gz`` of measurements,
one JSON object per line, and a ``.tar.gz`` "postcan" holding the probes' submissions as
they arrived (one ``.post`` file each). This layout starts on 2020-10-20; older data
lives under ``jsonl/`` and is not handled here.

This module decides, without any I/O:

1. ``prefixes``: exactly the folders to list for a ``Request`` (countries, tests,
   inclusive UTC days): 24 hours x days x countries x tests, each listed on its own
   with the ``/`` delimiter, so sub-folders and the rest of the bucket are never read;
2. ``select``: which listed files to take: every ``.jsonl.gz``, and a ``.tar.gz``
   postcan only when no ``.jsonl.gz`` of the same stem exists beside it (the two hold
   the same measurements, so taking both would double them); other names are set
   aside, and so are names that are not safe as a local file name;
3. ``plan``: for each file taken, what to do, by comparing the listing with the
   manifest of earlier runs (size and ETag of every file written) and with what is on
   disk: nothing (complete: same size on disk, recorded with the same ETag), verify
   (the file has the listed size but no record, e.g. a run stopped before its manifest
   was written: hash it and keep it if its MD5 is the ETag's), convert (a complete
   postcan whose ``.jsonl.gz`` is missing), download (absent, another size, another
   ETag, or unverifiable), or refuse (larger than ``MAX_FILE_BYTES``);
4. ``backoff_delay``: how long to wait before retry ``n`` (exponential, full jitter).

The manifest (``Manifest``, written by the runner as ``MANIFEST_NAME`` in the output
folder) records, per key, the size and ETag of the file written and, for a postcan,
its converted ``.jsonl.gz``. Its name does not end in ``.json`` so that ``blockproof
ingest`` of the output folder never takes it for measurements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import orjson

from blockproof.errors import InputError

DEFAULT_BUCKET = "ooni-data-eu-fra"
DEFAULT_REGION = "eu-central-1"
DEFAULT_TEST = "web_connectivity"
RAW_LAYOUT_START = date(2020, 10, 20)  # the first day of the raw/ layout
LONG_RANGE_DAYS = 366  # more days than this need an explicit confirmation
MAX_FILE_BYTES = 2 << 30  # OONI's files are a few MB (postcans are cut at 20 MB)

MANIFEST_NAME = ".blockproof-fetch.manifest"
LOCK_NAME = ".blockproof-fetch.lock"
TEMP_SUFFIX = ".blockproof-part"  # ".<name>.<random>.blockproof-part" beside the file
JSONL_SUFFIX = ".jsonl.gz"
POSTCAN_SUFFIX = ".tar.gz"
CONVERTED_SUFFIX = ".postcan.jsonl.gz"  # a postcan's measurements, beside it
MANIFEST_VERSION = 1

_CC = re.compile(r"[A-Z]{2}")
_TEST = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_MD5_ETAG = re.compile(r'"?([0-9a-fA-F]{32})"?')
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """What to fetch: countries (``PK``), OONI test names (``web_connectivity``), and
    the inclusive range of upload days, in UTC."""

    countries: tuple[str, ...]
    tests: tuple[str, ...]
    since: date
    until: date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def bucket_tests(self) -> tuple[str, ...]:
        """The tests as the bucket names them, each once, in the order given."""
        return tuple(dict.fromkeys(bucket_test_name(t) for t in self.tests))


def bucket_test_name(test: str) -> str:
    """``web_connectivity`` -> ``webconnectivity``: the bucket's folder name."""
    return test.replace("_", "")


def parse_day(text: str, option: str) -> date:
    """A ``YYYY-MM-DD`` day, or an ``InputError`` naming the option."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r}: expected a day as YYYY-MM-DD") from None


def make_request(
    countries: Iterable[str],
    tests: Iterable[str],
    since: date,
    until: date,
    *,
    today: date,
    allow_long: bool = False,
) -> Request:
    """A checked ``Request``; every problem is an ``InputError`` of one line.

    Country codes are two letters (any case); test names are OONI's, lowercase, with
    underscores. ``since`` may not be before the raw layout (2020-10-20), ``until``
    not before ``since`` nor after ``today``; more than ``LONG_RANGE_DAYS`` days need
    ``allow_long``."""
    ccs: list[str] = []
    for raw in countries:
        for cc in filter(None, (part.strip() for part in raw.split(","))):
            if not _CC.fullmatch(cc.upper()):
                raise InputError(f"--cc {cc!r}: expected a two-letter country code, e.g. PK")
            ccs.append(cc.upper())
    if not ccs:
        raise InputError("--cc: give at least one country code, e.g. --cc PK")
    names: list[str] = []
    for raw in tests:
        for test in filter(None, (part.strip() for part in raw.split(","))):
            if not _TEST.fullmatch(test):
                raise InputError(
                    f"--test {test!r}: expected an OONI test name such as web_connectivity"
                    " (lowercase letters, digits and underscores)"
                )
            names.append(test)
    if not names:
        raise InputError("--test: give at least one test name, e.g. --test web_connectivity")
    if since < RAW_LAYOUT_START:
        raise InputError(
            f"--since {since}: OONI's raw/ layout starts on {RAW_LAYOUT_START};"
            " older data is under jsonl/, which fetch does not read"
        )
    if until < since:
        raise InputError(f"--until {until} is before --since {since}")
    if until > today:
        raise InputError(f"--until {until} is in the future (today is {today}, UTC)")
    request = Request(tuple(dict.fromkeys(ccs)), tuple(dict.fromkeys(names)), since, until)
    if request.days > LONG_RANGE_DAYS and not allow_long:
        raise InputError(
            f"{request.days} days asked (more than {LONG_RANGE_DAYS}): that is"
            f" {len(prefixes(request))} folder listings; add --yes to go ahead"
        )
    return request


def check_bucket(name: str) -> str:
    if not _BUCKET.fullmatch(name) or ".." in name:
        raise InputError(f"--bucket {name!r}: not an S3 bucket name")
    return name


def check_region(name: str, option: str = "--region") -> str:
    if not _REGION.fullmatch(name):
        raise InputError(f"{option} {name!r}: not an AWS region name such as eu-central-1")
    return name


def check_endpoint(url: str, option: str = "--endpoint") -> str:
    """An ``http(s)://host[:port]`` URL, without path, query or credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"{option} {url!r}: not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{option} {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError(f"{option} {url!r}: no credentials, query or fragment, please")
    if parts.path not in ("", "/"):
        raise InputError(f"{option} {url!r}: no path (the bucket is named elsewhere)")
    return url.rstrip("/")


def prefixes(request: Request) -> list[str]:
    """Every folder to list, day by day, hour by hour: ``raw/YYYYMMDD/HH/CC/TESTNAME/``."""
    out: list[str] = []
    for offset in range(request.days):
        day = request.since + timedelta(days=offset)
        for hour in range(24):
            for cc in request.countries:
                for test in request.bucket_tests:
                    out.append(f"raw/{day:%Y%m%d}/{hour:02d}/{cc}/{test}/")
    return out


# -- the listing and the choice of files ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """One object of a listing: its key, size in bytes and ETag (quotes kept)."""

    key: str
    size: int
    etag: str | None


class Kind(Enum):
    JSONL = "jsonl"
    POSTCAN = "postcan"


@dataclass(frozen=True, slots=True)
class Chosen:
    """A file to have on disk: a ``.jsonl.gz``, or a postcan with no twin."""

    listed: Listed
    kind: Kind

    @property
    def key(self) -> str:
        return self.listed.key

    @property
    def name(self) -> str:
        return self.listed.key.rsplit("/", 1)[-1]

    @property
    def converted_name(self) -> str | None:
        """The ``.jsonl.gz`` a postcan is converted to, beside it (None for JSON lines)."""
        if self.kind is not Kind.POSTCAN:
            return None
        return self.name.removesuffix(POSTCAN_SUFFIX) + CONVERTED_SUFFIX


@dataclass(slots=True)
class Selection:
    chosen: list[Chosen] = field(default_factory=list)
    twins: int = 0  # postcans left aside: their .jsonl.gz twin is taken
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, why)


def select(prefix: str, objects: Iterable[Listed]) -> Selection:
    """The files of one folder to take; see the module's docstring."""
    selection = Selection()
    jsonl: dict[str, Listed] = {}
    postcans: dict[str, Listed] = {}
    for obj in objects:
        rest = obj.key[len(prefix) :] if obj.key.startswith(prefix) else None
        if rest is None or not _NAME.fullmatch(rest):
            selection.ignored.append((obj.key, "not a plain file name in the asked folder"))
        elif obj.size < 0:
            selection.ignored.append((obj.key, "negative size in the listing"))
        elif rest.endswith(CONVERTED_SUFFIX):
            selection.ignored.append((obj.key, "uses the name fetch gives converted postcans"))
        elif rest.endswith(JSONL_SUFFIX):
            jsonl[rest.removesuffix(JSONL_SUFFIX)] = obj
        elif rest.endswith(POSTCAN_SUFFIX):
            postcans[rest.removesuffix(POSTCAN_SUFFIX)] = obj
        else:
            selection.ignored.append((obj.key, "neither .jsonl.gz nor .tar.gz"))
    for stem in sorted(jsonl.keys() | postcans.keys()):
        if stem in jsonl:
            selection.chosen.append(Chosen(jsonl[stem], Kind.JSONL))
            selection.twins += stem in postcans
        else:
            selection.chosen.append(Chosen(postcans[stem], Kind.POSTCAN))
    return selection


def md5_of_etag(etag: str | None) -> str | None:
    """The MD5 an ETag stands for, when it is a plain one (not multipart, not KMS)."""
    if etag is None:
        return None
    match = _MD5_ETAG.fullmatch(etag.strip())
    return match.group(1).lower() if match else None


# -- the manifest --------------------------------------------------------------------


class ManifestError(ValueError):
    """The manifest cannot be read: the runner sets it aside and checks files by hash."""


@dataclass(frozen=True, slots=True)
class Converted:
    """A postcan's measurements as ``.jsonl.gz``: name, size, lines and members left out."""

    name: str
    size: int
    lines: int
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """A file as written: its listed size and ETag (and its conversion, for a postcan)."""

    size: int
    etag: str | None
    converted: Converted | None = None


@dataclass(slots=True)
class Manifest:
    bucket: str
    files: dict[str, Entry] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        files: dict[str, Any] = {}
        for key in sorted(self.files):
            entry = self.files[key]
            record: dict[str, Any] = {"size": entry.size, "etag": entry.etag}
            if entry.converted is not None:
                c = entry.converted
                record["converted"] = {
                    "name": c.name,
                    "size": c.size,
                    "lines": c.lines,
                    "skipped": c.skipped,
                }
            files[key] = record
        document = {"version": MANIFEST_VERSION, "bucket": self.bucket, "files": files}
        return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            document = orjson.loads(data)
            if not isinstance(document, dict) or document.get("version") != MANIFEST_VERSION:
                raise ManifestError(f"not a version {MANIFEST_VERSION} manifest")
            bucket = document["bucket"]
            if not isinstance(bucket, str):
                raise ManifestError("no bucket name")
            records = document["files"]
            if not isinstance(records, dict):
                raise ManifestError("'files' is not an object")
            files: dict[str, Entry] = {}
            for key, record in records.items():
                converted = None
                if record.get("converted") is not None:
                    c = record["converted"]
                    converted = Converted(
                        str(c["name"]), _count(c["size"]), _count(c["lines"]), _count(c["skipped"])
                    )
                etag = record["etag"]
                files[str(key)] = Entry(
                    _count(record["size"]), None if etag is None else str(etag), converted
                )
            return cls(bucket, files)
        except ManifestError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"{type(exc).__name__}: {exc}") from None


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"not a count: {value!r}")
    return value


# -- the plan ------------------------------------------------------------------------


class Action(Enum):
    COMPLETE = "complete"  # on disk and recorded: nothing to do
    VERIFY = "verify"  # the listed size on disk, unrecorded: hash it, keep it or download
    CONVERT = "convert"  # a complete postcan whose .jsonl.gz is missing or another size
    DOWNLOAD = "download"
    REFUSE = "refuse"  # larger than MAX_FILE_BYTES


@dataclass(frozen=True, slots=True)
class Local:
    """What is on disk for a key: the file's size, and its converted file's (None: absent)."""

    size: int | None
    converted_size: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    chosen: Chosen
    action: Action
    reason: str


def plan(
    chosen: Sequence[Chosen],
    manifest: Mapping[str, Entry],
    local: Mapping[str, Local],
    *,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[Step]:
    """One step per chosen file, in the order given; see the module's docstring."""
    steps: list[Step] = []
    for item in chosen:
        obj = item.listed
        here = local.get(item.key, Local(None))
        entry = manifest.get(item.key)
        if obj.size > max_bytes:
            steps.append(Step(item, Action.REFUSE, f"{obj.size} bytes, over the {max_bytes} bound"))
        elif here.size is None:
            steps.append(Step(item, Action.DOWNLOAD, "not on disk"))
        elif here.size != obj.size:
            steps.append(
                Step(item, Action.DOWNLOAD, f"{here.size} bytes on disk, {obj.size} listed")
            )
        elif entry is not None and entry.size == obj.size and entry.etag == obj.etag:
            if item.kind is Kind.POSTCAN and (
                entry.converted is None or entry.converted.size != here.converted_size
            ):
                steps.append(Step(item, Action.CONVERT, "its .jsonl.gz is missing or cut"))
            else:
                steps.append(Step(item, Action.COMPLETE, "on disk, same size and ETag"))
        elif entry is not None:
            steps.append(Step(item, Action.DOWNLOAD, "changed in the bucket (another ETag)"))
        elif md5_of_etag(obj.etag) is not None:
            steps.append(Step(item, Action.VERIFY, "on disk without a record: check its MD5"))
        else:
            steps.append(
                Step(item, Action.DOWNLOAD, "on disk without a record and no MD5 to check")
            )
    return steps


# -- retries -------------------------------------------------------------------------


def backoff_delay(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): "full jitter", a
    uniform draw (``rand`` in [0, 1)) below ``min(cap, base * 2 ** (attempt - 1))``."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    ceiling = min(cap, base * float(1 << min(attempt - 1, 62)))
    return max(0.0, min(rand, 1.0)) * ceiling
