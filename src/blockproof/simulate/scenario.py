"""Campaign scenarios: who measures, from where, for how long, and what the censor does when.

A scenario is a TOML file (format in docs/simulator.md; this module is its single
definition). It names a country, the networks probes stand in (with their share of
the probes, and whether they are mobile networks), the URLs every session measures,
how probes behave (how often they test, how often a session is skipped, how they
join and leave), a baseline false-positive rate, and a list of censorship episodes:
a platform (or ``all`` for a loss of connectivity) blocked on some networks, between
two UTC times, with one method (or a mix of methods), catching every measurement or
only a share of them, with restorations when access briefly comes back. An optional
``[density]`` table makes the campaign look like OONI's real data instead of a dense,
clean one: sparse and heavy-tailed volumes per network, one report id per run, failures,
stray anomalies, partial blocks and late uploads, with defaults derived from a real
sample of OONI's fastpath table (``densities.json``, made by
``scripts/derive_densities.py``; docs/simulator.md, "OONI-like campaigns").

Loading is strict: an unknown key, a wrong type, a bad date, an unknown method or
platform, an episode outside the campaign window... raises ``SimScenarioError`` naming
the file, the key (``episode[2].restorations[0].end``) and the problem.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blockproof.core.bogons import is_bogon
from blockproof.errors import ConfigError
from blockproof.lab.scenario import blockpage_names
from blockproof.platforms import platform_of_url, profiles
from blockproof.tomlfile import located, read_toml

__all__ = [
    "ALL_PLATFORMS",
    "DEFAULT_PROFILE",
    "DEFAULT_URLS",
    "FALSE_POSITIVE_KINDS",
    "METHODS",
    "Behaviour",
    "Density",
    "Episode",
    "Interval",
    "MethodInfo",
    "SimNetwork",
    "SimScenario",
    "SimScenarioError",
    "density_profile",
    "format_time",
    "load_sim_scenario",
    "parse_sim_scenario",
    "resolve_sim_scenario",
    "shipped_sim_scenarios",
]

ALL_PLATFORMS = "all"

# What a session measures when the scenario lists no URLs: X's endpoints, and
# comparison platforms that are not blocked unless an episode says so.
DEFAULT_URLS: tuple[str, ...] = (
    "https://x.com/",
    "https://twitter.com/",
    "https://t.co/",
    "https://pbs.twimg.com/",
    "https://www.wikipedia.org/",
    "https://www.youtube.com/",
    "https://www.facebook.com/",
)

DEFAULT_BOGON = "10.10.34.35"
DEFAULT_HTTP_BLOCKPAGE = "isp_pk_nayatel_block_optin"
DEFAULT_DNS_BLOCKPAGE = "dns_isp_pk_nayatel_safeweb"


class SimScenarioError(ConfigError):
    """A malformed scenario: the message names the file, the key and the problem."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(located(source, key, problem))
        self.source = source
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """One censorship method: what the censor does, and what the classifier must say."""

    name: str
    description: str
    verdict_method: str  # x_verdict.method of a measurement it affects
    rule_ids: frozenset[str]  # x_verdict.rule_id of a measurement it affects
    https: bool = True  # acts on https:// URLs
    http: bool = True  # acts on http:// URLs
    block: bool = True  # usable for one platform
    outage: bool = False  # usable for platform = "all" (a loss of connectivity)
    answer: str | None = None  # default forged DNS answer; None: the method takes none
    blockpage: str | None = None  # default blockpage; None: the method serves none


