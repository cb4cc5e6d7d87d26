"""Blockpage and DNS fingerprints of censors: OONI's database and Citizen Lab's.

Theory of operation
===================

**Data.** ``blockproof/data/fingerprints/`` vendors, unchanged, OONI's
``blocking-fingerprints`` database (``fingerprints_http.csv``,
``fingerprints_dns.csv``) and Citizen Lab's ``filtering-annotations`` (``http.csv``,
``dns.csv``); origins, commits and licences are in the SOURCES.md next to them. OONI's
database already merges Censored Planet's signatures (``cp.*``) and carries Citizen
Lab's annotations, either as rows named ``cl.<name>`` or through ``other_names``. A
Citizen Lab annotation is loaded only when OONI has no row of that name nor lists it
in ``other_names``, so a match reports one canonical name (OONI's), with the others
in ``Fingerprint.other_names``. The files are parsed once per process
(``FingerprintDB.default()`` is cached).

**Where a pattern looks** (``Fingerprint.location``):

* ``dns``: one DNS answer (an address, compared in canonical form, or a CNAME);
* ``body``: the HTTP response body, as bytes (a ``str`` body is encoded as UTF-8,
  as the patterns are);
* ``header.<name>``: the value of each header called ``<name>`` (case-insensitive);
* ``header``: the value of any header. Citizen Lab's generic ``header`` location is
  normalised on load: an annotation written as ``Name: value`` becomes a ``prefix``
  pattern ``value`` on ``header.<name>``; the others stay ``contains`` on ``header``.

``pattern_type`` is ``contains`` (substring), ``prefix`` (start of the value),
``full`` (the whole value) or ``regexp`` (Python ``re`` on bytes, default flags, so
``.`` does not cross a newline). Matching is case-sensitive, as OONI's is.

**Speed.** All the literal patterns of one location go into one Aho-Corasick
automaton (``ahocorasick_rs``, a DFA in Rust), so a body is read once whatever the
number of patterns (about 1,300 for bodies); each pattern found is then checked
against its type (``prefix`` and ``full`` by one comparison). A regular expression
is run only when the longest literal it requires (its *trigger*, extracted on load
and added to the same automaton) occurs in the value; a regexp with no usable
trigger runs on every value. Measured on the 137 real blockpages of the tests:
about 130 MB/s of body, 0.2 s to compile the databases. Without ``ahocorasick_rs``
(it comes with the ``pipeline`` extra) each literal is looked for in turn
(``bytes.__contains__``): the same results at about 3 MB/s, enough for judging a
few measurements, not for a pipeline. (Python's ``re`` is no substitute: one
alternation of 1,300 literals runs below 1 MB/s, as ``sre`` tries them one by one.)

**Confirmation.** A match is evidence of a censor (``confirms``) by OONI's fastpath
rule (``is_confirmed`` in ooni/backend ``fastpath/fastpath/core.py``): the
fingerprint's scope is ``nat`` (national) or ``isp``, or the probe's country is one
of its ``expected_countries``. Without the probe's country, only ``nat`` and ``isp``
confirm (what OONI does for an unknown country). Scopes as the databases define
them: ``nat``, ``isp``, ``prod`` (a filtering product, which may be a school's or a
company's), ``inst`` (an institution), ``vbw`` (a vague blocking word such as
"Access Denied"), ``prov`` (a content provider's geoblock), ``br`` (a bogus DNS reply
such as 0.0.0.0), ``fp`` (a known false positive: an ordinary page that looks like a
blockpage) and ``injb`` (a benign injection, e.g. a router asking for a firmware
update). ``fp`` and ``injb`` never confirm, even in an expected country (stricter than
OONI, whose ``fp`` rows name no country anyway); ``is_blocking`` tells the other
scopes (an artefact of blocking, attributable or not) from those two.

Sans-IO: matching takes bytes, strings and header pairs, never a socket or a file.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from importlib.util import find_spec
from typing import Protocol

# ahocorasick-rs comes with the ``pipeline`` extra; without it, a slower loop (same results).
HAVE_AUTOMATON = find_spec("ahocorasick_rs") is not None

DATA_PACKAGE = "blockproof.data"
DATA_DIR = "fingerprints"

# Scopes that never confirm blocking: known false positives, benign injections.
NON_BLOCKING_SCOPES = frozenset({"fp", "injb"})
# Scopes that confirm in any country (OONI fastpath's ``is_confirmed``).
CONFIRMING_SCOPES = frozenset({"nat", "isp"})
PATTERN_TYPES = frozenset({"contains", "prefix", "full", "regexp"})

_HEADER_LINE = re.compile(r"^([A-Za-z0-9-]+):\s*(\S.*)$")
_MIN_TRIGGER = 3
_QUANTIFIER = re.compile(r"\{\d*(?:,\d*)?\}")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One pattern of a censor's (or a false positive's) artefact."""

    name: str
    source: str  # "ooni" (OONI's database, incl. Censored Planet's cp.*) or "citizenlab"
    scope: str  # nat | isp | prod | inst | vbw | prov | br | fp | injb
    location: str  # dns | body | header | header.<name>
    pattern_type: str  # contains | prefix | full | regexp
    pattern: str
    expected_countries: tuple[str, ...] = ()
    confidence_no_fp: int = 0
    other_names: tuple[str, ...] = ()


