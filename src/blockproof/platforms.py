"""Platform profiles: which host names and OONI tests make up a platform.

The profiles are data (``blockproof/data/platforms.toml``); this module loads and
validates them once and answers two questions::

    platform_of_url("https://pbs.twimg.com/media/x.jpg")  # -> "x"
    platform_of_test("whatsapp")                           # -> "whatsapp"

Domains match as suffixes on label boundaries, longest first, so a more specific
domain of one platform wins over a shorter one of another.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

FUNCTIONS = frozenset(
    {"web", "api", "media", "video", "upload", "messaging", "shortener", "static"}
)


class ProfileError(ValueError):
    """A platform profile that does not validate."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    function: str


@dataclass(frozen=True, slots=True)
class Platform:
    id: str
    name: str
    domains: tuple[str, ...]
    tests: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]


def parse_profiles(text: str) -> dict[str, Platform]:
    """Parse and validate profiles TOML; raise ProfileError naming the bad entry."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"platform profiles: {exc}") from exc
    platforms: dict[str, Platform] = {}
    owner: dict[str, str] = {}
    for pid, entry in raw.items():
        if not isinstance(entry, dict):
            raise ProfileError(f"{pid}: expected a table")
        unknown = set(entry) - {"name", "domains", "tests", "endpoints"}
        if unknown:
            raise ProfileError(f"{pid}: unknown keys {sorted(unknown)}")
        name = entry.get("name")
        domains = entry.get("domains", [])
        tests = entry.get("tests", [])
        if not isinstance(name, str) or not name:
            raise ProfileError(f"{pid}: name must be a non-empty string")
        if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
            raise ProfileError(f"{pid}: domains must be a list of host names")
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            raise ProfileError(f"{pid}: tests must be a list of OONI test names")
        for domain in domains:
            if domain != domain.lower().strip(".") or " " in domain:
                raise ProfileError(f"{pid}: domain {domain!r} must be lower-case, no dots at ends")
            if domain in owner:
                raise ProfileError(f"{pid}: domain {domain!r} already belongs to {owner[domain]}")
            owner[domain] = pid
        endpoints: list[Endpoint] = []
        for i, ep in enumerate(entry.get("endpoints", [])):
            if not isinstance(ep, dict) or set(ep) != {"url", "function"}:
                raise ProfileError(f"{pid}.endpoints[{i}]: needs exactly url and function")
            url, function = ep["url"], ep["function"]
            if function not in FUNCTIONS:
                raise ProfileError(f"{pid}.endpoints[{i}]: unknown function {function!r}")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ProfileError(f"{pid}.endpoints[{i}]: not an http(s) URL: {url!r}")
            if _match(parts.hostname, {d: pid for d in domains}) != pid:
                raise ProfileError(f"{pid}.endpoints[{i}]: {url!r} is outside the domains")
            endpoints.append(Endpoint(url=url, function=function))
        platforms[pid] = Platform(
            id=pid,
            name=name,
            domains=tuple(domains),
            tests=tuple(tests),
            endpoints=tuple(endpoints),
        )
    return platforms


@cache
def profiles() -> dict[str, Platform]:
    """The shipped profiles, by id."""
    text = resources.files("blockproof.data").joinpath("platforms.toml").read_text("utf-8")
    return parse_profiles(text)


@cache
def _domain_index() -> dict[str, str]:
    return {d: p.id for p in profiles().values() for d in p.domains}


@cache
def _test_index() -> dict[str, str]:
    return {t: p.id for p in profiles().values() for t in p.tests}


def _match(host: str, index: dict[str, str]) -> str | None:
    host = host.lower().rstrip(".")
    while host:
        if host in index:
            return index[host]
        _, dot, host = host.partition(".")
        if not dot:
            return None
    return None


def platform_of_host(host: str) -> str | None:
    """The platform id a host name belongs to, or None."""
    return _match(host, _domain_index())


def platform_of_url(url: str | None) -> str | None:
    """The platform id of a URL's host (a bare host name is accepted), or None."""
    if not url:
        return None
    host = urlsplit(url).hostname if "://" in url else url.split("/")[0]
    return platform_of_host(host) if host else None


def platform_of_test(test_name: str) -> str | None:
    """The platform an OONI app test measures (``whatsapp`` -> ``whatsapp``), or None."""
    return _test_index().get(test_name)