def _m(name: str, verdict: str, rules: tuple[str, ...], description: str, **kw: Any) -> MethodInfo:
    return MethodInfo(name, description, verdict, frozenset(rules), **kw)


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        _m("dns-nxdomain", "dns", ("wc.dns.nxdomain",),
           "the ISP's resolvers answer NXDOMAIN for the platform's names"),
        _m("dns-timeout", "dns", ("wc.dns.timeout",),
           "DNS queries for the platform's names get no answer", outage=True),
        _m("dns-bogon", "dns", ("wc.dns.bogon",),
           "the platform's names resolve to a private address that does not answer",
           answer=DEFAULT_BOGON),
        _m("dns-blockpage-ip", "dns", ("wc.dns.inconsistent",),
           "the platform's names resolve to the ISP's blockpage server (HTTP only: https"
           " connections are refused)", answer="", blockpage=DEFAULT_DNS_BLOCKPAGE),
        _m("tcp-blackhole", "tcp_ip", ("wc.tcp.timeout",),
           "SYNs to the platform's addresses are dropped", outage=True),
        _m("tcp-refused", "tcp_ip", ("wc.tcp.refused",),
           "connections to the platform's addresses are refused (RST to the SYN)"),
        _m("tls-reset", "tls", ("wc.tls.reset",),
           "a RST after a TLS ClientHello naming the platform (SNI filtering)"),
        _m("tls-eof", "tls", ("wc.tls.eof",),
           "the connection is closed after a ClientHello naming the platform"),
        _m("tls-timeout", "tls", ("wc.tls.timeout",),
           "a ClientHello naming the platform is dropped, and everything after it"),
        _m("http-reset", "http", ("wc.http.reset",),
           "a RST after a plain-HTTP request for the platform (https:// URLs unaffected)",
           https=False),
        _m("http-blockpage", "http-diff", ("wc.http.diff",),
           "a plain-HTTP request for the platform gets the ISP's blockpage (https:// URLs"
           " unaffected)", https=False, blockpage=DEFAULT_HTTP_BLOCKPAGE),
        _m("blackout", "dns", ("wc.dns.timeout",),
           "no connectivity at all: DNS lookups time out, every connection times out",
           block=False, outage=True),
    )
}  # fmt: skip

# Spurious failures of the baseline: what a flaky path does to a measurement that
# would otherwise be fine. Each is classified as an anomaly (never "ok").
FALSE_POSITIVE_KINDS: dict[str, str] = {
    "tcp-timeout": "every TCP connect to the site times out",
    "tls-timeout": "the TLS handshakes time out",
    "dns-timeout": "the system resolver times out",
    "dns-inconsistent": "the system resolver returns a stale address that does not answer",
}


@dataclass(frozen=True, slots=True)
class SimNetwork:
    """A network (an AS) probes of the campaign stand in."""

    asn: int
    name: str
    share: float  # relative weight; the probes are apportioned by these
    mobile: bool = False
    runs_per_day: float | None = None  # [density] only: mean web_connectivity runs a day

    @property
    def asn_string(self) -> str:
        return f"AS{self.asn}"


@dataclass(frozen=True, slots=True)
class Interval:
    """``[start, end)`` in UTC; ``end`` None means it never ends."""

    start: datetime
    end: datetime | None

    def contains(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when < self.end)


@dataclass(frozen=True, slots=True)
class Episode:
    label: str
    platform: str  # a platform id, or "all" (a loss of connectivity)
    networks: tuple[int, ...]  # ASNs
    start: datetime
    end: datetime | None  # None: lasts beyond any window
    method: str
    restorations: tuple[Interval, ...] = ()
    answer: str = ""  # forged DNS answer (dns-bogon, dns-blockpage-ip)
    answer_asn: int = 0  # the AS of that answer (0 for a bogon)
    blockpage: str = ""  # blockpage file stem (http-blockpage, dns-blockpage-ip)
    mix: tuple[tuple[str, float], ...] = ()  # other methods and their shares of the blocked
    share: tuple[float, float] | None = None  # share caught, drawn per network; None: default

    @property
    def methods(self) -> tuple[tuple[str, float], ...]:
        """Every method with its share of the measurements the censor catches, main first."""
        rest = sum(w for _, w in self.mix)
        return ((self.method, round(1.0 - rest, 6)), *self.mix)

    @property
    def kind(self) -> str:
        return "outage" if self.platform == ALL_PLATFORMS else "platform_block"

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)

    def active(self, when: datetime) -> bool:
        """Is the censor acting at ``when`` (inside the episode, outside restorations)?"""
        if not self.interval.contains(when):
            return False
        return not any(r.contains(when) for r in self.restorations)


