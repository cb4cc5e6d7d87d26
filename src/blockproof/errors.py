"""blockproof's exceptions: for misuse and bugs only.

Network failures are never exceptions here: they are data, a df-007 failure
string inside an observation. What is left fits on one screen:

    BlockproofError          base class; the CLI prints its message and exits 2
    ├── InputError           a URL, list file or option the user gave is unusable
    ├── ConfigError          a configuration or scenario file is malformed
    └── ProtocolError        a peer (control server, collector) broke the protocol

Exit codes of the ``blockproof`` command (also in ``blockproof --help``):
0 success (finding censorship is success), 1 an operation failed (e.g. an upload),
2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class BlockproofError(Exception):
    """Base class of every error blockproof raises on purpose."""

    exit_code = EXIT_USAGE


class InputError(BlockproofError):
    """Unusable user input: a URL, a list file, an option value."""


class ConfigError(BlockproofError):
    """A malformed configuration or scenario file."""


class ProtocolError(BlockproofError):
    """A peer answered outside the protocol."""

    exit_code = EXIT_FAILED
