"""What OONI counts for each real OONI Web Connectivity sample in tests/data/ooni, and
what we count (``ooni_outcome`` and ``outcome``), with the reason wherever they differ.

For the fastpath test data, OONI's count is what ooni/backend's
``fastpath/tests/test_unit.py`` asserts for the file (anomaly: ``blocking_general``
above 0.5; confirmed: ``confirmed``; failure: ``accuracy`` 0; the API counts failure
first, then confirmed, then anomaly); for probe-cli's measurements, OONI's rule on the
keys its probe recorded. Used by tests/unit/test_ooni_outcome.py and by the pipeline's
tests on the same files ingested.
"""

from __future__ import annotations

# sample -> (OONI's count, ours, why ours differs)
EXPECTED: dict[str, tuple[str, str, str]] = {
    # fastpath-testdata: OONI's expectation from ooni/backend fastpath/tests/test_unit.py
    "fastpath-testdata/20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json": (
        "confirmed", "confirmed", "",  # test_match_id_fingerprint: a Kominfo blockpage
    ),
    "fastpath-testdata/bug_351.json": ("failure", "failure", ""),  # accuracy 0
    "fastpath-testdata/bug_352.json": ("confirmed", "confirmed", ""),  # confirmed: True
    "fastpath-testdata/report1.json": ("ok", "ok", ""),
    "fastpath-testdata/report2.json": ("ok", "ok", ""),
    "fastpath-testdata/requests_none.json": ("anomaly", "anomaly", ""),  # "dns", 1.0
    "fastpath-testdata/test_keys_none.json": ("failure", "failure", ""),  # accuracy 0
    "fastpath-testdata/web_connectivity_b64_hdr.json": ("anomaly", "anomaly", ""),
    "fastpath-testdata/web_connectivity_b64_incorrect.json": ("ok", "ok", ""),
    "fastpath-testdata/web_connectivity_ir_fp.json": ("confirmed", "confirmed", ""),
    "fastpath-testdata/web_connectivity_odd_hdr.json": ("anomaly", "anomaly", ""),  # "dns"
    "fastpath-testdata/web_connectivity_no_body.json": (
        "ok", "down", "the certificate failed for the probe and the control alike",
    ),
    "fastpath-testdata/web_connectivity_null.json": ("failure", "failure", ""),  # bug 610
    "fastpath-testdata/web_connectivity_null2.json": (
        "failure", "down", "null/null recorded (ooni/backend#610); the control's fetch failed too",
    ),
    # probe-cli-real: OONI's rule on the keys its probe recorded
    "probe-cli-real/20230706183840.201925_PK_webconnectivity_19f5e0d803cbaea7.test_keys.json": (
        "anomaly", "down", "every TLS handshake failed for the control too (ooni/probe#2517)",
    ),
    "probe-cli-real/cmd-minipipeline-nexa.polito.it.measurement.json": ("ok", "ok", ""),
    "probe-cli-real/manual-8844.measurement.json": (
        "failure", "ok", "an older engine left null/null; the page loaded over HTTPS",
    ),
    "probe-cli-real/manual-dnsgoogle80.measurement.json": (
        "failure", "down", "an older engine left null/null; the control's connect failed too",
    ),
    "probe-cli-real/manual-firefoxcom.measurement.json.gz": ("ok", "ok", ""),
    "probe-cli-real/manual-issue-2456.measurement.json.gz": ("ok", "ok", ""),
    "probe-cli-real/manual-noipv6.measurement.json.gz": ("ok", "ok", ""),
    "probe-cli-real/manual-youtube.measurement.json.gz": ("ok", "ok", ""),
}  # fmt: skip
