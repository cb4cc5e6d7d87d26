"""Streams of JSON objects on disk: ``.json``, ``.jsonl`` and their gzipped forms.

Reading::

    for obj in iter_json_objects("2024-02-17.jsonl.gz"):   # raises BadRecord on a bad line
        ...

    bad: list[BadRecord] = []
    for obj in iter_json_objects(path, on_error=bad.append):  # skip bad lines, keep them
        ...
    print(len(bad), "bad lines")

Gzip is recognised by its magic bytes, whatever the file is called. A name ending
in ``.json`` (before any ``.gz``) holds one JSON document: an object, or an
array of objects; anything else is JSON lines, one object per line (blank lines
are ignored). A ``.json`` file that turns out to be JSON lines is read as such.
Only objects are yielded; NaN and Infinity are rejected, as in strict JSON. A
UTF-8 byte order mark is ignored. A file that breaks off (a truncated gzip
download) is reported like a bad line, after the objects read before the break.

Writing: ``write_jsonl`` writes compact UTF-8 lines (``dumps_line``), gzipped
when the path ends in ``.gz``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, BinaryIO, cast

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

# What reading a damaged file raises: a truncated or corrupt gzip stream, an I/O error.
_UNREADABLE = (EOFError, OSError, zlib.error)

PathOrFile = str | os.PathLike[str] | BinaryIO


class BadRecord(ValueError):
    """One record that is not a JSON object: where it is and why.

    ``line`` is the 1-based line number (for a JSON array, the line where the
    document starts), ``index`` the 0-based position in a JSON array.
    """

    def __init__(self, source: str, line: int, reason: str, *, index: int | None = None) -> None:
        where = f"{source}:{line}" if index is None else f"{source}:{line}[{index}]"
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line = line
        self.index = index
        self.reason = reason


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


@contextlib.contextmanager
def _open(source: PathOrFile) -> Iterator[tuple[str, IO[bytes]]]:
    """The source's name and a binary stream of its (gunzipped) content."""
    with contextlib.ExitStack() as stack:
        raw: IO[bytes]
        if isinstance(source, str | os.PathLike):
            name = os.fspath(source)
            raw = stack.enter_context(open(name, "rb"))
        else:
            name = str(getattr(source, "name", "<stream>"))
            raw = source if source.seekable() else io.BytesIO(source.read())
        start = raw.tell()
        head = raw.read(2)
        raw.seek(start)
        if head == GZIP_MAGIC:
            unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
            stack.callback(unzipped.close)
            yield name, cast(IO[bytes], unzipped)
        else:
            yield name, raw


def _is_document(name: str) -> bool:
    stem = name[:-3] if name.endswith(".gz") else name
    return stem.endswith(".json")


def iter_json_objects(
    source: PathOrFile, *, on_error: Callable[[BadRecord], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects in ``source`` (a path or a binary file), streaming.

    A bad record raises ``BadRecord`` unless ``on_error`` is given, in which case
    it is passed to ``on_error`` and reading goes on.
    """

    def report(error: BadRecord) -> None:
        if on_error is None:
            raise error
        on_error(error)

    with _open(source) as (name, stream):
        if not _is_document(name):
            yield from _iter_lines(name, stream, report)
            return
        try:
            data = stream.read()
        except _UNREADABLE as exc:  # e.g. a truncated gzip file
            report(BadRecord(name, 1, f"unreadable ({exc})"))
            return
        try:
            doc = _loads(data)
        except ValueError:  # includes UnicodeDecodeError: maybe JSON lines after all
            yield from _iter_lines(name, io.BytesIO(data), report)
            return
        yield from _iter_document(name, doc, report)


def _iter_document(
    name: str, doc: Any, report: Callable[[BadRecord], None]
) -> Iterator[dict[str, Any]]:
    if isinstance(doc, dict):
        yield doc
    elif isinstance(doc, list):
        for index, item in enumerate(doc):
            if isinstance(item, dict):
                yield item
            else:
                report(BadRecord(name, 1, "not a JSON object", index=index))
    else:
        report(BadRecord(name, 1, "not a JSON object or array of objects"))


def _read_lines(
    name: str, stream: IO[bytes], report: Callable[[BadRecord], None]
) -> Iterator[tuple[int, bytes]]:
    """Numbered lines; a stream that breaks (truncated gzip...) is reported, then ends."""
    number = 0
    try:
        for number, raw in enumerate(stream, start=1):
            yield number, raw
    except _UNREADABLE as exc:
        report(BadRecord(name, number + 1, f"unreadable ({exc})"))


def _iter_lines(
    name: str, stream: IO[bytes], report: Callable[[BadRecord], None]
) -> Iterator[dict[str, Any]]:
    for number, raw in _read_lines(name, stream, report):
        if number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM) :]
        if not raw.strip():
            continue
        try:
            obj = _loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            report(BadRecord(name, number, "not valid UTF-8"))
            continue
        except ValueError as exc:
            report(BadRecord(name, number, f"not valid JSON ({exc})"))
            continue
        if not isinstance(obj, dict):
            report(BadRecord(name, number, "not a JSON object"))
            continue
        yield obj


def dumps_line(obj: Any) -> str:
    """One compact JSON line (no trailing newline): UTF-8 text, no NaN/Infinity."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def write_jsonl(
    target: str | os.PathLike[str] | IO[str] | IO[bytes], objects: Iterable[Any]
) -> int:
    """Write ``objects`` as JSON lines to a path (gzipped if it ends in ``.gz``) or an
    open file (text or binary). Returns the number of lines written."""
    if isinstance(target, str | os.PathLike):
        path = os.fspath(target)
        if path.endswith(".gz"):
            with gzip.open(path, "wb") as zipped:
                return _write(cast(IO[bytes], zipped), objects, binary=True)
        with open(path, "wb") as plain:
            return _write(plain, objects, binary=True)
    return _write(target, objects, binary=not isinstance(target, io.TextIOBase))


def _write(f: IO[Any], objects: Iterable[Any], *, binary: bool) -> int:
    count = 0
    for obj in objects:
        line = dumps_line(obj) + "\n"
        f.write(line.encode("utf-8") if binary else line)
        count += 1
    return count
