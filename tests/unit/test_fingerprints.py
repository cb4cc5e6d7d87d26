"""The fingerprint matcher on real blockpages, real OONI measurements and edge cases.

Recognition of real blockpages (tests/data/blockpages/http, Citizen Lab's captures):
128 of the 137 bodies match at least one blocking fingerprint (scope other than
``fp``/``injb``) of the upstream databases, from the body alone; 93 of them match
the fingerprint named after the page itself. The nine misses, each checked by hand
(``MISSES`` below), are not matcher errors: the upstream fingerprint of the page is
a header one (which a saved body cannot show), or it no longer fits the capture, or
the capture is empty. No fingerprint was derived from these pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blockproof.codec.jsonl import iter_json_objects
from blockproof.verdict.fingerprints import (
    Fingerprint,
    FingerprintDB,
    _citizenlab_http_row,
    _required_literal,
    confirms,
    is_blocking,
    load_fingerprints,
)

TESTS = Path(__file__).parent.parent
PAGES = sorted((TESTS / "data" / "blockpages" / "http").glob("*.html"))
OONI = TESTS / "data" / "ooni"
VENDORED = TESTS.parent / "src" / "blockproof" / "data" / "fingerprints"

# page -> why no blocking fingerprint matches its body
MISSES = {
    "isp_gb_talktalk_optinporn_block.html": "its pattern ends in '?originalURL=' (the redirect"
    " URL); the page has 'parental-controls.html&amp;' instead",
    "isp_kr_lg_cleanweb_forward.html": "a meta-refresh page; its fingerprint is a Location"
    " header one",
    "isp_ru_kaspnet_block.html": "the capture is empty (0 bytes)",
    "isp_ru_orionnet_block.html": "ooni.ru_8 expects the title 'ДОСТУП ЗАПРЕЩЕН'; this"
    " version of the page says 'БЛОКИРОВКА'",
    "isp_ru_planeta_block.html": 'the expected <h1 class="HeaderTitle"> is not in the capture',
    "isp_ru_westcall_forward_1.html": "its fingerprint (ooni.ru_33) is a Location header one",
    "isp_ru_yota_block.html": "a fragment saying 'Доступ запрещен'; the fingerprints expect"
    " 'Доступ ограничен' or a Location header",
    "nat_th_ictprohibit_block.html": "ooni.th_5 is a piece of a base64 text of the page, not"
    " of its bytes",
    "prod_olfeo.html": "its fingerprint (ooni.fr_2) is a Server header one",
}


@pytest.fixture(scope="module")
def db() -> FingerprintDB:
    return FingerprintDB.default()


def names(found: list[Fingerprint]) -> list[str]:
    return [f.name for f in found]


# --------------------------------------------------------------------------------------
# real blockpages


def test_at_least_128_of_the_137_real_blockpages_are_recognised(db: FingerprintDB) -> None:
    assert len(PAGES) == 137
    recognised = {
        p.name for p in PAGES if any(map(is_blocking, db.match_http(body=p.read_bytes())))
    }
    assert len(recognised) >= 128
    assert {p.name for p in PAGES} - recognised == set(MISSES)


def test_most_blockpages_match_the_fingerprint_named_after_them(db: FingerprintDB) -> None:
    own = 0
    for page in PAGES:
        mine = "cl." + page.stem
        found = db.match_http(body=page.read_bytes())
        own += any(f.name == mine or mine in f.other_names for f in found)
    assert own >= 90


def test_pages_in_their_country_are_confirmed(db: FingerprintDB) -> None:
    page = (TESTS / "data" / "blockpages" / "http" / "prod_iserv_blockpage.html").read_bytes()
    [found] = [f for f in db.match_http(body=page) if is_blocking(f)]
    assert (found.name, found.scope, found.expected_countries) == ("ooni.de_2", "inst", ("DE",))
    assert confirms(found, "DE")
    assert confirms(found, "de")
    assert not confirms(found, "FR")
    assert not confirms(found)


def test_the_automaton_and_the_fallback_agree(db: FingerprintDB) -> None:
    fallback = FingerprintDB(db.fingerprints, automaton=False)
    for page in PAGES:
        body = page.read_bytes()
        assert fallback.match_http(body=body) == db.match_http(body=body), page.name


def test_text_and_bytes_bodies_give_the_same_matches(db: FingerprintDB) -> None:
    page = (TESTS / "data" / "blockpages" / "http" / "isp_pk_nayatel_block_optin.html").read_bytes()
    as_bytes = db.match_http(body=page)
    assert "ooni.pk_2" in names(as_bytes)  # Nayatel Safeweb (Pakistan)
    assert db.match_http(body=page.decode("utf-8")) == as_bytes


# --------------------------------------------------------------------------------------
# DNS


@pytest.mark.parametrize(
    ("answer", "name"),
    [
        ("10.10.34.34", "ooni.ir_4"),  # Iran's national filter, first address
        ("10.10.34.35", "ooni.ir_5"),
        ("10.10.34.36", "ooni.ir_10dot10_ipv4_1"),
        (" 10.10.34.36 ", "ooni.ir_10dot10_ipv4_1"),
        ("203.82.48.83", "ooni.pk_3"),  # Nayatel Surf Safely (Pakistan)
        ("203.82.48.86", "ooni.pk_4"),  # Nayatel Safeweb (Pakistan)
        ("195.175.254.2", "ooni.tr_6"),  # the TR answer of OONI's own unit test
    ],
)
def test_dns_answers(db: FingerprintDB, answer: str, name: str) -> None:
    [found] = db.match_dns([answer])
    assert (found.name, found.location, found.pattern_type) == (name, "dns", "full")
    assert confirms(found)


def test_dns_names_and_ipv6_are_compared_in_canonical_form(db: FingerprintDB) -> None:
    ipv6 = next(f for f in db.fingerprints if f.location == "dns" and ":" in f.pattern)
    exploded = ipaddress.ip_address(ipv6.pattern).exploded.upper()  # d0::11 -> 00D0:0000:...
    assert exploded != ipv6.pattern
    assert names(db.match_dns([exploded])) == [ipv6.name]
    cname = next(f for f in db.fingerprints if f.location == "dns" and f.pattern[0].isalpha())
    assert cname.name in names(db.match_dns([cname.pattern.upper() + "."]))


def test_ordinary_and_malformed_dns_answers_match_nothing(db: FingerprintDB) -> None:
    assert db.match_dns(["93.184.216.34", "2606:2800:220:1::", "", "example.org"]) == []
    assert db.match_dns([None, 5]) == []  # type: ignore[list-item]


def test_bogus_replies_are_blocking_but_not_attributable(db: FingerprintDB) -> None:
    found = db.match_dns(["0.0.0.0"])
    assert found
    assert all(is_blocking(f) and not confirms(f, "BR") for f in found)


# --------------------------------------------------------------------------------------
# real OONI measurements: the answers, bodies and headers of their test_keys


def _maybe_binary(value: Any) -> bytes | str | None:
    if isinstance(value, dict) and value.get("format") == "base64":
        try:
            return base64.b64decode(str(value.get("data", "")))
        except binascii.Error:
            return None  # web_connectivity_b64_incorrect.json: altered by OONI on purpose
    return value if isinstance(value, str | bytes) else None


def _headers(response: dict[str, Any]) -> Iterator[tuple[str, str]]:
    pairs = response.get("headers_list") or list((response.get("headers") or {}).items())
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            value = _maybe_binary(pair[1])
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if isinstance(pair[0], str) and isinstance(value, str):
                yield pair[0], value


def ooni_matches(db: FingerprintDB, test_keys: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for query in test_keys.get("queries") or []:
        answers = [
            a.get("ipv4") or a.get("ipv6") or a.get("hostname") for a in query["answers"] or []
        ]
        found += names(db.match_dns(a for a in answers if a))
    for request in test_keys.get("requests") or []:
        response = request.get("response") or {}
        body = _maybe_binary(response.get("body"))
        found += names(db.match_http(body=body, headers=list(_headers(response))))
    return found


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # OONI's fastpath unit tests (ooni/backend fastpath/tests/test_unit.py) assert these
        ("fastpath-testdata/web_connectivity_ir_fp.json", ["ooni.ir_10dot10_ipv4_1"]),
        ("fastpath-testdata/bug_352.json", ["ooni.ir_10dot10_ipv4_1"]),
        # archive.org answers 302 to lamanlabuh.aduankonten.id, Kominfo's blockpage; the
        # blockpage itself (the second response) matches no body fingerprint
        (
            "fastpath-testdata/20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json",
            ["ooni.id_lamanlabuh_kominfo"],
        ),
        # AU, feminist.org: a 307 to a Check Point UserCheck portal (a filtering product,
        # in a base64 Location header). OONI's fastpath reports no match (its unit test)
        # because it implements only `full` and `prefix` on headers, not `contains`
        (
            "fastpath-testdata/web_connectivity_b64_hdr.json",
            ["cl.prod_checkpoint_urlfilter_forward"],
        ),
    ],
)
def test_real_ooni_measurements(db: FingerprintDB, path: str, expected: list[str]) -> None:
    [measurement] = iter_json_objects(OONI / path)
    assert ooni_matches(db, measurement["test_keys"]) == expected


def test_a_filtering_product_is_recognised_but_not_confirmed(db: FingerprintDB) -> None:
    [measurement] = iter_json_objects(OONI / "fastpath-testdata/web_connectivity_b64_hdr.json")
    [name] = ooni_matches(db, measurement["test_keys"])
    fp = by_name(db, name)
    assert (fp.scope, fp.location, fp.expected_countries) == ("prod", "header.location", ())
    assert is_blocking(fp)
    assert not confirms(fp, measurement["probe_cc"])  # nor would OONI: prod, no country


def test_uncensored_real_measurements_match_no_blocking_fingerprint(db: FingerprintDB) -> None:
    """The hand-run IT measurements of probe-cli (youtube, firefox.com, ...) are
    uncensored: what they match is only known false positives (e.g. YouTube's page)."""
    matched = 0
    for path in sorted((OONI / "probe-cli-real").glob("*.measurement.json*")):
        for measurement in iter_json_objects(path):
            found = ooni_matches(db, measurement["test_keys"])
            fps = [f for f in db.fingerprints if f.name in found and f.location != "dns"]
            assert all(f.scope == "fp" for f in fps), (path.name, found)
            matched += bool(found)
    assert matched >= 3  # the fp-scope rows are exercised, not merely absent


# --------------------------------------------------------------------------------------
# scopes and confirmation


def by_name(db: FingerprintDB, name: str) -> Fingerprint:
    return next(f for f in db.fingerprints if f.name == name and f.location != "dns")


@pytest.mark.parametrize(
    ("name", "probe_cc", "blocking", "confirmed"),
    [
        ("ooni.pk_2", None, True, True),  # isp: in any country (OONI)
        ("cp.b_nat_pak_isp_common_blockpage", None, True, True),  # nat, no country listed
        ("ooni.es_1", "PK", True, True),  # inst, PK is an expected country
        ("ooni.es_1", "DE", True, False),  # inst elsewhere
        ("ooni.es_1", None, True, False),  # inst, country unknown
        ("ooni.es_1", "ZZ", True, False),  # OONI's unknown country never matches
        ("cp.f_gen_access_denied", "US", True, False),  # vbw "Access Denied"
        ("cp.fp_x_cloudflare_error_1", None, False, False),  # fp
        ("cl.injb_routerupdate", None, False, False),  # injb
    ],
)
def test_confirmation_follows_ooni_fastpath(
    db: FingerprintDB, name: str, probe_cc: str | None, blocking: bool, confirmed: bool
) -> None:
    fp = by_name(db, name)
    assert is_blocking(fp) is blocking
    assert confirms(fp, probe_cc) is confirmed


def test_fp_and_injb_never_confirm_even_in_an_expected_country() -> None:
    for scope in ("fp", "injb"):
        fp = Fingerprint("x", "ooni", scope, "body", "contains", "x", expected_countries=("IT",))
        assert not confirms(fp, "IT")
    assert confirms(Fingerprint("x", "ooni", "bogus", "body", "contains", "x", ("IT",)), "IT")


def test_a_body_matching_only_a_false_positive_does_not_confirm(db: FingerprintDB) -> None:
    body = b"<html><body><p>Please wait.</p><p>Ray ID: 7d2f0c1b2a3e4f50</p></body></html>"
    found = db.match_http(body=body)
    assert names(found) == ["cp.fp_x_cloudflare_error_1"]
    assert found[0].scope == "fp"
    assert not confirms(found[0], "IT")


def test_a_plain_page_matches_nothing(db: FingerprintDB) -> None:
    page = (
        b"<!doctype html><html><head><title>Example Domain</title>"
        b'<meta charset="utf-8"></head><body><div><h1>Example Domain</h1>'
        b"<p>This domain is for use in illustrative examples in documents.</p>"
        b'<p><a href="https://www.iana.org/domains/example">More information...</a></p>'
        b"</div></body></html>"
    )
    headers = [("Server", "ECS (dcb/7F83)"), ("Location", "https://www.example.org/")]
    assert db.match_http(body=page, headers=headers) == []
    assert db.match_http(body=None) == []
    assert db.match_http(body="") == []
    assert db.match_http(body=b"", headers=[("Location", {"format": "base64"})]) == []  # type: ignore[list-item]


# --------------------------------------------------------------------------------------
# pattern types and locations


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Location", "http://lamanlabuh.aduankonten.id/?u=x")], "ooni.id_lamanlabuh_kominfo"),
        ([("lOcAtIoN", "http://lamanlabuh.aduankonten.id")], "ooni.id_lamanlabuh_kominfo"),
        # prefix: only at the start of the value
        ([("Location", "http://example.org/?next=http://lamanlabuh.aduankonten.id")], None),
        ([("Server", "SonicWALL")], "ooni.br_1"),  # full
        ([("Server", "SonicWALL 2")], None),  # full: the whole value only
        ([("X-Server", "SonicWALL")], None),  # another header
        ([("Server", "Protected by WireFilter 8000")], "ooni.ae_0"),
    ],
)
def test_header_fingerprints(
    db: FingerprintDB, headers: list[tuple[str, str]], expected: str | None
) -> None:
    found = names(db.match_http(body=b"", headers=headers))
    if expected is None:
        assert [n for n in found if n.startswith("ooni.")] == []
    else:
        assert expected in found


