"""The explorer's commands: ``report`` (an event's evidence report). Glue only."""

from __future__ import annotations

from pathlib import Path

import click

from blockproof.cli.options import store_option
from blockproof.errors import InputError


@click.command("report")
@click.argument("event_id")
@store_option("The store (after `blockproof analyze`).", exists=True, as_path=True)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the report: FILE.html (self-contained) or FILE.pdf (printed by "
    "headless Chromium).",
)
@click.option(
    "--samples",
    type=click.IntRange(1, 200),
    default=12,
    show_default=True,
    help="Sample measurements listed with their hashes and signature status.",
)
@click.option(
    "--since",
    metavar="YYYY-MM-DD",
    help="Add a compliance section: each network's hourly state (blocked, clear, no data) "
    "from this date on (e.g. a court order's), its first clear hour and the blocked hours "
    "after it.",
)
def report_cmd(event_id: str, store: Path, out: Path, samples: int, since: str | None) -> None:
    """Write the evidence report of one event (id or unique prefix, see `blockproof events`).

    A self-contained page that renders offline and prints as it shows: the
    summary, an hourly timeline, the networks, how the block works, methodology
    and limits, sample measurements with the SHA-256 of their bytes and their
    signatures, and how to verify them with `blockproof verify`. With --since,
    whether each network complied from that date on (also printed here).
    """
    from blockproof.cli.console import stderr
    from blockproof.cli.pipeline import need_pipeline
    from blockproof.explorer.evidence import gather
    from blockproof.explorer.report import render_html
    from blockproof.explorer.timeline import parse_day
    from blockproof.pipeline.store import Store

    need_pipeline()
    since_day = parse_day(since, "--since") if since is not None else None
    if since is not None and since_day is None:
        raise InputError("--since must be a date like 2024-02-22, not an empty string")
    kind = out.suffix.lower()
    if kind not in (".html", ".htm", ".pdf"):
        raise InputError(f"--out {out}: write FILE.html or FILE.pdf")
    if kind == ".pdf":
        from blockproof.explorer.pdf import find_browser

        find_browser()  # fail before the work if PDF cannot be made
    evidence = gather(
        Store(str(store)), event_id, sample_size=samples, reverify=True, since=since_day
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    html = out.with_name(out.name + ".tmp.html")
    try:
        html.write_text(render_html(evidence), encoding="utf-8")
        if kind == ".pdf":
            from blockproof.explorer.pdf import html_to_pdf

            html_to_pdf(html, out)
        else:
            html.replace(out)
    finally:
        html.unlink(missing_ok=True)
    stderr.print(f"report for {evidence.event.id} written to {out}", soft_wrap=True)
    if evidence.compliance is not None:
        for network in evidence.compliance.networks:
            stderr.print(f"  {network.sentence(evidence.compliance.since)}", markup=False)


@click.command("explorer")
@store_option("The store (after `blockproof analyze`).", exists=True, as_path=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8082, show_default=True, type=click.IntRange(0, 65535))
def serve_explorer(store: Path, host: str, port: int) -> None:
    """The explorer: events, timelines, search and measurements of a store, read-only.

    \b
    Pages: / (events, platform by country), /events/ID (the evidence report;
    ?since=YYYY-MM-DD adds each network's compliance from that date on),
    /countries/CC (each platform on each network), /countries/CC/PLATFORM (its
    timeline per hour or day, with a heatmap of networks; ?since=&until=&granularity=),
    /search (counts like OONI's MAT, CSV/JSON export), /measurements/ID (steps as a
    waterfall with the control's view, verdict, hash, signature, raw JSON; add .json to
    download). JSON behind every page under /api/ (start with /api/status).
    """
    serve_store(store, host, port)


def serve_store(store: Path, host: str = "127.0.0.1", port: int = 8082) -> None:
    """Run the explorer over ``store`` until interrupted; if ``port`` is taken, another
    free one is used. Prints the URL to open."""
    import socket

    import uvicorn

    from blockproof.explorer.app import create_app

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.bind((host, 0))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"explorer: store {store}, open http://{shown}:{bound}/ (Ctrl-C to stop)", err=True)
    config = uvicorn.Config(create_app(store), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


def register(main: click.Group, serve: click.Group) -> None:
    main.add_command(report_cmd)
    serve.add_command(serve_explorer)
