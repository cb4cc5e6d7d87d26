"""The input of the Web Connectivity classifier: what the probe saw, and what the control saw.

``WebObservations`` gathers the records of one Web Connectivity measurement
(``blockproof.model.observations``) together with the control (test-helper)
response. It is pure data: ``blockproof.codec.ooni`` builds it from OONI
``test_keys`` and ``blockproof.core.webconnectivity.analyze`` classifies it.

``requests`` are in time order, first request first (OONI writes them in
reverse time order on the wire: the codec turns them around). ``control`` is
``None`` when the control is unavailable; ``control_failure`` then says why
(a df-007 string such as ``connection_reset``), if known.
"""

from __future__ import annotations

from dataclasses import dataclass

from blockproof.model.control import ControlResponse
from blockproof.model.observations import DNSQuery, HTTPTransaction, TCPConnect, TLSHandshake


@dataclass(frozen=True, slots=True, kw_only=True)
class WebObservations:
    input: str  # the measured URL
    queries: tuple[DNSQuery, ...] = ()
    tcp_connect: tuple[TCPConnect, ...] = ()
    tls_handshakes: tuple[TLSHandshake, ...] = ()
    requests: tuple[HTTPTransaction, ...] = ()  # time order: first request first
    control: ControlResponse | None = None
    control_failure: str | None = None