def test_regexp_fingerprints_do_not_cross_lines(db: FingerprintDB) -> None:
    drweb = by_name(db, "cp.a_prod_drweb_3")
    assert (drweb.pattern_type, drweb.pattern) == ("regexp", "URL .* Sp.*er Gate")
    assert drweb in db.match_http(body=b"<p>URL http://x.org/ is blocked by SpIDer Gate</p>")
    assert drweb not in db.match_http(body=b"<p>URL http://x.org/\nis blocked by SpIDer Gate</p>")


def test_regexps_without_a_trigger_still_run() -> None:
    grouped = Fingerprint("t.grouped", "ooni", "nat", "body", "regexp", "(ab|cd)+ef")
    literal = Fingerprint("t.literal", "ooni", "nat", "body", "contains", "zz")
    db = FingerprintDB([grouped, literal])
    assert names(db.match_http(body=b"--cdabef--")) == ["t.grouped"]
    assert names(db.match_http(body=b"--zz--")) == ["t.literal"]
    assert db.match_http(body=b"--ef--") == []


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("URL .* Sp.*er Gate", "er Gate"),
        (r"Set-Cookie:.*domain=\.", "Set-Cookie:"),
        (r"<span style=.*color:red;.*>\(x", "<span style="),
        ('{"msg":.*"id":', '{"msg":'),
        ("ab?cd", None),  # b is optional: no literal of 3
        ("abc{1,3}defg", "defg"),
        ("(ab|cd)ef", None),
        (r"\d\dabc", "abc"),
    ],
)
def test_regexp_triggers(pattern: str, literal: str | None) -> None:
    assert _required_literal(pattern) == literal


