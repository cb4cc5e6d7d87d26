"""Who wants which alerts where: subscriptions from ``alerts.toml`` or the command line.

Theory of operation. A subscription is a name, filters and destinations. The filters
(countries, networks, platforms, kinds; each empty list means "any") decide whether an
alert concerns it: an alert matches when its country, its platform and its kind are
listed and, when networks are listed, one of the networks the alert is about is.
Destinations are an Atom file, webhooks (URL and secret) and e-mail recipients (through
the one SMTP server of the run). Each destination has a stable key (``atom:PATH``,
``webhook:<digest of the URL>``, ``mail:ADDR,ADDR``): deliveries are recorded per
subscription name and destination key, so renaming a subscription or changing a
destination starts a new delivery record. A webhook's URL is neither kept in the store nor
printed whole (many services put the hook's secret in its path): its key is a digest,
and it is shown as ``scheme://host/… (digest)``.

The file is read with the strict TOML reader (``blockproof.tomlfile``): unknown keys,
wrong types and bad values are ``ConfigError`` naming the file and the key. Secrets are
read from the environment (``secret_env``, ``password_env``) or, for a webhook, the file
itself (``secret``); they are never written anywhere and never shown by ``repr``.
Relative Atom paths are relative to the configuration file's folder.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blockproof.alerts.changes import KINDS, Alert
from blockproof.errors import ConfigError, InputError
from blockproof.tomlfile import located, read_toml

__all__ = [
    "Config",
    "Destination",
    "Filters",
    "SmtpSettings",
    "Subscription",
    "Webhook",
    "check_explorer_url",
    "check_mail_address",
    "check_webhook_url",
    "load_config",
    "parse_hostport",
]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAIL = re.compile(r"[^@\s<>,;:\"()\[\]\\\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}")
COUNTRY = re.compile(r"[A-Za-z]{2}")
ASN = re.compile(r"(?:AS)?(\d{1,10})", re.IGNORECASE)
MAX_SUBSCRIPTIONS = 1000
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class Filters:
    """Empty sets mean any."""

    countries: frozenset[str] = frozenset()
    networks: frozenset[int] = frozenset()
    platforms: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def matches(self, alert: Alert) -> bool:
        if self.countries and alert.country not in self.countries:
            return False
        if self.platforms and alert.platform not in self.platforms:
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        return not self.networks or bool(self.networks & alert.asns)


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one subscription's alerts go: ``kind`` is atom, webhook or mail."""

    kind: str
    key: str
    atom: Path | None = None
    webhook: Webhook | None = None
    mail_to: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.atom is not None:
            return f"atom {self.atom}"
        if self.webhook is not None:
            return f"webhook {redacted(self.webhook.url)}"
        return f"mail {', '.join(self.mail_to)}"


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    filters: Filters = Filters()
    atom: Path | None = None
    webhooks: tuple[Webhook, ...] = ()
    mail_to: tuple[str, ...] = ()

    def destinations(self) -> list[Destination]:
        out: list[Destination] = []
        if self.atom is not None:
            out.append(Destination("atom", f"atom:{self.atom}", atom=self.atom))
        out.extend(
            Destination("webhook", f"webhook:{_digest(w.url)}", webhook=w) for w in self.webhooks
        )
        if self.mail_to:
            out.append(
                Destination("mail", "mail:" + ",".join(sorted(self.mail_to)), mail_to=self.mail_to)
            )
        return out


@dataclass(frozen=True, slots=True)
class Config:
    subscriptions: tuple[Subscription, ...]
    smtp: SmtpSettings | None
    explorer_url: str | None


def _digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def redacted(url: str) -> str:
    """A webhook URL as it may be shown: its scheme, host and port, and a digest of the
    rest (many services put the secret of a webhook in its path or query)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/… ({_digest(url)[:8]})"


# -- single values, shared with the command line -----------------------------------------


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host, or ``InputError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{url!r} is not a webhook URL (http:// or https:// and a host)")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InputError(f"{url!r}: a URL has no spaces or control characters")
    return url


def check_explorer_url(url: str) -> str:
    """The explorer's base URL without a trailing slash, or ``InputError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise InputError(
            f"{url!r} is not the explorer's base URL (e.g. https://explorer.example.org)"
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InputError(f"{url!r}: a URL has no spaces or control characters")
    return url.rstrip("/")


def check_mail_address(address: str) -> str:
    if not MAIL.fullmatch(address):
        raise InputError(f"{address!r} is not an e-mail address (name@domain)")
    return address


def parse_hostport(text: str, default_port: int = 25) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``[IPv6]:PORT`` -> (host, port)."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?|([A-Za-z0-9.-]+)(?::(\d{1,5}))?",
                         text.strip())  # fmt: skip
    if not match:
        raise InputError(f"{text!r}: expected HOST:PORT, e.g. mail.example.org:587")
    host = match.group(1) or match.group(3)
    port_text = match.group(2) or match.group(4)
    port = int(port_text) if port_text else default_port
    if not 0 < port < 65536:
        raise InputError(f"{text!r}: the port must be between 1 and 65535")
    return host, port


# -- the file ------------------------------------------------------------------------------


