"""The collector's commands: ``serve collector``, ``collector export``, ``collector head``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from blockproof.cli.options import public_server_options
from blockproof.errors import InputError

MIN_TOKEN_LENGTH = 16


def read_admin_token(token_file: Path | None) -> str | None:
    """The admin token from ``--admin-token-file``, else $BLOCKPROOF_ADMIN_TOKEN, else None."""
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise InputError(f"cannot read the admin token file {token_file}: {exc}") from exc
        source = str(token_file)
    else:
        token = os.environ.get("BLOCKPROOF_ADMIN_TOKEN", "").strip()
        source = "BLOCKPROOF_ADMIN_TOKEN"
        if not token:
            return None
    if len(token) < MIN_TOKEN_LENGTH or any(ch.isspace() for ch in token):
        raise InputError(
            f"the admin token in {source} must be at least {MIN_TOKEN_LENGTH} characters "
            "without spaces (e.g. the output of: openssl rand -hex 32)"
        )
    return token


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
@public_server_options(rate=50.0, burst=500, max_connections=2048)
@click.option(
    "--admin-token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding the token for GET /admin/export and /admin/stats (else "
    "$BLOCKPROOF_ADMIN_TOKEN; without either, those endpoints are off).",
)
def serve_collector(
    data_dir: Path,
    host: str,
    port: int,
    rate_limit: float,
    rate_burst: int,
    admin_token_file: Path | None,
    max_connections: int,
) -> None:
    """The collector: receives measurements (OONI bk-003 and a batch API), logs them durably.

    \b
    Every accepted measurement is fsynced before it is acknowledged and becomes
    a leaf of a transparency log (RFC 9162 Merkle tree); the answer carries an
    inclusion proof against a tree head signed by this collector's key (made on
    first start in DATA/keys/). Resubmissions get the same uid and store nothing.
    \b
    Endpoints: POST /report, /report/{id}, /report/{id}/close (OONI);
    POST /measurements (JSON lines); GET /measurements/{uid}[/receipt],
    /log/tree-head, /log/consistency?first=N&second=M, /health, /openapi.json;
    with an admin token, GET /admin/export?from=N&limit=M and /admin/stats.
    \b
    Limits: a token bucket per client address (--rate-limit, --rate-burst; 429
    beyond), request heads of 16 KiB arriving within 10 s, bodies of 8 MiB (32
    MiB per batch) arriving within 30 s, --max-connections open connections.
    """
    import uvicorn

    from blockproof.collector.app import CollectorApp
    from blockproof.collector.service import data_dir_lock
    from blockproof.ratelimit import RateLimit
    from blockproof.serving import ServeLimits

    admin_token = read_admin_token(admin_token_file)
    limit = RateLimit(rate=rate_limit, burst=rate_burst)
    data_dir_lock(data_dir)  # held until the process exits
    click.echo(
        f"collector: data in {data_dir}, opening the log, then serving http://{host}:{port}/ "
        f"(rate limit {limit.describe()}; admin endpoints {'on' if admin_token else 'off'})",
        err=True,
    )
    limits = ServeLimits(keep_alive=30, max_connections=max_connections)
    uvicorn.run(
        CollectorApp(data_dir, rate_limit=limit, admin_token=admin_token),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Client addresses (for the rate limit only; never logged nor stored) are the
        # peer's: behind a reverse proxy every client shares the proxy's bucket.
        proxy_headers=False,
        **limits.uvicorn_options(_collector_error),
    )


def _collector_error(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


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
    from blockproof.cli.console import stderr
    from blockproof.collector.export import export

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
