"""The collector's commands: ``serve collector``, ``collector export``, ``collector head``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from blockproof.errors import InputError


@click.command("collector")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The collector's data directory (log segments and keys; created if missing).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535))
def serve_collector(data_dir: Path, host: str, port: int) -> None:
    """The collector: receives measurements (OONI bk-003 and a batch API), logs them durably.

    \b
    Every accepted measurement is fsynced before it is acknowledged and becomes
    a leaf of a transparency log (RFC 9162 Merkle tree); the answer carries an
    inclusion proof against a tree head signed by this collector's key (made on
    first start in DATA/keys/). Resubmissions get the same uid and store nothing.
    \b
    Endpoints: POST /report, /report/{id}, /report/{id}/close (OONI);
    POST /measurements (JSON lines); GET /measurements/{uid}[/receipt],
    /log/tree-head, /log/consistency?first=N&second=M, /health.
    """
    import uvicorn

    from blockproof.collector.app import CollectorApp
    from blockproof.collector.service import data_dir_lock

    data_dir_lock(data_dir)  # held until the process exits
    click.echo(f"collector: data in {data_dir}, listening on http://{host}:{port}/", err=True)
    uvicorn.run(
        CollectorApp(data_dir),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,  # the collector never looks at client addresses
        server_header=False,
        date_header=False,
        timeout_keep_alive=30,
        limit_concurrency=2048,  # connections; beyond, uvicorn answers 503
        h11_max_incomplete_event_size=64 * 1024,
    )


@click.group("collector")
def collector_group() -> None:
    """Work with a collector's data: export it, read its tree head."""


@collector_group.command("export")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The collector's data directory.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write DAY/CC/TEST/*.jsonl.gz (OONI's raw layout) with receipts.",
)
def export_cmd(data_dir: Path, out: Path) -> None:
    """Write the log as daily raw files (JSON lines, gzip) per day, country and test.

    Each measurement file has a .receipts.jsonl.gz beside it (inclusion proofs
    against OUT/tree-head.json), so exported measurements stay verifiable.
    The collector must be stopped (the export holds the data directory's lock).
    """
    from blockproof.collector.export import export
    from blockproof.probe.console import stderr

    report = export(data_dir, out)
    stderr.print(
        f"exported {report.measurements} measurements into {report.files} files under {out} "
        f"(tree size {report.tree_size})"
    )


@collector_group.command("head")
@click.argument("url")
def head_cmd(url: str) -> None:
    """Print a collector's current signed tree head (save it to check consistency later)."""
    import httpx

    target = url.rstrip("/") + "/log/tree-head"
    try:
        response = httpx.get(target, timeout=30)
    except httpx.HTTPError as exc:
        raise InputError(f"cannot reach {target}: {exc}") from exc
    if response.status_code != 200:
        raise InputError(f"{target}: HTTP {response.status_code}: {response.text[:200]}")
    click.echo(json.dumps(response.json(), indent=1))


def register(main: click.Group, serve: click.Group) -> None:
    serve.add_command(serve_collector)
    main.add_command(collector_group)
