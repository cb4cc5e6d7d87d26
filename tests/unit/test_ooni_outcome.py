"""Two outcomes per verdict: what OONI counts (``ooni_outcome``) and ours (``outcome``).

``ooni_outcome`` must be exactly what OONI's fastpath and Explorer/MAT count for a
measurement. On every real OONI Web Connectivity measurement in the repository it is
checked against OONI's own expectation: for the fastpath test data, the scores that
ooni/backend's ``fastpath/tests/test_unit.py`` asserts (anomaly: ``blocking_general``
above 0.5; confirmed: ``confirmed``; failure: ``accuracy`` 0; MAT counts failure first,
then confirmed, then anomaly); for probe-cli's measurements, OONI's rule applied to
the keys OONI's probe recorded. Ours differs where the site was down for everyone
(``down``, which OONI counts as ok) and where the recorded keys are not what a
re-analysis finds (docs/classifier.md, "Our outcome and OONI's").
"""

from __future__ import annotations

from typing import Any

import pytest
from test_ooni_samples import samples

from blockproof.codec.ooni import web_observations_from_test_keys
from blockproof.model.verdict import OONI_OUTCOMES, OUTCOMES
from blockproof.verdict.fastpath import ooni_web_outcome
from blockproof.verdict.judge import judge_app, judge_web, rules
from ooni_outcomes import EXPECTED


def _judged(sample: Any) -> Any:
    keys = sample.test_keys
    obs = web_observations_from_test_keys(sample.input, keys, binary=False)
    recorded = keys if isinstance(keys, dict) else {}
    return judge_web(obs, probe_cc=sample.raw.get("probe_cc"), recorded=recorded)


def test_every_sample_has_an_expectation() -> None:
    assert {s.id for s in samples()} == set(EXPECTED)


@pytest.mark.parametrize("sample", samples(), ids=lambda s: s.id)
def test_ooni_outcome_is_oonis_and_ours_differs_only_where_listed(sample: Any) -> None:
    ooni, ours, why = EXPECTED[sample.id]
    judgement = _judged(sample)
    assert judgement.ooni_outcome == ooni
    assert judgement.outcome == ours
    assert (ours != ooni) == bool(why), "a difference needs its reason, and only a difference"


# (id, recorded test keys, matched, confirmed, OONI's count)
RULES: list[tuple[str, Any, bool, bool, str]] = [
    ("accessible", {"blocking": False, "accessible": True}, False, False, "ok"),
    ("website down", {"blocking": False, "accessible": False}, False, False, "ok"),
    ("dns", {"blocking": "dns", "accessible": False}, False, False, "anomaly"),
    ("tcp_ip", {"blocking": "tcp_ip", "accessible": False}, False, False, "anomaly"),
    ("http-diff", {"blocking": "http-diff", "accessible": False}, False, False, "anomaly"),
    ("http-failure", {"blocking": "http-failure", "accessible": False}, False, False, "anomaly"),
    ("confirmed", {"blocking": "http-diff", "accessible": False}, True, True, "confirmed"),
    ("confirmed though blocking false", {"blocking": False, "accessible": True}, True, True,
     "confirmed"),
    ("a match that does not confirm", {"blocking": False, "accessible": True}, True, False, "ok"),
    ("null/null", {"blocking": None, "accessible": None}, False, False, "failure"),
    ("null/null with a match (backend#610)", {"blocking": None, "accessible": None}, True,
     False, "ok"),
    ("blocking missing", {"accessible": True}, False, False, "failure"),
    ("accessible null", {"blocking": False, "accessible": None}, False, False, "failure"),
    ("blocking 0 reads as false", {"blocking": 0, "accessible": True}, False, False, "ok"),
    ("blocking true is no blocking type", {"blocking": True, "accessible": False}, False, False,
     "failure"),
    ("unknown blocking string", {"blocking": "tls", "accessible": False}, False, False,
     "failure"),
    ("unknown_failure anywhere", {"blocking": "dns", "accessible": False,
     "control_failure": "unknown_failure: x"}, False, False, "failure"),
    ("unknown_failure beats confirmed", {"blocking": "dns", "accessible": False,
     "http_experiment_failure": "unknown_failure: y"}, True, True, "failure"),
    ("title_match not a boolean", {"blocking": False, "accessible": True, "title_match": "x"},
     False, False, "failure"),
    ("test_keys null", None, False, False, "failure"),
    ("test_keys empty", {}, False, False, "failure"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("keys", "matched", "confirmed", "expected"),
    [case[1:] for case in RULES],
    ids=[case[0] for case in RULES],
)
def test_oonis_web_connectivity_count(
    keys: Any, matched: bool, confirmed: bool, expected: str
) -> None:
    assert ooni_web_outcome(keys, matched=matched, confirmed=confirmed) == expected


def test_vocabularies() -> None:
    assert set(OONI_OUTCOMES) < set(OUTCOMES)
    assert {r.outcome for r in rules()} <= set(OUTCOMES)
    assert "down" in {r.outcome for r in rules()}


def test_other_tests_count_the_same_for_ooni_and_us() -> None:
    judged = judge_app({"test_name": "tor", "test_keys": {}})
    assert judged.ooni_outcome == judged.outcome == "failure"
    unknown = judge_app({"test_name": "no_such_test", "test_keys": {"x": 1}})
    assert (unknown.outcome, unknown.ooni_outcome) == ("failure", "failure")