def test_citizen_lab_header_annotations_are_normalised() -> None:
    row = {
        "name": "nat_th_deb_forward_1",
        "pattern": "Location: http://103.208.24.21",
        "location_found": "header",
        "scope": "nat",
        "expected_countries": "['TH']",
        "confidence_no_fp": "7",
    }
    fp = _citizenlab_http_row(row)
    assert fp is not None
    assert (fp.name, fp.location, fp.pattern_type, fp.pattern) == (
        "cl.nat_th_deb_forward_1",
        "header.location",
        "prefix",
        "http://103.208.24.21",
    )
    assert fp.expected_countries == ("TH",)
    plain = _citizenlab_http_row(row | {"pattern": "blockpage.bt.com"})
    assert plain is not None
    assert (plain.location, plain.pattern_type) == ("header", "contains")
    db = FingerprintDB([plain])
    assert names(db.match_http(body=None, headers=[("X-Redirect", "http://blockpage.bt.com/")]))


# --------------------------------------------------------------------------------------
# the databases


def test_one_name_per_fingerprint_and_citizen_lab_not_duplicated(db: FingerprintDB) -> None:
    # upstream reuses three names across its DNS and HTTP files (ooni.id_39, ooni.th_9,
    # ooni.th_10): names are unique within each kind
    keys = [(f.name, f.location == "dns") for f in db.fingerprints]
    assert len(keys) == len(set(keys))
    ooni_names = {
        n for f in db.fingerprints if f.source == "ooni" for n in (f.name, *f.other_names)
    }
    assert not any(f.name in ooni_names for f in db.fingerprints if f.source == "citizenlab")
    assert len(db.fingerprints) >= 1900
    assert db.skipped == ()  # every upstream regexp compiles
    assert {f.scope for f in db.fingerprints} >= {"nat", "isp", "prod", "inst", "vbw", "fp"}
    assert FingerprintDB.default() is db
    assert load_fingerprints() == db.fingerprints


def test_vendored_files_are_the_upstream_ones() -> None:
    """SOURCES.md records the sha256 of every vendored file; an edit must update it."""
    table = (VENDORED / "SOURCES.md").read_text("utf-8")
    recorded = dict(re.findall(r"`([\w.]+\.csv)`[^\n]*`([0-9a-f]{64})`", table))
    assert set(recorded) == {p.name for p in VENDORED.glob("*.csv")}
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDORED / name).read_bytes()).hexdigest() == digest, name
