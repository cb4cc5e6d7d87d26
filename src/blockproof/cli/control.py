"""``serve control``: the control server (OONI's test-helper protocol)."""

from __future__ import annotations

import click

from blockproof.cli.base import EPILOG
from blockproof.cli.options import public_server_options


@click.command("control", epilog=EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="Trust this CA PEM.")
@public_server_options(rate=10.0, burst=100, max_connections=1024)
def serve_control(
    host: str,
    port: int,
    ca_file: str | None,
    rate_limit: float = 10.0,
    rate_burst: int = 100,
    max_connections: int = 1024,
) -> None:
    """The control server: OONI's test-helper protocol (POST a THRequest to /).

    It measures from this machine's network, so run it outside the censorship.
    It never dials private, loopback or other bogon addresses a client names.

    \b
    Limits: a token bucket per client address (--rate-limit, --rate-burst; 429
    beyond), request heads of 16 KiB arriving within 10 s, bodies of 64 KiB
    arriving within 30 s, 64 measurements at once (503 beyond), 45 s per
    measurement (504), --max-connections open connections. GET /openapi.json
    describes the API.
    """
    import json

    import uvicorn

    from blockproof.control.server import create_app
    from blockproof.ratelimit import RateLimit
    from blockproof.serving import ServeLimits

    limit = RateLimit(rate=rate_limit, burst=rate_burst)
    click.echo(
        f"control server: listening on http://{host}:{port}/ (rate limit {limit.describe()})",
        err=True,
    )
    limits = ServeLimits(keep_alive=5, max_connections=max_connections)
    uvicorn.run(
        create_app(ca_file=ca_file, rate_limit=limit),
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,  # client addresses are the peer's (rate limit only)
        **limits.uvicorn_options(lambda _code, detail: json.dumps({"error": detail}).encode()),
    )


def register(main: click.Group, serve: click.Group) -> None:
    serve.add_command(serve_control)