class _Table:
    """One TOML table, read key by key; ``done`` refuses the keys left over."""

    def __init__(self, source: str, where: str, value: Any) -> None:
        self.source = source
        self.where = where
        if not isinstance(value, dict):
            raise self.error("", "must be a table")
        self.left: dict[str, Any] = dict(value)

    def error(self, key: str, problem: str) -> ConfigError:
        path = ".".join(p for p in (self.where, key) if p)
        return ConfigError(located(self.source, path, problem))

    def take(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        if key not in self.left:
            return None
        value = self.left.pop(key)
        if isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"must be {what}, not {value!r}")
        if not isinstance(value, kind):
            raise self.error(key, f"must be {what}, not {value!r}")
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        value: str | None = self.take(key, str, "a string")
        if value is None and required:
            raise self.error(key, "is required")
        return value

    def strings(self, key: str) -> list[Any]:
        value: list[Any] | None = self.take(key, list, "a list")
        if value is None:
            return []
        if len(value) > MAX_LIST:
            raise self.error(key, f"has more than {MAX_LIST} items")
        return value

    def done(self) -> None:
        if self.left:
            unknown = ", ".join(sorted(self.left))
            raise self.error("", f"unknown key(s): {unknown}")


def _checked(table: _Table, key: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except InputError as exc:
        raise table.error(key, str(exc)) from None


def _secret(table: _Table, environ: Mapping[str, str], inline: str, env: str) -> str | None:
    value = table.text(inline)
    name = table.text(env)
    if value is not None and name is not None:
        raise table.error(inline, f"give {inline} or {env}, not both")
    if name is not None:
        if name not in environ or not environ[name]:
            raise table.error(env, f"the environment variable {name} is not set")
        return environ[name]
    return value


def _filters(table: _Table, platforms: Sequence[str]) -> Filters:
    countries = set()
    for value in table.strings("countries"):
        if not isinstance(value, str) or not COUNTRY.fullmatch(value):
            raise table.error("countries", f"{value!r} is not a country code (e.g. PK)")
        countries.add(value.upper())
    networks = set()
    for value in table.strings("networks"):
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        match = ASN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise table.error("networks", f"{value!r} is not a network (17557 or AS17557)")
        networks.add(int(match.group(1)))
    chosen = set()
    for value in table.strings("platforms"):
        if not isinstance(value, str) or (value != "*" and value not in platforms):
            known = ", ".join(sorted(platforms))
            raise table.error(
                "platforms", f"{value!r} is not a platform ({known}, or * for outages)"
            )
        chosen.add(value)
    kinds = set()
    for value in table.strings("kinds"):
        if value not in KINDS:
            raise table.error("kinds", f"{value!r} is not one of {', '.join(KINDS)}")
        kinds.add(value)
    return Filters(frozenset(countries), frozenset(networks), frozenset(chosen), frozenset(kinds))


def _smtp(table: _Table, environ: Mapping[str, str]) -> SmtpSettings:
    host = table.text("host", required=True)
    port = table.take("port", int, "a port number")
    port = 25 if port is None else port
    if not 0 < port < 65536:
        raise table.error("port", "must be between 1 and 65535")
    sender = _checked(table, "from", check_mail_address, table.text("from", required=True))
    starttls = table.take("starttls", bool, "true or false")
    user = table.text("user")
    password = _secret(table, environ, "password", "password_env")
    if user is not None and password is None:
        raise table.error("password_env", "is required with user")
    table.done()
    assert host is not None
    return SmtpSettings(host, port, sender, bool(starttls), user, password)


def load_config(path: str | Path, environ: Mapping[str, str], platforms: Sequence[str]) -> Config:
    """The subscriptions of an ``alerts.toml`` file (``ConfigError`` if it is not right)."""
    source, data = read_toml(path, lambda s, k, p: ConfigError(located(s, k, p)))
    base = Path(path).resolve().parent
    top = _Table(source, "", data)
    explorer = top.text("explorer_url")
    explorer_url = None if explorer is None else _checked(
        top, "explorer_url", check_explorer_url, explorer
    )  # fmt: skip
    smtp_table = top.take("smtp", dict, "a table")
    smtp = None if smtp_table is None else _smtp(_Table(source, "smtp", smtp_table), environ)
    raw = top.take("subscription", list, "an array of tables ([[subscription]])") or []
    top.done()
    if len(raw) > MAX_SUBSCRIPTIONS:
        raise ConfigError(located(source, "subscription", f"more than {MAX_SUBSCRIPTIONS}"))
    subscriptions: list[Subscription] = []
    names: set[str] = set()
    for i, value in enumerate(raw):
        t = _Table(source, f"subscription[{i}]", value)
        name = t.text("name", required=True)
        assert name is not None
        if not NAME.fullmatch(name):
            raise t.error("name", f"{name!r}: letters, digits, '.', '_' and '-' (at most 64)")
        if name in names:
            raise t.error("name", f"{name!r} is already the name of another subscription")
        names.add(name)
        filters = _filters(t, platforms)
        atom_text = t.text("atom")
        atom = None if atom_text is None else (base / atom_text)
        webhook_url = t.text("webhook")
        secret = _secret(t, environ, "secret", "secret_env")
        if secret is not None and webhook_url is None:
            raise t.error("secret", "is for a webhook: give webhook = URL")
        webhooks: tuple[Webhook, ...] = ()
        if webhook_url is not None:
            _checked(t, "webhook", check_webhook_url, webhook_url)
            webhooks = (Webhook(webhook_url, secret.encode() if secret else None),)
        mail_to = tuple(
            _checked(t, "mail_to", check_mail_address, a) if isinstance(a, str) else
            _checked(t, "mail_to", check_mail_address, repr(a))
            for a in t.strings("mail_to")
        )  # fmt: skip
        t.done()
        if mail_to and smtp is None:
            raise t.error("mail_to", "needs an [smtp] table (host, port, from)")
        if atom is None and not webhooks and not mail_to:
            raise t.error("", "has no destination: give atom, webhook or mail_to")
        subscriptions.append(Subscription(name, filters, atom, webhooks, mail_to))
    return Config(tuple(subscriptions), smtp, explorer_url)
