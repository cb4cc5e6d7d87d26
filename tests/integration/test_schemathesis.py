"""Schemathesis against both public servers, over real sockets on loopback.

Each server's OpenAPI document (``src/blockproof/data/openapi/``, served at
``GET /openapi.json``) drives the generation: valid requests (positive) and
requests that break the schema (negative: wrong types, missing fields, bad
patterns, bodies that are not JSON...). Every answer must be a documented status
with a body matching the documented shape, and none may be a 5xx but the
deliberate 503s. Checks left out: ``positive_data_acceptance``, since some
constraints cannot be written in a schema (a measurement's report_id must be
the one in the URL, a control URL's host must parse), so valid-looking data
can still be refused with a 4xx.

The collector runs on a fresh data directory with an admin token (sent on the
admin endpoints); the control server measures through a network that records
every dial and refuses them all, and the test checks that nothing but the one
public test address was ever dialed. The default run is a modest number of
examples per operation; the ``long`` variant many more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from collector_kit import RecordingNetwork, ServerThread
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from blockproof.collector.app import CollectorApp
from blockproof.control.measure import may_dial
from blockproof.control.server import create_app
from blockproof.ratelimit import RateLimit
from blockproof.serving import ServeLimits, openapi_document
from figures import Figures

pytestmark = pytest.mark.reliability

ADMIN_TOKEN = "schemathesis-admin-token-0123456789"
OFF = RateLimit(rate=0, burst=0)
SHORT, LONG = 12, 150  # examples per operation and mode


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    """The batch body: the generated string as UTF-8 (anything else as its JSON text)."""
    import json

    return (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")


def _schema(name: str, modes: list[GenerationMode], examples: int) -> Any:
    import json

    schema = schemathesis.openapi.from_dict(json.loads(openapi_document(name)))
    schema.config.generation.update(modes=modes, max_examples=examples)
    return schema


BOTH = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
collector_schema = _schema("collector", BOTH, SHORT)
control_schema = _schema("control", BOTH, SHORT)
collector_schema_long = _schema("collector", BOTH, LONG)
control_schema_long = _schema("control", BOTH, LONG)


def _error_body(code: str, detail: str) -> bytes:
    import json

    return json.dumps({"error": code, "detail": detail}).encode()


@pytest.fixture(scope="module")
def collector_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("schemathesis-collector") / "data"
    app = CollectorApp(data, rate_limit=OFF, admin_token=ADMIN_TOKEN)
    options = ServeLimits().uvicorn_options(_error_body)
    with ServerThread(app, lifespan="on", **options) as server:
        _seed(server.url)
        yield server.url


def _seed(url: str) -> None:
    """A few measurements, so reads, receipts, proofs and exports have something to find."""
    from collector_kit import REPORT_ID, measurement

    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(3):
            answer = client.post(
                f"/report/{REPORT_ID}", json={"format": "json", "content": measurement(i)}
            )
            assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def control_server() -> Iterator[tuple[str, RecordingNetwork]]:
    network = RecordingNetwork()
    app = create_app(network, rate_limit=None)
    options = ServeLimits(keep_alive=5).uvicorn_options(
        lambda _c, d: b'{"error": "%s"}' % d.encode()
    )
    with ServerThread(app, lifespan="off", **options) as server:
        yield server.url, network
    # Nothing but the one public test address may ever have been dialed.
    assert all(may_dial(ip) for ip, _port in network.dialed), network.dialed


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()

    def add(self, status: int) -> None:
        self.statuses[status] += 1

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def count(self, low: int, high: int) -> int:
        return sum(n for s, n in self.statuses.items() if low <= s < high)


@pytest.fixture
def tally(request: pytest.FixtureRequest, figures: Figures) -> Iterator[Tally]:
    found = Tally()
    yield found
    server = "collector" if "collector" in request.node.name else "control"
    operation = request.node.name.split("[", 1)[-1].rstrip("]")
    deliberate = found.statuses[503]
    figures.add(
        "bad_inputs",
        server=server,
        tool="schemathesis",
        operation=operation,
        modes="positive+negative",
        requests=found.requests,
        status_2xx=found.count(200, 300),
        status_4xx=found.count(400, 500),
        status_5xx=found.count(500, 600) - deliberate,
        status_503=deliberate,
    )
    assert found.requests > 0


def _headers(case: Any) -> dict[str, str] | None:
    """The admin token on admin calls, unless this case deliberately breaks the headers."""
    headers = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    if headers is not None and headers.mode is GenerationMode.NEGATIVE:
        return None
    if case.path.startswith("/admin/"):
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return None


def _run(case: Any, base_url: str, tally: Tally) -> None:
    response = case.call(base_url=base_url, headers=_headers(case), timeout=60)
    tally.add(response.status_code)
    assert response.status_code < 500 or response.status_code == 503, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    )
    case.validate_response(
        response, excluded_checks=[positive_data_acceptance], headers=_headers(case)
    )


SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@collector_schema.parametrize()
@SETTINGS
def test_collector_schemathesis(case: Any, collector_url: str, tally: Tally) -> None:
    _run(case, collector_url, tally)


@control_schema.parametrize()
@SETTINGS
def test_control_schemathesis(
    case: Any, control_server: tuple[str, RecordingNetwork], tally: Tally
) -> None:
    _run(case, control_server[0], tally)


@pytest.mark.long
@collector_schema_long.parametrize()
@settings(SETTINGS, derandomize=False)
def test_collector_schemathesis_long(case: Any, collector_url: str, tally: Tally) -> None:
    _run(case, collector_url, tally)


@pytest.mark.long
@control_schema_long.parametrize()
@settings(SETTINGS, derandomize=False)
def test_control_schemathesis_long(
    case: Any, control_server: tuple[str, RecordingNetwork], tally: Tally
) -> None:
    _run(case, control_server[0], tally)


def test_each_server_serves_its_document(
    collector_url: str, control_server: tuple[str, RecordingNetwork]
) -> None:
    for url, name in ((collector_url, "collector"), (control_server[0], "control")):
        answer = httpx.get(url + "/openapi.json", timeout=10)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.content == openapi_document(name)
        assert answer.json()["openapi"].startswith("3.")


def test_every_route_is_documented() -> None:
    """The collector's routes and the document's paths are the same set."""
    import json

    paths = set(json.loads(openapi_document("collector"))["paths"])
    assert paths == {
        "/report", "/report/{report_id}", "/report/{report_id}/close", "/measurements",
        "/measurements/{uid}", "/measurements/{uid}/receipt", "/log/tree-head",
        "/log/consistency", "/health", "/openapi.json", "/admin/export", "/admin/stats",
    }  # fmt: skip
    assert set(json.loads(openapi_document("control"))["paths"]) == {"/", "/openapi.json"}
