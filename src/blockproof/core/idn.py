"""Internationalized domain names: the one place a name becomes what goes on the wire.

A URL from a test list may name its host in Unicode (``http://яндекс.рф/``,
``https://پاکستان.پاکستان/``) and in any case (``Яндекс.рф``). DNS questions, the TLS
SNI, the HTTP ``Host`` header and the control request need its ASCII form
(IDNA, "punycode": ``xn--d1acpjx3f.xn--p1ai``). The measurement keeps the input URL
as given, as OONI's probe does.

The conversion is UTS #46 non-transitional, what browsers do: case is folded
(``Я`` -> ``я``), ``ß`` stays ``ß``. A name that UTS #46 rejects but IDNA 2003 accepts
(some older registrations) is converted the IDNA 2003 way. ASCII names are only
lowercased: they may carry what IDNA forbids and DNS allows (``_dmarc``, IP literals).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import idna

__all__ = ["IDNAError", "host_to_ascii", "url_to_ascii"]


# what a converted name may hold: DNS labels of letters, digits, '-' and '_'
_ASCII_NAME = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


class IDNAError(ValueError):
    """A host name that no IDNA profile can write in ASCII."""


def host_to_ascii(host: str) -> str:
    """``host`` as it goes on the wire: lowercase ASCII, IDN labels in punycode."""
    if host.isascii():
        return host.lower()
    trailing_dot = host.endswith(".")
    name = host.rstrip(".")
    try:
        ascii_name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        try:
            ascii_name = name.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise IDNAError(f"{host!r} is not a valid internationalized domain name") from exc
    if not _ASCII_NAME.fullmatch(ascii_name):
        raise IDNAError(f"{host!r} is not a valid internationalized domain name")
    return ascii_name + "." if trailing_dot else ascii_name


def url_to_ascii(url: str) -> str:
    """``url`` with its host in ASCII form; the URL unchanged when the host is ASCII."""
    parts = urlsplit(url)
    host = parts.hostname
    if host is None or host.isascii():
        return url
    netloc = host_to_ascii(host)
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
