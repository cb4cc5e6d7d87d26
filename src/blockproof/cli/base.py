"""What every command shares: the exit codes, the event loop, measurement output.

Exit codes: 0 success (finding censorship is success), 1 an operation failed,
2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from typing import IO, Any, TypeVar

import click

from blockproof.errors import EXIT_INTERRUPTED, BlockproofError
from blockproof.loop import run_event_loop
from blockproof.model.measurement import Measurement

T = TypeVar("T")


EPILOG = """\b
Exit codes: 0 success (finding censorship is a success), 1 an operation failed,
2 bad usage or input, 130 interrupted.
"""


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion; Ctrl-C exits 130 with a word, not a traceback."""
    try:
        return run_event_loop(coro)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


class BlockproofGroup(click.Group):
    """A command group whose ``BlockproofError`` becomes one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BlockproofError as exc:
            click.echo(f"blockproof: error: {exc}", err=True)
            sys.exit(exc.exit_code)


def line_writer(as_json: bool, output: IO[str] | None) -> Callable[[bytes], None]:
    """Print (``--json``) and/or write (``--output``) one measurement's JSON line."""

    def write(line: bytes) -> None:
        text = line.decode()
        if as_json:
            click.echo(text)
        if output is not None:
            output.write(text + "\n")
            output.flush()

    return write


def emitter(as_json: bool, output: IO[str] | None) -> Callable[[Measurement], None]:
    """Write each measurement as soon as it is done: a crash or ^C loses nothing finished."""
    from blockproof.codec.jsonl import dumps_line
    from blockproof.codec.ooni import measurement_to_json

    write = line_writer(as_json, output)

    def emit(m: Measurement) -> None:
        write(dumps_line(measurement_to_json(m)).encode())

    return emit


def show_table(measurements: list[Measurement], title: str) -> None:
    from blockproof.cli.console import stderr, verdict_table
    from blockproof.probe.runner import summaries

    stderr.print(verdict_table(summaries(measurements), title=title))
