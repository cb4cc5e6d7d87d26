"""Measurement files read straight from an object store, for ``ingest s3://BUCKET/PREFIX``.

Theory of operation
-------------------

``ingest`` takes ``s3://BUCKET/PREFIX`` beside local paths, so that a cluster can ingest
a month of OONI's bucket without a ``fetch ooni`` first (every executor downloads its
own objects). This module is the I/O around that, in three pieces:

* ``parse_url`` reads the URL (a bucket name as S3 allows it; the prefix is a folder
  or a key's beginning). ``Remote`` is where the bucket is (bucket, region, endpoint):
  a small frozen value, pickled into every task, from which each worker process or
  Spark executor opens its own client (``Remote.client``; obstore, anonymous and
  unsigned, as ``fetch ooni``).
* ``choose`` is the listing's triage (pure): the measurement files under the prefix, by
  name, as a local ``ingest`` finds them in a folder (``MEASUREMENT_SUFFIXES``), plus
  OONI's postcans (``.tar.gz``) that have no ``.jsonl.gz`` twin in their folder (the
  rule of ``fetch ooni``'s ``select``); everything else is named and left.
* ``download`` brings one object into a local file the way ``fetch ooni`` does
  (``s3.receive``: never more bytes than listed, the size and, for a plain ETag, the
  MD5 checked; written atomically), retrying transient failures with the same
  backoff, and gives its SHA-256 (the file's name in the store's ``sources/``). A
  postcan is then converted to ``.jsonl.gz`` beside it (``postcan.convert_postcan``),
  and that file is what is ingested and kept.

An object is recorded in the store's ``ingested.json`` under its URL with its size and
ETag once a run has read it whole; a later run skips it while both are unchanged,
without downloading it.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blockproof.errors import InputError
from blockproof.sources.files import atomic_file
from blockproof.sources.ooni_bucket import (
    CONVERTED_SUFFIX,
    DEFAULT_REGION,
    JSONL_SUFFIX,
    POSTCAN_SUFFIX,
    Listed,
    backoff_delay,
    check_bucket,
)

if TYPE_CHECKING:
    from blockproof.sources.s3 import ObstoreBucket, Timeouts

SCHEME = "s3://"
# what a local ingest reads in a folder; ``.tar.gz`` postcans are converted first
MEASUREMENT_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".ndjson", ".ndjson.gz")
NOT_MEASUREMENTS = (".receipts.jsonl.gz",)  # beside a collector export's measurement files
NOT_MEASUREMENT_NAMES = ("tree-head.json",)
ATTEMPTS = 4  # per object, as ``fetch ooni``'s default


def is_url(text: str) -> bool:
    return text.startswith(SCHEME)


def is_measurement_name(name: str) -> bool:
    """Measurement files by name; a collector export's receipts and tree head are not."""
    low = name.lower()
    return (
        low.endswith(MEASUREMENT_SUFFIXES)
        and not low.endswith(NOT_MEASUREMENTS)
        and low not in NOT_MEASUREMENT_NAMES
    )


def parse_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix); the prefix may be empty."""
    if not is_url(url):
        raise InputError(f"{url!r}: not an s3://BUCKET/PREFIX URL")
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    try:
        check_bucket(bucket)
    except InputError:
        raise InputError(f"{url!r}: {bucket!r} is not a bucket name") from None
    if "\\" in prefix or any(part in (".", "..") for part in prefix.split("/")):
        raise InputError(f"{url!r}: the prefix has '.' or '..' segments")
    return bucket, prefix


@dataclass(frozen=True, slots=True)
class Remote:
    """Where a bucket is: given to every task, each opens its own client."""

    bucket: str
    region: str = DEFAULT_REGION
    endpoint: str | None = None  # an S3-compatible server; None: AWS itself

    def url(self, key: str) -> str:
        return f"{SCHEME}{self.bucket}/{key}"

    def client(self, timeouts: Timeouts | None = None) -> ObstoreBucket:
        try:
            from blockproof.sources.s3 import ObstoreBucket, Timeouts
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise InputError(
                "reading s3:// URLs needs the fetch extra: pip install 'blockproof[fetch]'"
            ) from exc
        return ObstoreBucket(
            self.bucket, region=self.region, endpoint=self.endpoint, timeouts=timeouts or Timeouts()
        )


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One object to ingest: where it is and what the listing said of it."""

    remote: Remote
    listed: Listed

    @property
    def url(self) -> str:
        return self.remote.url(self.listed.key)

    @property
    def name(self) -> str:
        return self.listed.key.rsplit("/", 1)[-1]

    @property
    def postcan(self) -> bool:
        return self.name.endswith(POSTCAN_SUFFIX)


