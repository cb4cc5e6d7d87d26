"""Bogon addresses: addresses no public site should resolve to (OONI netxlite/bogon.go).

A DNS answer that is a bogon is censorship evidence (or a misconfigured site);
the control server never dials one (no SSRF into private networks).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
    )
)
_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


@lru_cache(maxsize=4096)
def is_bogon(address: str) -> bool:
    """True for private, reserved, loopback, link-local and documentation addresses.

    Anything that does not parse as an IP address is treated as a bogon (never dial it).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in net for net in _V4)
    if ip.sixtofour is not None:
        return is_bogon(str(ip.sixtofour))
    if ip.teredo is not None:
        return is_bogon(str(ip.teredo[1]))
    return any(ip in net for net in _V6)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
