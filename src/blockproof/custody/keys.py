"""The probe's signing key on disk: created once, then reused for every measurement.

The key is an Ed25519 private key in ``probe-key.pem`` (PKCS#8 PEM, not
encrypted: a probe runs unattended) in ``config_dir()``:

1. ``$BLOCKPROOF_HOME``, if set;
2. else ``$XDG_CONFIG_HOME/blockproof``, if that variable holds an absolute path;
3. else ``~/.config/blockproof``.

Whoever can read the file can sign measurements as this probe, so it is
created private (the directory 0700 when we create it, the file 0600) and a
key file that other users could read or write is refused, as ssh refuses a
private key with loose permissions.

Creation is atomic and race-free: the key is written to a temporary file
(opened with ``O_EXCL``, mode 0600), flushed to disk, then *hard-linked* to
``probe-key.pem``. A link, unlike a rename, fails when the name exists, so
when two probes start for the first time together exactly one key wins and the
other process reads it; nobody ever sees a half-written key file. (On a file
system without hard links the key file itself is created with ``O_EXCL``:
still one key, though a reader racing the writer could see it half-written.)

Losing the key is not a disaster: delete or move the file and the next run
creates a new one. Measurements signed with the old key still verify (they
carry its public key); only their link to this probe's new identity is lost.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blockproof.custody.signing import key_id, public_key_raw
from blockproof.errors import ConfigError

__all__ = ["KEY_FILE", "ProbeKey", "config_dir", "load_or_create_key"]

KEY_FILE: Final = "probe-key.pem"
HOME_VARIABLE: Final = "BLOCKPROOF_HOME"
_MAX_KEY_FILE = 64 * 1024  # a PEM Ed25519 key is 119 bytes
_POSIX: Final = os.name == "posix"
# errors from os.link that mean "this file system has no hard links"
_NO_HARD_LINKS: Final = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS}


@dataclass(frozen=True, slots=True)
class ProbeKey:
    """The probe's key pair and where it is kept."""

    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    public_key_raw: bytes
    key_id: str
    path: Path

    @property
    def public_key_base64(self) -> str:
        """The public key as it appears in a signed measurement's ``x_public_key``."""
        return base64.b64encode(self.public_key_raw).decode("ascii")


def config_dir() -> Path:
    """Where the probe keeps its key (see the module docstring for the order)."""
    home = os.environ.get(HOME_VARIABLE)
    if home:
        return Path(home)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore relative paths
        return Path(xdg) / "blockproof"
    return Path.home() / ".config" / "blockproof"


def load_or_create_key(directory: Path | None = None, *, filename: str = KEY_FILE) -> ProbeKey:
    """The key in ``directory`` (default ``config_dir()``), created on first use.

    ``filename`` names the key file (the collector keeps its log key the same
    way, as ``log-key.pem`` in its data directory).

    Raises ``ConfigError`` when the key file is readable or writable by other
    users, is not an Ed25519 key, or cannot be read or created.
    """
    directory = config_dir() if directory is None else Path(directory)
    path = directory / filename
    key = _load(path)
    if key is None:
        _create(directory, path)  # or another process did, a moment before us
        key = _load(path)
        if key is None:
            raise ConfigError(f"the probe key {path} vanished right after it was created")
    return key


def _load(path: Path) -> ProbeKey | None:
    """The key at ``path``, or None if there is no file there."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the probe key {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ConfigError(f"the probe key {path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(info.st_mode)
        if _POSIX and mode & 0o077:
            raise ConfigError(
                f"the probe key {path} is open to other users (mode {mode:04o}): anyone who "
                f"can read it can sign measurements as this probe. Make it private with "
                f"'chmod 600 {path}' (and check who may have copied it)"
            )
        pem = handle.read(_MAX_KEY_FILE + 1)
    try:
        if len(pem) > _MAX_KEY_FILE:
            raise ValueError("the file is far too large for a key")
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"the probe key {path} is not an unencrypted PEM (PKCS#8) private key ({exc}). "
            "Restore it from a backup, or move it away to have a new key created"
        ) from None
    if not isinstance(private_key, Ed25519PrivateKey):
        kind = type(private_key).__name__.removeprefix("_").removesuffix("PrivateKey")
        raise ConfigError(
            f"the probe key {path} is not an Ed25519 key (it is a {kind} key). "
            "Move it away to have a new key created"
        )
    raw = public_key_raw(private_key)
    return ProbeKey(private_key, raw, key_id(raw), path)


def _create(directory: Path, path: Path) -> None:
    """Write a new key to ``path`` unless a key appears there first (see the docstring)."""
    try:
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _POSIX:
                os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = directory / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        _write_new(temporary, pem)
        try:
            os.link(temporary, path)  # fails if the name exists: never overwrites
        except FileExistsError:
            return  # another process won the race: its key is the key
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            with contextlib.suppress(FileExistsError):  # as above
                _write_new(path, pem)
        finally:
            temporary.unlink(missing_ok=True)
        _sync_directory(directory)
    except OSError as exc:
        raise ConfigError(f"cannot create the probe key {path}: {exc.strerror or exc}") from None


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with mode 0600, write ``data`` and flush it to disk."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _sync_directory(directory: Path) -> None:
    """Make the new directory entry durable too (POSIX; elsewhere there is no such call)."""
    if not _POSIX:
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