@dataclass(slots=True)
class Choice:
    files: list[Listed] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (key, why)


def choose(objects: Iterable[Listed]) -> Choice:
    """The objects to ingest from a listing, sorted by key; see the module docstring."""
    choice = Choice()
    by_key = {o.key: o for o in objects}
    for key in sorted(by_key):
        obj = by_key[key]
        name = key.rsplit("/", 1)[-1]
        if not name:
            continue  # a "folder" marker
        if obj.size < 0:
            choice.ignored.append((key, "negative size in the listing"))
        elif name.endswith(CONVERTED_SUFFIX):
            choice.ignored.append((key, "uses the name fetch gives converted postcans"))
        elif name.endswith(POSTCAN_SUFFIX):
            twin = key.removesuffix(POSTCAN_SUFFIX) + JSONL_SUFFIX
            if twin in by_key:
                choice.ignored.append((key, f"its twin {twin.rsplit('/', 1)[-1]} is taken"))
            else:
                choice.files.append(obj)
        elif is_measurement_name(name):
            choice.files.append(obj)
        else:
            choice.ignored.append((key, "not a measurement file by its name"))
    return choice


def list_files(remote: Remote, prefix: str) -> Choice:
    """Every object under ``prefix`` (recursively), triaged by ``choose``."""
    from blockproof.sources.s3 import PermanentError, TransientError

    client = remote.client()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return choose(client.list_tree(prefix))
        except TransientError:
            if attempt == ATTEMPTS:
                raise
            time.sleep(backoff_delay(attempt, base=0.5, cap=8.0, rand=random.random()))
        except PermanentError:
            raise
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Downloaded:
    """An object on local disk, ready to ingest: the file and its SHA-256."""

    path: Path
    sha256: str


class ObjectError(Exception):
    """An object that could not be brought in (after the retries): the reason."""


def download(item: RemoteFile, folder: Path, *, attempts: int = ATTEMPTS) -> Downloaded:
    """``item`` into ``folder`` (under its own name), checked; a postcan converted."""
    from blockproof.sources.postcan import convert_postcan
    from blockproof.sources.s3 import IntegrityError, PermanentError, TransientError, receive

    client = item.remote.client()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / item.name
    for attempt in range(1, attempts + 1):
        digest = hashlib.sha256()
        try:
            body = client.open(item.listed.key)
            if item.listed.etag and body.etag and body.etag != item.listed.etag:
                raise ObjectError(f"{item.url}: changed in the bucket since it was listed")
            with atomic_file(path) as handle:
                receive(body, item.listed, handle, digest.update)
            break
        except PermanentError as exc:
            raise ObjectError(str(exc)) from exc
        except (TransientError, IntegrityError) as exc:
            if attempt == attempts:
                raise ObjectError(f"{exc} (after {attempts} attempts)") from exc
            time.sleep(backoff_delay(attempt, base=0.5, cap=8.0, rand=random.random()))
    if not item.postcan:
        return Downloaded(path, digest.hexdigest())
    converted = path.with_name(item.name.removesuffix(POSTCAN_SUFFIX) + CONVERTED_SUFFIX)
    convert_postcan(path, converted)
    path.unlink()
    digest = hashlib.sha256()
    with open(converted, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return Downloaded(converted, digest.hexdigest())
