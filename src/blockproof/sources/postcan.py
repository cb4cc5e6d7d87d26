"""OONI's postcans: tarballs of the probes' submissions, read as measurement JSON lines.

Theory of operation
-------------------

OONI's uploader (ooni/backend ``api/ooni_api_uploader.py``) puts each hour's
submissions of a country and test in two files of the same stem: a ``.jsonl.gz`` (one
measurement per line) and a ``.tar.gz`` postcan, a gzipped tarball of the submissions
as the probes sent them, one member per measurement::

    var/lib/ooniapi/measurements/incoming/2024021715_PK_webconnectivity/
        20240217150012.123456_PK_webconnectivity_0123456789abcdef.post

Each ``.post`` member is a JSON document ``{"format": "json", "content": {...}}`` whose
``content`` is the measurement. The member's file name, without ``.post``, is the
measurement's ``measurement_uid`` (OONI keeps it in its database, not in the
measurement); the directory part is not stable and is ignored. ``blockproof ingest``
reads JSON lines, not tarballs, so ``fetch`` takes a postcan only where its ``.jsonl.gz``
twin is missing and converts it: ``iter_postcan`` yields one ``Member`` per tar member,
the measurement as one compact JSON line with ``measurement_uid`` added from the
member's name when absent (as OONI's own loader does), or the reason it cannot be used
(not a ``.post`` file, not JSON, another format such as ``yaml``, no ``content``,
larger than ``MAX_MEMBER_BYTES``). ``convert_postcan`` writes the usable lines as a
``.jsonl.gz`` beside the postcan, atomically and reproducibly (gzip without name or
time, so the same postcan always gives the same bytes, and a conversion already there
is left untouched); the postcan stays on disk, so
members left out are not lost. A postcan that breaks off (a damaged tarball) gives the
members read before the break and says where it broke.

The tarball is read as a stream (``r|*``: gzip or not, as some old postcans named
``.gz`` are not compressed), members one at a time, so memory is bounded by the largest
member; nothing is extracted to disk, so member names cannot escape anywhere.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

import orjson

from blockproof.sources.files import atomic_file

MAX_MEMBER_BYTES = 64 << 20  # one measurement; OONI's largest are a few MB
POST_SUFFIX = ".post"
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DAMAGED = (tarfile.TarError, EOFError, OSError, zlib.error)


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a postcan: the measurement line, or why there is none."""

    name: str
    line: bytes | None
    problem: str | None = None


def measurement_line(name: str, data: bytes) -> Member:
    """The measurement of one ``.post`` document as a compact JSON line (no newline)."""
    try:
        post = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Member(name, None, f"not JSON: {exc}")
    if not isinstance(post, dict):
        return Member(name, None, "not a JSON object")
    fmt = post.get("format")
    if not isinstance(fmt, str) or fmt.lower() != "json":
        return Member(name, None, f"format {fmt!r}, not 'json'")
    content = post.get("content")
    if not isinstance(content, dict):
        return Member(name, None, "no measurement object in 'content'")
    uid = PurePosixPath(name).name.removesuffix(POST_SUFFIX)
    if "measurement_uid" not in content and _UID.fullmatch(uid):
        content["measurement_uid"] = uid
    return Member(name, orjson.dumps(content))


def iter_postcan(fileobj: IO[bytes], *, max_member: int = MAX_MEMBER_BYTES) -> Iterator[Member]:
    """Every member of a postcan, in order; raises ``tarfile.TarError``, ``EOFError``
    or ``OSError`` where the tarball breaks off, after the members before the break."""
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for info in tar:
            if info.isdir():
                continue
            if not info.isfile():
                yield Member(info.name, None, "not a regular file")
            elif not info.name.endswith(POST_SUFFIX):
                yield Member(info.name, None, "not a .post file")
            elif info.size > max_member:
                yield Member(info.name, None, f"{info.size} bytes, over the {max_member} bound")
            else:
                extracted = tar.extractfile(info)
                data = extracted.read() if extracted is not None else b""
                yield measurement_line(info.name, data)


@dataclass(slots=True)
class Conversion:
    """What ``convert_postcan`` wrote: lines, bytes, the members left out and why."""

    lines: int = 0
    size: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    broke_off: str | None = None


def convert_postcan(postcan: Path, target: Path) -> Conversion:
    """Write ``postcan``'s measurements to ``target`` (``.jsonl.gz``), atomically."""
    result = Conversion()
    with atomic_file(target, keep_same=True) as raw, open(postcan, "rb") as source:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
            try:
                for member in iter_postcan(source):
                    if member.line is None:
                        result.skipped.append((member.name, member.problem or "unusable"))
                        continue
                    out.write(member.line + b"\n")
                    result.lines += 1
            except _DAMAGED as exc:
                result.broke_off = f"{type(exc).__name__}: {exc}"
        raw.flush()
        result.size = raw.tell()
    return result