def is_blocking(fp: Fingerprint) -> bool:
    """Whether ``fp`` describes an artefact of blocking (not a false positive or a
    benign injection), attributable to a censor or not."""
    return fp.scope not in NON_BLOCKING_SCOPES


def confirms(fp: Fingerprint, probe_cc: str | None = None) -> bool:
    """Whether a match of ``fp`` confirms blocking, by OONI fastpath's rule.

    True for scopes ``nat`` and ``isp``; for the other blocking scopes, True only
    when ``probe_cc`` (the measurement's country) is one of the fingerprint's
    expected countries; never for ``fp`` and ``injb``.
    """
    if fp.scope in NON_BLOCKING_SCOPES:
        return False
    if fp.scope in CONFIRMING_SCOPES:
        return True
    cc = (probe_cc or "").upper()
    return bool(cc) and cc != "ZZ" and cc in fp.expected_countries


# --------------------------------------------------------------------------------------
# loading


def _countries(text: str) -> tuple[str, ...]:
    """``IR``, ``IR, TR``, ``['IR','TR']`` or ``[]`` -> ('IR', 'TR')."""
    cleaned = re.sub(r"[\[\]'\"]", " ", text)
    return tuple(c.strip().upper() for c in cleaned.split(",") if len(c.strip()) == 2)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _int(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def _rows(name: str) -> list[dict[str, str]]:
    text = (resources.files(DATA_PACKAGE) / DATA_DIR / name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _ooni_row(row: dict[str, str], kind: str) -> Fingerprint | None:
    location = row["location_found"].strip().lower() or ("dns" if kind == "dns" else "body")
    pattern_type = row["pattern_type"].strip().lower()
    if pattern_type not in PATTERN_TYPES or not row["pattern"]:
        return None
    if kind == "dns" and location != "dns":
        return None
    if kind == "http" and location != "body" and not location.startswith("header"):
        return None
    return Fingerprint(
        name=row["name"].strip(),
        source="ooni",
        scope=row["scope"].strip().lower(),
        location=location,
        pattern_type=pattern_type,
        pattern=row["pattern"],
        expected_countries=_countries(row["expected_countries"]),
        confidence_no_fp=_int(row["confidence_no_fp"]),
        other_names=_names(row["other_names"]),
    )


def _citizenlab_http_row(row: dict[str, str]) -> Fingerprint | None:
    pattern = row["pattern"]
    location = row["location_found"].strip().lower() or "body"
    pattern_type = "contains"
    if location == "header":
        line = _HEADER_LINE.match(pattern)
        if line is not None:  # "Location: http://..." -> header.location, prefix
            location, pattern_type, pattern = f"header.{line[1].lower()}", "prefix", line[2]
    elif location != "body":
        return None
    if not pattern:
        return None
    return Fingerprint(
        name="cl." + row["name"].strip(),
        source="citizenlab",
        scope=row["scope"].strip().lower(),
        location=location,
        pattern_type=pattern_type,
        pattern=pattern,
        expected_countries=_countries(row["expected_countries"]),
        confidence_no_fp=_int(row["confidence_no_fp"]),
    )


def _citizenlab_dns_row(row: dict[str, str]) -> Fingerprint | None:
    if not row["response"].strip():
        return None
    return Fingerprint(
        name="cl." + row["name"].strip(),
        source="citizenlab",
        scope=row["scope"].strip().lower(),
        location="dns",
        pattern_type="full",
        pattern=row["response"].strip(),
        expected_countries=_countries(row["expected_countries"]),
        confidence_no_fp=_int(row["confidence_no_fp"]),
    )


def load_fingerprints() -> tuple[Fingerprint, ...]:
    """Every fingerprint of the vendored databases, deduplicated, in file order."""
    out: list[Fingerprint] = []
    known: set[str] = set()
    for file, kind in (("fingerprints_dns.csv", "dns"), ("fingerprints_http.csv", "http")):
        for row in _rows(file):
            fp = _ooni_row(row, kind)
            if fp is not None:
                out.append(fp)
                known.add(fp.name)
                known.update(fp.other_names)
    citizenlab = [_citizenlab_dns_row(r) for r in _rows("dns.csv")]
    citizenlab += [_citizenlab_http_row(r) for r in _rows("http.csv")]
    for fp in citizenlab:
        if fp is not None and fp.name not in known:
            out.append(fp)
            known.add(fp.name)
    return tuple(out)


# --------------------------------------------------------------------------------------
# matching


def _required_literal(pattern: str) -> str | None:
    """The longest literal every match of ``pattern`` contains, or None if unsure.

    Conservative: a pattern with a group or an alternation has no trigger (it is
    then run on every value), and an optional atom ends a literal run.
    """
    runs: list[str] = []
    run: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt and not nxt.isalnum():
                run.append(nxt)  # an escaped punctuation character is a literal
            else:
                runs.append("".join(run))  # \d, \w, \b...: not a literal
                run = []
            i += 2
            continue
        if c in "(|":
            return None
        quantifier = _QUANTIFIER.match(pattern, i) if c == "{" else None
        if c in "*?" or quantifier is not None:  # the previous atom is optional
            if run:
                run.pop()
            runs.append("".join(run))
            run = []
            if quantifier is not None:
                i = quantifier.end()
                continue
        elif c in "+.^$":
            runs.append("".join(run))
            run = []
        elif c == "[":
            runs.append("".join(run))
            run = []
            i = pattern.find("]", i + 2) + 1 or len(pattern)
            continue
        else:
            run.append(c)
        i += 1
    runs.append("".join(run))
    best = max(runs, key=len)
    return best if len(best.encode("utf-8")) >= _MIN_TRIGGER else None


class _Finder(Protocol):
    def __call__(self, haystack: bytes) -> set[int]: ...


def _automaton_finder(patterns: list[bytes]) -> _Finder:
    import ahocorasick_rs

    automaton = ahocorasick_rs.BytesAhoCorasick(
        patterns, implementation=ahocorasick_rs.Implementation.DFA
    )

    def find(haystack: bytes) -> set[int]:
        return {i for i, _, _ in automaton.find_matches_as_indexes(haystack, overlapping=True)}

    return find


def _loop_finder(patterns: list[bytes]) -> _Finder:
    def find(haystack: bytes) -> set[int]:
        return {i for i, p in enumerate(patterns) if p in haystack}

    return find


class _Scanner:
    """Every pattern of one location: literals in one automaton, regexps behind triggers."""

    def __init__(self, fps: Sequence[Fingerprint], *, automaton: bool) -> None:
        self.patterns: list[bytes] = []
        self.literal_owners: list[list[Fingerprint]] = []
        self.trigger_owners: list[list[int]] = []  # indexes into self.regexps
        self.regexps: list[tuple[re.Pattern[bytes], Fingerprint]] = []
        self.untriggered: list[int] = []
        self.skipped: list[tuple[Fingerprint, str]] = []
        index: dict[bytes, int] = {}

        def slot(key: bytes) -> int:
            if key not in index:
                index[key] = len(self.patterns)
                self.patterns.append(key)
                self.literal_owners.append([])
                self.trigger_owners.append([])
            return index[key]

        for fp in fps:
            if fp.pattern_type != "regexp":
                self.literal_owners[slot(fp.pattern.encode("utf-8"))].append(fp)
                continue
            try:
                compiled = re.compile(fp.pattern.encode("utf-8"))
            except re.error as exc:
                self.skipped.append((fp, f"invalid regexp: {exc}"))
                continue
            self.regexps.append((compiled, fp))
            trigger = _required_literal(fp.pattern)
            if trigger is None:
                self.untriggered.append(len(self.regexps) - 1)
            else:
                self.trigger_owners[slot(trigger.encode("utf-8"))].append(len(self.regexps) - 1)
        self.find: _Finder | None = None
        if self.patterns:
            use_automaton = automaton and HAVE_AUTOMATON
            self.find = (_automaton_finder if use_automaton else _loop_finder)(self.patterns)

    def search(self, value: bytes, found: list[Fingerprint]) -> None:
        candidates = list(self.untriggered)
        if self.find is not None and value:
            for i in self.find(value):
                candidates.extend(self.trigger_owners[i])
                for fp in self.literal_owners[i]:
                    if (
                        fp.pattern_type == "contains"
                        or (fp.pattern_type == "prefix" and value.startswith(self.patterns[i]))
                        or (fp.pattern_type == "full" and value == self.patterns[i])
                    ):
                        found.append(fp)
        for r in sorted(set(candidates)):
            compiled, fp = self.regexps[r]
            if compiled.search(value) is not None:
                found.append(fp)


@lru_cache(maxsize=1 << 16)
def _canonical_answer(answer: str) -> str:
    """An address in its compressed form, a name lower-cased without its final dot
    (answers repeat across measurements: remembered)."""
    text = answer.strip().lower().rstrip(".")
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


def _rank(fp: Fingerprint) -> tuple[int, bool, str]:
    tier = 0 if fp.scope in CONFIRMING_SCOPES else 1 if is_blocking(fp) else 2
    return (tier, fp.source != "ooni", fp.name)


def _unique(found: Iterable[Fingerprint]) -> list[Fingerprint]:
    """Each fingerprint once: nat/isp first, then other blocking scopes, then the
    non-blocking ones; OONI's before Citizen Lab's; by name."""
    return sorted(set(found), key=_rank)


class _BodyMemo:
    """The body matches of recent distinct bodies, bounded in bytes (least recently used
    out). Blockpages and the pages of popular sites repeat across thousands of
    measurements: each is scanned once. A hit is found by the body's hash and confirmed
    by comparing the bytes, so it is exact. Bodies over ``largest`` are not kept."""

    def __init__(self, budget: int = 32 << 20, largest: int = 1 << 20) -> None:
        self.budget = budget
        self.largest = largest
        self.held = 0
        self._entries: OrderedDict[bytes, tuple[Fingerprint, ...]] = OrderedDict()
        self._lock = threading.Lock()  # the default database is shared by threads

    def get(self, body: bytes) -> tuple[Fingerprint, ...] | None:
        with self._lock:
            found = self._entries.get(body)
            if found is not None:
                self._entries.move_to_end(body)
            return found

    def put(self, body: bytes, matched: tuple[Fingerprint, ...]) -> None:
        if len(body) > self.largest:
            return
        with self._lock:
            if body in self._entries:
                return
            self._entries[body] = matched
            self.held += len(body)
            while self.held > self.budget:
                old, _ = self._entries.popitem(last=False)
                self.held -= len(old)


class FingerprintDB:
    """The fingerprints, compiled for matching. ``FingerprintDB.default()`` loads the
    vendored databases once per process."""

    def __init__(self, fingerprints: Iterable[Fingerprint], *, automaton: bool = True) -> None:
        self.fingerprints = tuple(fingerprints)
        self._dns_exact: dict[str, list[Fingerprint]] = {}
        dns_other: list[Fingerprint] = []
        by_location: dict[str, list[Fingerprint]] = {}
        for fp in self.fingerprints:
            if fp.location == "dns" and fp.pattern_type == "full":
                self._dns_exact.setdefault(_canonical_answer(fp.pattern), []).append(fp)
            elif fp.location == "dns":
                dns_other.append(fp)
            else:
                by_location.setdefault(fp.location, []).append(fp)
        self._dns_other = _Scanner(dns_other, automaton=automaton) if dns_other else None
        self._scanners = {
            loc: _Scanner(fps, automaton=automaton) for loc, fps in by_location.items()
        }
        self._any_header = self._scanners.get("header")
        self._by_header_name = {  # header.<name> scanners by <name>
            loc.removeprefix("header."): sc
            for loc, sc in self._scanners.items()
            if loc.startswith("header.")
        }
        skipped = [s for sc in self._scanners.values() for s in sc.skipped]
        if self._dns_other is not None:
            skipped += self._dns_other.skipped
        self.skipped: tuple[tuple[Fingerprint, str], ...] = tuple(skipped)
        self._bodies = _BodyMemo()

    @classmethod
    @cache
    def default(cls) -> FingerprintDB:
        """The vendored OONI and Citizen Lab databases (loaded once, cached)."""
        return cls(load_fingerprints())

    def match_http(
        self, *, body: bytes | str | None, headers: Sequence[tuple[str, str]] = ()
    ) -> list[Fingerprint]:
        """Fingerprints matched by one HTTP response: its body and its (name, value)
        header pairs. Each fingerprint once: ``nat``/``isp`` scopes first, then the other
        blocking scopes, then ``fp``/``injb``; by name within each."""
        found: list[Fingerprint] = []
        if body:
            data = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
            found.extend(self._match_body(data))
        by_name, any_header = self._by_header_name, self._any_header
        for name, value in headers:
            if not isinstance(name, str) or not isinstance(value, str):
                continue  # a malformed header pair cannot match
            raw = value.encode("utf-8", "surrogateescape")
            scanner = by_name.get(name.lower())
            if scanner is not None:
                scanner.search(raw, found)
            if any_header is not None:
                any_header.search(raw, found)
        return _unique(found) if found else []

    def _match_body(self, data: bytes) -> tuple[Fingerprint, ...]:
        """The body patterns ``data`` matches, scanned once per distinct body."""
        scanner = self._scanners.get("body")
        if scanner is None:
            return ()
        known = self._bodies.get(data)
        if known is not None:
            return known
        found: list[Fingerprint] = []
        scanner.search(data, found)
        matched = tuple(found)
        self._bodies.put(data, matched)
        return matched

    def match_dns(self, addresses: Iterable[str]) -> list[Fingerprint]:
        """Fingerprints matched by DNS answers (addresses, or CNAME names)."""
        found: list[Fingerprint] = []
        for address in addresses:
            if not isinstance(address, str) or not address:
                continue
            key = _canonical_answer(address)
            found.extend(self._dns_exact.get(key, ()))
            if self._dns_other is not None:
                self._dns_other.search(key.encode("utf-8"), found)
        return _unique(found) if found else []
