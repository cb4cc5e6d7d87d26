"""``blockproof alerts``: onset, update and resolution alerts by Atom, webhook and e-mail.

Glue only: options -> subscriptions (``blockproof.alerts.subscriptions``) -> one run
(``blockproof.alerts.run``) -> one line per delivery and a summary. See docs/alerts.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from blockproof.cli.options import store_option
from blockproof.errors import EXIT_FAILED, InputError

if TYPE_CHECKING:
    from blockproof.alerts.run import Settings
    from blockproof.alerts.subscriptions import Subscription

DEFAULT_EXPLORER = "http://127.0.0.1:8082"
CLI_SUBSCRIPTION = "command-line"
F = TypeVar("F", bound=Callable[..., Any])


_DESTINATION_OPTIONS = [
    click.option(
        "--atom",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the alerts as an Atom feed to FILE (rewritten atomically; the newest 500).",
    ),
    click.option(
        "--webhook",
        "webhooks",
        multiple=True,
        metavar="URL",
        help="POST each alert as JSON to URL (repeatable).",
    ),
    click.option(
        "--webhook-secret-env",
        metavar="NAME",
        help="The environment variable holding the webhooks' HMAC secret "
        "(X-Blockproof-Signature: sha256=...). Without it webhooks are not signed.",
    ),
    click.option("--smtp", metavar="HOST:PORT", help="Send e-mail through this SMTP server."),
    click.option("--smtp-starttls", is_flag=True, help="Use STARTTLS with --smtp."),
    click.option(
        "--mail-to",
        "mail_to",
        multiple=True,
        metavar="ADDR",
        help="E-mail each alert to ADDR (repeatable; needs --smtp).",
    ),
    click.option("--mail-from", metavar="ADDR", help="The sender [default: blockproof@localhost]."),
    click.option(
        "--explorer-url",
        metavar="URL",
        help=f"The explorer the alerts link to [default: explorer_url in --config, else "
        f"{DEFAULT_EXPLORER}].",
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="alerts.toml: [[subscription]] tables with filters and destinations, [smtp].",
    ),
]


def destination_options(func: F) -> F:
    """Where alerts go: ``--atom``, ``--webhook``, ``--smtp``/``--mail-to``, ``--config``,
    and the explorer they link to (``alerts`` and ``pipeline`` share them)."""
    for option in reversed(_DESTINATION_OPTIONS):
        func = option(func)
    return func


def alert_setup(
    store: Path,
    *,
    atom: Path | None,
    webhooks: tuple[str, ...],
    webhook_secret_env: str | None,
    smtp: str | None,
    smtp_starttls: bool,
    mail_to: tuple[str, ...],
    mail_from: str | None,
    explorer_url: str | None,
    config_file: Path | None,
    dry_run: bool = False,
    retry_failed: bool = False,
) -> tuple[list[Subscription], Settings]:
    """The subscriptions and settings the destination options describe, checked."""
    from blockproof.alerts.run import Settings
    from blockproof.alerts.subscriptions import (
        Config,
        SmtpSettings,
        Subscription,
        Webhook,
        check_explorer_url,
        check_mail_address,
        check_webhook_url,
        load_config,
        parse_hostport,
    )
    from blockproof.platforms import profiles

    config = Config((), None, None)
    if config_file is not None:
        config = load_config(config_file, os.environ, sorted(profiles()))

    secret: bytes | None = None
    if webhook_secret_env is not None:
        value = os.environ.get(webhook_secret_env)
        if not value:
            raise InputError(f"--webhook-secret-env: {webhook_secret_env} is not set")
        if not webhooks:
            raise InputError("--webhook-secret-env is for --webhook URL")
        secret = value.encode()
    hooks = tuple(Webhook(check_webhook_url(url), secret) for url in webhooks)
    if hooks and secret is None:
        click.echo("alerts: webhooks not signed (no --webhook-secret-env)", err=True)

    smtp_settings = config.smtp
    if smtp is not None:
        host, port = parse_hostport(smtp)
        sender = check_mail_address(
            mail_from or (smtp_settings.sender if smtp_settings else "blockproof@localhost")
        )
        smtp_settings = SmtpSettings(host, port, sender, smtp_starttls)
    elif mail_from is not None or smtp_starttls:
        raise InputError("--mail-from and --smtp-starttls are for --smtp HOST:PORT")
    recipients = tuple(check_mail_address(a) for a in mail_to)
    if recipients and smtp_settings is None:
        raise InputError("--mail-to needs --smtp HOST:PORT (or [smtp] in --config)")
    if smtp is not None and not recipients:
        raise InputError("--smtp needs --mail-to ADDR")

    subscriptions = list(config.subscriptions)
    if atom is not None or hooks or recipients:
        if any(s.name == CLI_SUBSCRIPTION for s in subscriptions):
            raise InputError(f"--config names a subscription {CLI_SUBSCRIPTION!r}: rename it")
        subscriptions.append(
            Subscription(
                CLI_SUBSCRIPTION,
                atom=None if atom is None else atom.resolve(),
                webhooks=hooks,
                mail_to=recipients,
            )
        )
    url = explorer_url or config.explorer_url or DEFAULT_EXPLORER
    settings = Settings(
        explorer_url=check_explorer_url(url),
        store_label=str(store.resolve()),
        smtp=smtp_settings,
        dry_run=dry_run,
        retry_failed=retry_failed,
    )
    return subscriptions, settings


@click.command("alerts")
@store_option("The store (after `blockproof analyze`).", exists=True, as_path=True)
@destination_options
@click.option("--dry-run", is_flag=True, help="Say what would be delivered; change nothing.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Try again the deliveries that failed for good in earlier runs.",
)
def alerts_cmd(
    store: Path,
    atom: Path | None,
    webhooks: tuple[str, ...],
    webhook_secret_env: str | None,
    smtp: str | None,
    smtp_starttls: bool,
    mail_to: tuple[str, ...],
    mail_from: str | None,
    explorer_url: str | None,
    config_file: Path | None,
    dry_run: bool,
    retry_failed: bool,
) -> None:
    """Alert on blocking and unblocking: one alert per event change since the last run.

    Onset (a new event: platform blocked in a country on networks, since when, method,
    confidence), update (new networks, a changed method or confidence) and resolution
    (reachable again), each linking to the explorer's evidence page and naming the report
    command. Delivered exactly once per destination: the delivery state is kept in
    STORE/alerts/; a rerun, a crash or a restart repeats nothing and loses nothing.
    Exit 1 if a delivery failed or is left pending (retried by the next run).

    \b
    Examples:
      blockproof alerts --store pk --atom /var/www/feeds/pk.atom
      blockproof alerts --store pk --webhook https://hooks.example.org/b \\
          --webhook-secret-env HOOK_SECRET
      blockproof alerts --store pk --smtp mail.example.org:25 --mail-to desk@example.org
      blockproof alerts --store pk --config alerts.toml
    """
    from blockproof.cli.pipeline import need_pipeline

    need_pipeline()
    from blockproof.alerts.run import Outcome, run_alerts
    from blockproof.pipeline.store import Store

    subscriptions, settings = alert_setup(
        store, atom=atom, webhooks=webhooks, webhook_secret_env=webhook_secret_env, smtp=smtp,
        smtp_starttls=smtp_starttls, mail_to=mail_to, mail_from=mail_from,
        explorer_url=explorer_url, config_file=config_file, dry_run=dry_run,
        retry_failed=retry_failed,
    )  # fmt: skip
    if not subscriptions and not dry_run:
        raise InputError("nothing to deliver to: give --atom, --webhook, --mail-to or --config")

    def show(o: Outcome) -> None:
        what = o.status if o.status != "would-deliver" else "would deliver"
        note = f" ({o.error})" if o.error else ""
        retry = " (retried next run)" if o.status == "pending" else ""
        click.echo(
            f"{what:<13} {o.alert.id} -> {o.subscription}: {o.destination.describe()}"
            f"{note}{retry}\n              {o.alert.title}"
        )

    report = run_alerts(Store(store), subscriptions, settings, on_outcome=show)
    parts = [f"{len(report.new_alerts)} new alert(s)"]
    if dry_run:
        parts.append(
            f"{report.count('would-deliver')} delivery(ies) would be made; nothing changed"
        )
    else:
        parts.append(
            f"{report.count('delivered')} delivered, {report.count('pending')} pending, "
            f"{report.count('failed')} failed"
        )
    if report.requeued:
        parts.append(f"{report.requeued} failed delivery(ies) tried again")
    if report.unconfigured:
        parts.append(f"{report.unconfigured} pending for destinations no longer configured (kept)")
    click.echo("alerts: " + "; ".join(parts))
    if not report.ok:
        raise SystemExit(EXIT_FAILED)


def register(main: click.Group, serve: click.Group) -> None:
    main.add_command(alerts_cmd)
