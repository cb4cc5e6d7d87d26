"""The probe's side of the test-helper protocol: POST a THRequest, read a THResponse.

Goes through the probe's own network (so a censor that blocks the control is
seen as ``control_failure``, as in OONI) and works against OONI's public
helpers as well as ours.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from urllib.parse import urlsplit

from blockproof.codec.ooni import DecodeError, control_request_to_json, control_response_from_json
from blockproof.core.http import USER_AGENT
from blockproof.model.control import ControlRequest, ControlResponse
from blockproof.model.failure import Failure, unknown_failure
from blockproof.model.observations import HTTPRequest
from blockproof.netx.endpoint import Timeouts, measure_endpoint, url_port
from blockproof.netx.failures import NetworkFailure, classify, unexpected_failure
from blockproof.netx.network import Network
from blockproof.netx.trace import Recorder

CONTROL_BUDGET = 30.0


async def query_control(
    network: Network,
    control_url: str,
    request: ControlRequest,
    *,
    ca_file: str | None = None,
    budget: float = CONTROL_BUDGET,
    connect_timeouts: Timeouts | None = None,
) -> tuple[ControlResponse | None, str | None]:
    """(response, None) on success, (None, failure string) otherwise; never raises.

    ``connect_timeouts`` bound reaching the control (DNS, TCP, TLS; by default the
    probe's usual budgets); ``budget`` bounds the whole exchange, the control's own
    measurement included.
    """
    try:
        return await _query_control(
            network, control_url, request, ca_file=ca_file, budget=budget,
            connect_timeouts=connect_timeouts,
        )  # fmt: skip
    except Exception as exc:  # a bug or an error nobody expected: this step's failure
        return None, unexpected_failure(exc)


async def _query_control(
    network: Network,
    control_url: str,
    request: ControlRequest,
    *,
    ca_file: str | None,
    budget: float,
    connect_timeouts: Timeouts | None,
) -> tuple[ControlResponse | None, str | None]:
    recorder = Recorder()
    parts = urlsplit(control_url)
    host = parts.hostname or ""
    body = json.dumps(control_request_to_json(request), separators=(",", ":"))
    http_request = HTTPRequest(
        method="POST",
        url=control_url,
        headers_list=(
            ("Host", parts.netloc),
            ("User-Agent", USER_AGENT),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ),
        body=body,
    )
    reach = connect_timeouts or Timeouts()
    timeouts = Timeouts(
        dns=min(reach.dns, budget), tcp=min(reach.tcp, budget), tls=min(reach.tls, budget),
        http=budget,
    )  # fmt: skip
    try:
        async with asyncio.timeout(budget):
            try:
                addresses = [str(ipaddress.ip_address(host))]
            except ValueError:
                addresses = await network.getaddrinfo(host)
            if not addresses:
                raise NetworkFailure(Failure.DNS_NO_ANSWER)
            result = await measure_endpoint(
                network, recorder, addresses[0], url_port(control_url), server_name=host,
                use_tls=parts.scheme == "https", request=http_request, timeouts=timeouts,
                ca_file=ca_file, record=False,
            )  # fmt: skip
    except (OSError, TimeoutError, NetworkFailure) as exc:
        return None, classify(exc)
    failure = result.tcp.failure or (result.tls.failure if result.tls else None)
    if failure is not None:
        return None, failure
    txn = result.http
    if txn is None or txn.response is None:
        return None, (txn.failure if txn else None) or Failure.EOF
    if txn.response.code != 200:
        return None, unknown_failure(f"control server returned status {txn.response.code}")
    try:
        return control_response_from_json(json.loads(txn.response.body)), None
    except (ValueError, DecodeError) as exc:
        return None, unknown_failure(f"malformed control response: {exc}"[:200])