@dataclass(frozen=True, slots=True)
class Behaviour:
    mean_interval_hours: float = 6.0  # mean time between a probe's sessions (exponential)
    skip_probability: float = 0.1  # a session that is due does not happen
    stable_fraction: float = 0.4  # probes present for the whole campaign
    mean_lifetime_days: float = 21.0  # the others: join at a random time, stay this long
    empty_hour_probability: float = 0.005  # hours without any data at all (nationwide)


DEFAULT_PROFILE = "ooni-fastpath-2024-01-01"


@cache
def density_profile(name: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """The derived densities (``densities.json``): ``parameters``, ``sample``, ``choices``."""
    text = (resources.files("blockproof.simulate") / "densities.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    if data.get("profile") != name:
        raise KeyError(name)
    return data


@dataclass(frozen=True, slots=True)
class Density:
    """``[density]``: an OONI-like campaign. Every parameter not given comes from the
    profile (``density_profile``), derived from a real sample of OONI's data."""

    profile: str = DEFAULT_PROFILE
    probe_ids: bool = False  # write x_probe_id (OONI's data carries no probe identity)
    secondary_urls: tuple[str, ...] = ()  # measured as often as an average listed URL
    overrides: tuple[tuple[str, Any], ...] = field(default=())  # profile parameters given

    def parameters(self) -> dict[str, Any]:
        params = dict(density_profile(self.profile)["parameters"])
        params.update(dict(self.overrides))
        return params


# [density] keys that override a profile parameter: (low, high) for numbers
_DENSITY_NUMBERS: dict[str, tuple[float, float]] = {
    "runs_per_day": (0.0, 1e6),  # -> runs_per_network_day_median
    "day_shape": (0.05, 1e6),
    "flaky_run_probability": (0.0, 1.0),
    "flaky_failure_share": (0.0, 1.0),
    "late_upload_probability": (0.0, 1.0),
    "late_delay_median_h": (0.0, 24.0 * 365),
}


@dataclass(frozen=True, slots=True)
class SimScenario:
    """A campaign scenario, as loaded and checked from its TOML file."""

    name: str
    country: str
    start: datetime
    networks: tuple[SimNetwork, ...]
    description: str = ""
    source: str = "<scenario>"
    days: int = 90
    probes: int = 200
    urls: tuple[str, ...] = DEFAULT_URLS
    behaviour: Behaviour = Behaviour()
    false_positive_rate: float = 0.005
    false_positive_kinds: tuple[str, ...] = tuple(FALSE_POSITIVE_KINDS)
    episodes: tuple[Episode, ...] = ()
    density: Density | None = None  # None: the dense, clean campaign

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def network(self, asn: int) -> SimNetwork:
        for network in self.networks:
            if network.asn == asn:
                return network
        raise KeyError(asn)


def format_time(when: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``: ``2024-02-17T17:00:00Z`` (None stays None)."""
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------
# strict reading


class _Reader:
    """Typed access to one TOML table, remembering where it is for error messages."""

    def __init__(self, source: str, path: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise SimScenarioError(source, path or "(top level)", "expected a table")
        self.source = source
        self.path = path
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> SimScenarioError:
        return SimScenarioError(self.source, self.key(name), problem)

    def has(self, name: str) -> bool:
        return name in self.table

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(name)
        if name not in self.table:
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(name, f"expected {_kind_name(kinds)}, got true/false")
        if not isinstance(value, kinds):
            raise self.fail(name, f"expected {_kind_name(kinds)}, got {_type_name(value)}")
        return value

    def require(self, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in self.table:
            raise self.fail(name, "is required")
        return self.get(name, kind)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value: float = self.get(name, float, default)
        if not low <= value <= high:
            raise self.fail(name, f"{value:g} is out of range ({low:g} to {high:g})")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value: int = self.get(name, int, default)
        if not low <= value <= high:
            raise self.fail(name, f"{value} is out of range ({low} to {high})")
        return value

    def time(self, name: str, *, required: bool = True) -> datetime | None:
        if name not in self.table:
            if required:
                raise self.fail(name, "is required")
            self.used.add(name)
            return None
        value = self.get(name, (datetime, date, str))
        return _to_utc(self, name, value)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key (see docs/simulator.md for the format)")


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
        datetime: "a date-time",
        date: "a date",
        time: "a time",
    }
    return names.get(type(value), type(value).__name__)


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
        datetime: "a UTC date-time",
        date: "a date",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _to_utc(reader: _Reader, name: str, value: datetime | date | str) -> datetime:
    """A TOML date, offset date-time or ISO 8601 string as an aware UTC datetime."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if "T" in text or " " in text:
                value = datetime.fromisoformat(text)
            else:
                value = date.fromisoformat(text)
        except ValueError:
            raise reader.fail(
                name, f"{text!r} is not a date (2024-02-17) or UTC date-time (2024-02-17T17:00:00Z)"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise reader.fail(
                name,
                f"{value.isoformat()} has no time zone: write it in UTC with a Z"
                f" ({value.isoformat()}Z)",
            )
        return value.astimezone(UTC)
    return datetime.combine(value, time(0, 0), tzinfo=UTC)


def _parse_asn(reader: _Reader, name: str, value: Any) -> int:
    if isinstance(value, str):
        text = value.strip().upper().removeprefix("AS")
        if not text.isdigit():
            raise reader.fail(name, f"{value!r} is not an AS number (AS17557 or 17557)")
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise reader.fail(
            name, f"expected an AS number (AS17557 or 17557), got {_type_name(value)}"
        )
    if not 0 < number < 2**32:
        raise reader.fail(name, f"{number} is not an AS number")
    return number


def _read_network(source: str, index: int, table: Any, *, density: bool) -> SimNetwork:
    r = _Reader(source, f"network[{index}]", table)
    asn = _parse_asn(r, "asn", r.require("asn", (str, int)))
    name = r.require("name", str).strip()
    if not name:
        raise r.fail("name", "must not be empty")
    share = r.number("share", 1.0, 0.0, 1e6)
    if share <= 0:
        raise r.fail("share", "must be positive")
    runs: float | None = None
    if r.has("runs_per_day"):
        if not density:
            raise r.fail("runs_per_day", "needs a [density] table (an OONI-like campaign)")
        runs = r.number("runs_per_day", 0.0, 0.0, 1e6)
    network = SimNetwork(
        asn=asn, name=name, share=share, mobile=r.get("mobile", bool, False), runs_per_day=runs
    )
    r.finish()
    return network


def _read_urls(r: _Reader) -> tuple[str, ...]:
    raw = r.get("urls", list)
    if raw is None:
        return DEFAULT_URLS
    if not raw:
        raise r.fail("urls", "must list at least one URL")
    seen: set[str] = set()
    for i, url in enumerate(raw):
        key = f"urls[{i}]"
        if not isinstance(url, str):
            raise r.fail(key, f"expected a string, got {_type_name(url)}")
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError:
            raise r.fail(key, f"{url!r} is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise r.fail(key, f"{url!r} is not an http:// or https:// URL with a host")
        if parts.port is not None or parts.username or parts.password:
            raise r.fail(key, f"{url!r}: ports and user names are not simulated")
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            pass
        else:
            raise r.fail(key, f"{url!r}: the simulator measures host names, not addresses")
        if url in seen:
            raise r.fail(key, f"{url!r} is listed twice")
        seen.add(url)
    return tuple(raw)


def _read_behaviour(source: str, table: Any, *, density: bool) -> Behaviour:
    r = _Reader(source, "behaviour", table)
    if density:
        for key in ("mean_interval_hours", "skip_probability"):
            if r.has(key):
                raise r.fail(
                    key, "not used with [density]: runs come from the networks' runs_per_day"
                )
    d = Behaviour()
    behaviour = Behaviour(
        mean_interval_hours=r.number("mean_interval_hours", d.mean_interval_hours, 0.25, 24 * 30),
        skip_probability=r.number("skip_probability", d.skip_probability, 0.0, 0.99),
        stable_fraction=r.number("stable_fraction", d.stable_fraction, 0.0, 1.0),
        mean_lifetime_days=r.number("mean_lifetime_days", d.mean_lifetime_days, 0.1, 3650),
        empty_hour_probability=r.number(
            "empty_hour_probability", d.empty_hour_probability, 0.0, 0.5
        ),
    )
    r.finish()
    return behaviour


def _read_baseline(source: str, table: Any, default_rate: float) -> tuple[float, tuple[str, ...]]:
    r = _Reader(source, "baseline", table)
    rate = r.number("false_positive_rate", default_rate, 0.0, 0.5)
    kinds_raw = r.get("false_positive_kinds", list, list(FALSE_POSITIVE_KINDS))
    for i, kind in enumerate(kinds_raw):
        if kind not in FALSE_POSITIVE_KINDS:
            raise r.fail(
                f"false_positive_kinds[{i}]",
                f"{kind!r} is not one of {', '.join(FALSE_POSITIVE_KINDS)}",
            )
    if rate > 0 and not kinds_raw:
        raise r.fail("false_positive_kinds", "a positive false_positive_rate needs some kinds")
    r.finish()
    return rate, tuple(dict.fromkeys(kinds_raw))


def _read_share_range(r: _Reader, name: str) -> tuple[float, float] | None:
    """``share = 0.8`` or ``share = [0.6, 0.95]``: a share, or a range to draw from."""
    if not r.has(name):
        r.used.add(name)
        return None
    raw = r.get(name, (float, list))
    if isinstance(raw, float):
        raw = [raw, raw]
    if len(raw) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in raw
    ):
        raise r.fail(name, "expected a share (0.85) or a range of two shares ([0.6, 0.95])")
    low, high = float(raw[0]), float(raw[1])
    if not 0.0 < low <= high <= 1.0:
        raise r.fail(name, f"{low:g} to {high:g}: shares must satisfy 0 < low <= high <= 1")
    return low, high


def _read_density(source: str, table: Any, urls: tuple[str, ...]) -> Density:
    r = _Reader(source, "density", table)
    profile = r.get("profile", str, DEFAULT_PROFILE)
    try:
        density_profile(profile)
    except KeyError:
        known = DEFAULT_PROFILE
        raise r.fail("profile", f"{profile!r} is not a shipped profile ({known})") from None
    overrides: list[tuple[str, Any]] = []
    for key, (low, high) in _DENSITY_NUMBERS.items():
        if r.has(key):
            target = "runs_per_network_day_median" if key == "runs_per_day" else key
            overrides.append((target, r.number(key, 0.0, low, high)))
    block = _read_share_range(r, "block_share")
    if block is not None:
        overrides.append(("block_share", block))
    secondary = r.get("secondary_urls", list, [])
    for i, url in enumerate(secondary):
        if url not in urls:
            raise r.fail(f"secondary_urls[{i}]", f"{url!r} is not one of the scenario's urls")
    density = Density(
        profile=profile,
        probe_ids=r.get("probe_ids", bool, False),
        secondary_urls=tuple(dict.fromkeys(secondary)),
        overrides=tuple(overrides),
    )
    r.finish()
    return density


def _read_networks_selector(r: _Reader, networks: tuple[SimNetwork, ...]) -> tuple[int, ...]:
    raw = r.require("networks", (str, list))
    if isinstance(raw, str):
        selectors = {
            "all": [n.asn for n in networks],
            "mobile": [n.asn for n in networks if n.mobile],
            "fixed": [n.asn for n in networks if not n.mobile],
        }
        if raw not in selectors:
            raise r.fail("networks", f"{raw!r} is not all, mobile, fixed or a list of AS numbers")
        if not selectors[raw]:
            raise r.fail("networks", f"the scenario has no {raw} network")
        return tuple(selectors[raw])
    if not raw:
        raise r.fail("networks", "must name at least one network")
    known = {n.asn for n in networks}
    out: list[int] = []
    for i, item in enumerate(raw):
        asn = _parse_asn(r, f"networks[{i}]", item)
        if asn not in known:
            raise r.fail(f"networks[{i}]", f"AS{asn} is not one of the scenario's networks")
        if asn in out:
            raise r.fail(f"networks[{i}]", f"AS{asn} is listed twice")
        out.append(asn)
    return tuple(out)


def _read_episode(
    source: str,
    index: int,
    table: Any,
    networks: tuple[SimNetwork, ...],
    urls: tuple[str, ...],
    window: Interval,
) -> Episode:
    r = _Reader(source, f"episode[{index}]", table)
    label = r.get("label", str, "")
    platform = r.require("platform", str)
    known = profiles()
    if platform != ALL_PLATFORMS and platform not in known:
        raise r.fail(
            "platform",
            f"{platform!r} is not a platform ({', '.join(sorted(known))}) nor {ALL_PLATFORMS!r}",
        )
    asns = _read_networks_selector(r, networks)
    start = r.time("start")
    end = r.time("end", required=False)
    assert start is not None
    if end is not None and end <= start:
        raise r.fail("end", f"{format_time(end)} is not after start ({format_time(start)})")
    assert window.end is not None
    if start >= window.end:
        raise r.fail(
            "start",
            f"{format_time(start)} is outside the campaign window"
            f" ({format_time(window.start)} to {format_time(window.end)})",
        )
    if end is not None and end <= window.start:
        raise r.fail(
            "end",
            f"{format_time(end)}: the episode ends before the campaign window starts"
            f" ({format_time(window.start)})",
        )
    method = r.require("method", str)
    info = METHODS.get(method)
    if info is None:
        raise r.fail("method", f"{method!r} is not one of {', '.join(METHODS)}")
    if platform == ALL_PLATFORMS and not info.outage:
        usable = ", ".join(m.name for m in METHODS.values() if m.outage)
        raise r.fail("method", f'{method!r} cannot make an outage (platform = "all"); use {usable}')
    if platform != ALL_PLATFORMS and not info.block:
        raise r.fail("method", f'{method!r} is an outage method: it needs platform = "all"')
    mine = list(urls)
    if platform != ALL_PLATFORMS:
        mine = [u for u in urls if platform_of_url(u) == platform]
        if not mine:
            raise r.fail("platform", f"no URL of the scenario belongs to {platform!r}")
        acted = [u for u in mine if (info.https if u.startswith("https:") else info.http)]
        if not acted:
            raise r.fail(
                "method",
                f"{method!r} only acts on plain-HTTP URLs and the scenario measures no"
                f" http:// URL of {platform!r}",
            )
    mix = _read_mix(r, method, platform, mine)
    share = _read_share_range(r, "share")
    answer, answer_asn = _read_answer(r, info, networks, asns)
    blockpage = ""
    if info.blockpage is None:
        if r.has("blockpage"):
            raise r.fail("blockpage", f"{method!r} serves no blockpage")
    else:
        blockpage = r.get("blockpage", str, info.blockpage)
        names = blockpage_names()
        if blockpage not in names:
            raise r.fail("blockpage", f"unknown blockpage {blockpage!r}; known: {', '.join(names)}")
    restorations = _read_restorations(r, start, end)
    r.finish()
    return Episode(
        label=label,
        platform=platform,
        networks=asns,
        start=start,
        end=end,
        method=method,
        restorations=restorations,
        answer=answer,
        answer_asn=answer_asn,
        blockpage=blockpage,
        mix=mix,
        share=share,
    )


def _read_mix(
    r: _Reader, main: str, platform: str, urls: list[str]
) -> tuple[tuple[str, float], ...]:
    """``mix = { tcp-refused = 0.1, tls-reset = 0.05 }``: other methods of the same episode
    and their shares of the measurements the censor catches (the main method has the rest)."""
    raw = r.get("mix", dict, {})
    out: list[tuple[str, float]] = []
    for name, weight in raw.items():
        key = f"mix.{name}"
        info = METHODS.get(name)
        if info is None:
            raise r.fail(key, f"{name!r} is not one of {', '.join(METHODS)}")
        if name == main:
            raise r.fail(key, "is the episode's main method: its share is what the mix leaves")
        if platform == ALL_PLATFORMS and not info.outage:
            raise r.fail(key, f"{name!r} cannot make an outage")
        if platform != ALL_PLATFORMS and not info.block:
            raise r.fail(key, f"{name!r} is an outage method")
        if info.answer is not None or info.blockpage is not None:
            raise r.fail(
                key,
                f"{name!r} forges a DNS answer or serves a blockpage: only an episode's main"
                " method can",
            )
        if not any(info.https if u.startswith("https:") else info.http for u in urls):
            raise r.fail(key, f"{name!r} acts on no URL of {platform!r} the scenario measures")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < 1:
            raise r.fail(key, "expected a share between 0 and 1 (exclusive)")
        out.append((name, float(weight)))
    if sum(w for _, w in out) >= 1.0:
        raise r.fail("mix", "the shares add up to 1 or more: nothing is left for the main method")
    return tuple(out)


def _read_answer(
    r: _Reader, info: MethodInfo, networks: tuple[SimNetwork, ...], asns: tuple[int, ...]
) -> tuple[str, int]:
    if info.answer is None:
        for key in ("answer", "answer_asn"):
            if r.has(key):
                raise r.fail(key, f"{info.name!r} forges no DNS answer")
        return "", 0
    answer = r.get("answer", str, info.answer).strip()
    if not answer:
        raise r.fail("answer", f"{info.name!r} needs the address of the blockpage server")
    try:
        address = ipaddress.ip_address(answer)
    except ValueError:
        raise r.fail("answer", f"{answer!r} is not an IP address") from None
    if address.version != 4:
        raise r.fail("answer", "only IPv4 answers are simulated")
    if info.name == "dns-bogon":
        if not is_bogon(answer):
            raise r.fail("answer", f"{answer} is a public address, not a bogon")
        if r.has("answer_asn"):
            raise r.fail("answer_asn", "a bogon belongs to no AS")
        return answer, 0
    if is_bogon(answer):
        raise r.fail("answer", f'{answer} is a bogon: use method = "dns-bogon"')
    if r.has("answer_asn"):
        return answer, _parse_asn(r, "answer_asn", r.get("answer_asn", (str, int)))
    return answer, asns[0]


def _read_restorations(r: _Reader, start: datetime, end: datetime | None) -> tuple[Interval, ...]:
    raw = r.get("restorations", list, [])
    out: list[Interval] = []
    previous_end = start
    for i, table in enumerate(raw):
        rr = _Reader(r.source, r.key(f"restorations[{i}]"), table)
        rs = rr.time("start")
        re_ = rr.time("end")
        assert rs is not None
        assert re_ is not None
        rr.finish()
        if re_ <= rs:
            raise rr.fail("end", f"{format_time(re_)} is not after start ({format_time(rs)})")
        if rs <= start or (end is not None and re_ >= end):
            raise rr.fail(
                "start" if rs <= start else "end",
                f"a restoration must lie inside its episode ({format_time(start)} to"
                f" {format_time(end) or 'open end'})",
            )
        if rs < previous_end:
            raise rr.fail("start", "restorations must be in time order and must not overlap")
        out.append(Interval(rs, re_))
        previous_end = re_
    return tuple(out)


def _check_overlaps(source: str, episodes: tuple[Episode, ...]) -> None:
    """Two episodes of the same kind and platform may not act on one network at once."""
    for j, b in enumerate(episodes):
        for a in episodes[:j]:
            if a.platform != b.platform or not set(a.networks) & set(b.networks):
                continue
            a_end = a.end or datetime.max.replace(tzinfo=UTC)
            b_end = b.end or datetime.max.replace(tzinfo=UTC)
            if a.start < b_end and b.start < a_end:
                shared = ", ".join(f"AS{n}" for n in sorted(set(a.networks) & set(b.networks)))
                raise SimScenarioError(
                    source,
                    f"episode[{j}]",
                    f"overlaps episode[{episodes.index(a)}] on {shared} for {a.platform!r}:"
                    " split the networks or the times",
                )


def parse_sim_scenario(data: Mapping[str, Any], *, source: str, name: str) -> SimScenario:
    """A SimScenario from parsed TOML; SimScenarioError on any problem."""
    r = _Reader(source, "", dict(data))
    name = r.get("name", str, name)
    description = r.get("description", str, "")
    country = r.require("country", str)
    if len(country) != 2 or not country.isalpha() or not country.isupper():
        raise r.fail("country", f"{country!r} is not a two-letter upper-case country code")
    start = r.time("start")
    assert start is not None
    days = r.integer("days", 90, 1, 3660)
    probes = r.integer("probes", 200, 1, 1_000_000)
    urls = _read_urls(r)
    density = _read_density(source, r.get("density", dict), urls) if r.has("density") else None
    r.used.add("density")
    raw_networks = r.require("network", list)
    if not raw_networks:
        raise r.fail("network", "a scenario needs at least one [[network]]")
    networks = tuple(
        _read_network(source, i, t, density=density is not None) for i, t in enumerate(raw_networks)
    )
    seen: set[int] = set()
    for i, network in enumerate(networks):
        if network.asn in seen:
            raise SimScenarioError(source, f"network[{i}].asn", f"AS{network.asn} is listed twice")
        seen.add(network.asn)
    behaviour = _read_behaviour(source, r.get("behaviour", dict, {}), density=density is not None)
    default_rate = 0.005 if density is None else density.parameters()["stray_anomaly_rate"]
    rate, kinds = _read_baseline(source, r.get("baseline", dict, {}), default_rate)
    window = Interval(start, start + timedelta(days=days))
    episodes = tuple(
        _read_episode(source, i, t, networks, urls, window)
        for i, t in enumerate(r.get("episode", list, []))
    )
    r.finish()
    _check_overlaps(source, episodes)
    return SimScenario(
        name=name,
        country=country,
        start=start,
        networks=networks,
        description=description,
        source=source,
        days=days,
        probes=probes,
        urls=urls,
        behaviour=behaviour,
        false_positive_rate=rate,
        false_positive_kinds=kinds,
        episodes=episodes,
        density=density,
    )


def load_sim_scenario(path: str | Path) -> SimScenario:
    """Read and check a scenario file."""
    source, data = read_toml(path, SimScenarioError)
    return parse_sim_scenario(data, source=source, name=Path(path).stem)


def shipped_sim_scenarios() -> list[Path]:
    """The scenario files that come with blockproof, sorted by name."""
    folder = resources.files("blockproof.simulate") / "scenarios"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml"))


def resolve_sim_scenario(name_or_path: str | Path) -> SimScenario:
    """Load a scenario file, or the shipped scenario of that name (``.toml`` optional)."""
    path = Path(name_or_path)
    if path.is_file():
        return load_sim_scenario(path)
    stem = str(name_or_path).removesuffix(".toml")
    shipped = shipped_sim_scenarios()
    for candidate in shipped:
        if candidate.stem == stem:
            return load_sim_scenario(candidate)
    names = ", ".join(p.stem for p in shipped) or "(none)"
    raise SimScenarioError(
        str(name_or_path),
        "",
        f"no such file, and no shipped scenario of that name; shipped: {names}",
    )
