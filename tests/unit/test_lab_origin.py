"""The lab's origins, pure part: which answer a request gets (paths, redirects, the probe's
view, extra headers) and how a large body is generated (exact length, streamed)."""

from __future__ import annotations

from typing import Any

import pytest

from blockproof.lab import origin
from blockproof.lab.internet import Host
from blockproof.lab.scenario import parse_scenario


def _host(**keys: Any) -> Host:
    scenario = parse_scenario(
        {"host": [{"name": "site.example", "addresses": ["192.0.2.7"], **keys}]},
        source="t.toml",
        name="t",
    )
    host = scenario.host("site.example")
    assert host is not None
    return host


def _answer(host: Host, target: str = "/", scheme: str = "http", *, probe: bool = False) -> Any:
    status, headers, body = origin.respond(host, scheme, target, {}, probe=probe)
    head = {k.decode().lower(): v.decode() for k, v in headers}
    data = body if isinstance(body, bytes) else b"".join(body.chunks())
    return status, head, data


CHAIN = {"path": [{"path": f"/redirect/{n}", "location": f"/redirect/{n - 1}"}
                  for n in range(1, 16)] + [{"path": "/redirect/0", "status": 200,
                                             "title": "End"}]}  # fmt: skip

# (id, host keys, target, scheme, probe, status, location or None, text in the body or None)
ANSWERS: list[tuple[str, dict[str, Any], str, str, bool, int, str | None, str | None]] = [
    ("plain page", {}, "/", "http", False, 200, None, "<title>site.example</title>"),
    ("exact body", {"body": "hello"}, "/", "https", False, 200, None, "hello"),
    ("chain step", CHAIN, "/redirect/15", "http", False, 302, "/redirect/14", None),
    ("chain end", CHAIN, "/redirect/0", "https", False, 200, None, "<title>End</title>"),
    ("unlisted path falls back", CHAIN, "/other", "http", False, 200, None, "site.example"),
    ("path with query", {"path": [{"path": "/a?b=1", "location": "/c", "status": 308}]},
     "/a?b=1", "http", False, 308, "/c", None),
    ("path for https only, asked over http",
     {"path": [{"path": "/s", "scheme": "https", "location": "/t"}]}, "/s", "http", False,
     200, None, "site.example"),
    ("path for https only", {"path": [{"path": "/s", "scheme": "https", "location": "/t"}]},
     "/s", "https", False, 302, "/t", None),
    ("broken location sent as is", {"path": [{"path": "/b", "location": "http://"}]},
     "/b", "http", False, 302, "http://", None),
    ("path before the host redirect",
     {"redirect_http": "https://site.example/", "path": [{"path": "/x", "status": 404}]},
     "/x", "http", False, 404, None, None),
    ("host redirect elsewhere", {"redirect_http": "https://site.example/"}, "/y", "http",
     False, 301, "https://site.example/", None),
    ("control sees the site", {"probe": {"status": 503, "title": "Just a moment...",
                                         "body": "<title>Just a moment...</title>"}},
     "/", "https", False, 200, None, "<title>site.example</title>"),
    ("probe sees the captcha", {"probe": {"status": 503, "title": "Just a moment...",
                                          "body": "<title>Just a moment...</title>"}},
     "/", "https", True, 503, None, "Just a moment..."),
    ("probe view replaces the paths",
     {"path": [{"path": "/b", "location": "http://www.example.com/"}],
      "probe": {"location": "http://"}}, "/b", "http", True, 302, "http://", None),
    ("control follows the path", {"path": [{"path": "/b", "location": "http://www.example.com/"}],
                                  "probe": {"location": "http://"}},
     "/b", "http", False, 302, "http://www.example.com/", None),
    ("probe redirect_http only", {"probe": {"redirect_http": "http://blocked.example/"}}, "/",
     "http", True, 301, "http://blocked.example/", None),
    ("probe view title only", {"probe": {"title": "Other"}}, "/", "http", True, 200, None,
     "<title>Other</title>"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("keys", "target", "scheme", "probe", "status", "location", "text"),
    [case[1:] for case in ANSWERS],
    ids=[case[0] for case in ANSWERS],
)
def test_answers(
    keys: dict[str, Any],
    target: str,
    scheme: str,
    probe: bool,
    status: int,
    location: str | None,
    text: str | None,
) -> None:
    got_status, headers, body = _answer(_host(**keys), target, scheme, probe=probe)
    assert got_status == status
    assert headers.get("location") == location
    if text is not None:
        assert text.encode() in body


def test_extra_headers_replace_and_add() -> None:
    host = _host(headers={"Server": "cloudflare", "CF-RAY": "68013f3b0c7d498b"},
                 probe={"headers": {"CF-Mitigated": "challenge"}})  # fmt: skip
    _, control, _ = _answer(host)
    assert control["server"] == "cloudflare"
    assert control["cf-ray"] == "68013f3b0c7d498b"
    assert "cf-mitigated" not in control
    _, probe, _ = _answer(host, probe=True)
    assert probe["cf-mitigated"] == "challenge"
    assert probe["server"] == "cloudflare"


@pytest.mark.parametrize("size", [(1 << 20) + 1, 3 << 20, (1 << 20) + 17 * origin.STREAM_CHUNK])
def test_large_pages_are_streamed_with_their_exact_length(size: int) -> None:
    host = _host(body_bytes=size, title="Large")
    _, _, body = origin.respond(host, "http", "/", {})
    assert isinstance(body, origin.Stream)
    assert body.length == size
    chunks = list(body.chunks())
    assert max(len(c) for c in chunks) < 2 * origin.STREAM_CHUNK
    data = b"".join(chunks)
    assert len(data) == size
    assert data.startswith(b"<!doctype html>")
    assert b"<title>Large</title>" in data[:200]
    assert data.endswith(b"</body></html>\n")
    assert b"".join(body.chunks()) == data  # deterministic


def test_small_pages_are_kept_whole() -> None:
    _, _, body = origin.respond(_host(body_bytes=origin.STREAM_THRESHOLD), "http", "/", {})
    assert isinstance(body, bytes)
