"""One ``extract_title`` for the whole project, counting characters as OONI does, and
internationalized host names as they go on the wire."""

from __future__ import annotations

import pytest

import blockproof.control.measure as control_measure
import blockproof.core.webconnectivity as classifier
import blockproof.pipeline.extract as pipeline_extract
import blockproof.simulate.vprobe as simulator
from blockproof.core.http import MAX_TITLE_CHARS, browser_request, extract_title
from blockproof.core.idn import IDNAError, host_to_ascii, url_to_ascii

URDU = "پاکستان"  # 7 characters, 14 UTF-8 bytes
RUSSIAN = "Новости"  # 7 characters, 14 bytes
CHINESE = "新闻"  # 2 characters, 6 bytes
EMOJI = "📰"  # 1 character, 4 bytes


def _chars(word: str, n: int) -> str:
    """Exactly ``n`` characters made of ``word`` repeated."""
    return (word * (n // len(word) + 1))[:n]


TITLE_CASES = [
    (script, n, _chars(word, n))
    for script, word in (("urdu", URDU), ("russian", RUSSIAN), ("chinese", CHINESE),
                         ("emoji", EMOJI), ("latin", "News "))
    for n in (1, 300, 512, 513)
]  # fmt: skip


@pytest.mark.parametrize(
    ("title", "expected"),
    [pytest.param(t, t if n <= MAX_TITLE_CHARS else "", id=f"{s}-{n}") for s, n, t in TITLE_CASES],
)
def test_titles_are_bounded_in_characters_not_bytes(title: str, expected: str) -> None:
    body = f"<html><head><title>{title}</title></head><body>x</body></html>".encode()
    assert extract_title(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"<title>Breaking <b>news</b></title>", "", id="split-by-a-tag"),
        pytest.param(b"<title>a<b</title><TITLE>Second</TITLE>", "Second", id="next-one-taken"),
        pytest.param(
            f"<title>{_chars(URDU, 600)}</title><title>Short</title>".encode(),
            "Short",
            id="too-long-then-short",
        ),
        pytest.param(b"<title></title>", "", id="empty"),
        pytest.param(b"<TiTlE>Mixed Case</tItLe>", "Mixed Case", id="any-case"),
        pytest.param(b"<title>caf\xe9</title>", "caf\ufffd", id="invalid-utf8-is-u+fffd"),
        pytest.param(b"no title at all", "", id="none"),
    ],
)
def test_title_edge_cases(body: bytes, expected: str) -> None:
    assert extract_title(body) == expected


def test_every_part_uses_the_one_title_function() -> None:
    # the probe's classifier, the control server, the pipeline and the simulator
    for module in (classifier, control_measure, pipeline_extract, simulator):
        assert module.extract_title is extract_title, module.__name__


@pytest.mark.parametrize(
    ("host", "ascii_host"),
    [
        ("яндекс.рф", "xn--d1acpjx3f.xn--p1ai"),
        ("Яндекс.рф", "xn--d1acpjx3f.xn--p1ai"),
        ("ЯНДЕКС.РФ", "xn--d1acpjx3f.xn--p1ai"),
        ("پاکستان.پاکستان", "xn--mgbai9azgqp6j.xn--mgbai9azgqp6j"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("straße.de", "xn--strae-oqa.de"),  # UTS 46 non-transitional: ß is kept
        ("Example.COM", "example.com"),
        ("_dmarc.example.com", "_dmarc.example.com"),  # ASCII names are only lowercased
        ("104.244.42.1", "104.244.42.1"),
        ("яндекс.рф.", "xn--d1acpjx3f.xn--p1ai."),
    ],
)
def test_hosts_to_ascii(host: str, ascii_host: str) -> None:
    assert host_to_ascii(host) == ascii_host


def test_an_impossible_name_is_an_input_error() -> None:
    with pytest.raises(IDNAError):
        host_to_ascii("a\u200b\u0000b.рф")


@pytest.mark.parametrize(
    ("url", "ascii_url", "host_header"),
    [
        ("http://яндекс.рф/", "http://xn--d1acpjx3f.xn--p1ai/", "xn--d1acpjx3f.xn--p1ai"),
        ("https://Яндекс.рф:8443/новости?q=1", "https://xn--d1acpjx3f.xn--p1ai:8443/новости?q=1",
         "xn--d1acpjx3f.xn--p1ai:8443"),
        ("https://x.com/", "https://x.com/", "x.com"),
    ],
)  # fmt: skip
def test_urls_keep_everything_but_the_host(url: str, ascii_url: str, host_header: str) -> None:
    assert url_to_ascii(url) == ascii_url
    request = browser_request(url)
    assert request.url == url  # the measurement keeps the input as given
    assert dict(request.headers_list)["Host"] == host_header
    assert all(v.isascii() for _, v in request.headers_list)
