"""Files that appear whole or not at all: a temporary name beside the file, then rename.

``atomic_file(path)`` yields a file opened on ``.<name>.<random>.blockproof-part`` in
the same directory; when the ``with`` block ends without an exception the data is
flushed and fsynced, the temporary file renamed over ``path`` (``os.replace``, atomic on
POSIX) and the directory fsynced, so that after a crash ``path`` holds either its old
content or the new one, never a part (``keep_same`` leaves a file that already holds
the same bytes untouched). On an exception the temporary file is removed.
A crash (SIGKILL, power loss) can leave a temporary file behind: ``remove_stale_temps``
deletes those of a directory, by their suffix, at the start of the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from blockproof.sources.ooni_bucket import TEMP_SUFFIX


def temp_path(final: Path) -> Path:
    return final.parent / f".{final.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold the same bytes (sizes first, then SHA-256)."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
    except FileNotFoundError:
        return False
    digests = []
    for path in (a, b):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        digests.append(digest.digest())
    return digests[0] == digests[1]


@contextlib.contextmanager
def atomic_file(final: Path, *, keep_same: bool = False) -> Iterator[BinaryIO]:
    """Write ``final`` through a temporary file; see the module's docstring.

    With ``keep_same``, a ``final`` that already holds exactly the bytes written is
    left as it is (same inode, same time) and the temporary file removed."""
    temp = temp_path(final)
    handle = open(temp, "xb")  # noqa: SIM115 - closed below, on every path
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        if keep_same and same_bytes(temp, final):
            temp.unlink()
            return
        os.replace(temp, final)
    except BaseException:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_dir(final.parent)


def write_atomic(final: Path, data: bytes) -> None:
    with atomic_file(final) as handle:
        handle.write(data)


def remove_stale_temps(directory: Path) -> int:
    """Delete the temporary files a crashed run left in ``directory``; how many."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed
