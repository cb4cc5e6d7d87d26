"""OONI's own tools read our measurements: ``oonidata``'s loader (the Python package OONI's
pipeline is built on) must load every measurement the lab produces, as the same test and
with the same verdict keys.

``oonidata`` 0.3.0 pins old versions of click and cryptography, so ``make test`` installs
it without its dependencies (``pip install --no-deps``) next to the few its loader imports,
which the ``dev`` extra lists.
"""

from __future__ import annotations

import orjson
from oonidata.dataclient import load_measurement

from blockproof.codec.jsonl import dumps_line
from blockproof.codec.ooni import measurement_to_json
from blockproof.model.measurement import Measurement

__all__ = ["assert_ooni_can_read"]


def assert_ooni_can_read(measurements: list[Measurement]) -> None:
    """Each measurement, written as we write it, loads in oonidata with the same keys."""
    for measurement in measurements:
        line = dumps_line(measurement_to_json(measurement))
        loaded = load_measurement(msmt=orjson.loads(line))
        assert type(loaded).__name__ == "WebConnectivity", (measurement.input, type(loaded))
        assert loaded.input == measurement.input
        assert loaded.report_id == measurement.report_id
        keys = loaded.test_keys
        assert keys is not None, measurement.input
        for key in ("blocking", "accessible", "dns_consistency", "control_failure"):
            assert getattr(keys, key) == measurement.test_keys.get(key), (measurement.input, key)
