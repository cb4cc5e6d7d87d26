"""Where a finished measurement goes first: signed, canonical, and on disk in the spool.

``Sink`` is called once per measurement, as soon as it is done (a crash or ^C
loses nothing finished): it serialises the measurement in OONI's format, signs
it with the probe's key (``signing``: Ed25519 over RFC 8785 canonical JSON, in
``x_`` envelope keys that OONI tools ignore), and writes it atomically to the
spool's ``pending/``. Only then is anything printed or uploaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from blockproof.codec.jcs import canonicalize
from blockproof.codec.ooni import measurement_to_json
from blockproof.custody.keys import ProbeKey
from blockproof.custody.signing import sign_measurement
from blockproof.model.measurement import Measurement
from blockproof.probe.spool import Spool, SpoolEntry


@dataclass(slots=True)
class Sink:
    spool: Spool | None
    key: ProbeKey | None
    also: list[Callable[[bytes], None]] = field(default_factory=list)
    entries: list[SpoolEntry] = field(default_factory=list)

    def __call__(self, measurement: Measurement) -> bytes:
        obj = measurement_to_json(measurement)
        if self.key is not None:
            obj = sign_measurement(obj, self.key.private_key)
        canonical = canonicalize(obj)
        if self.spool is not None:
            self.entries.append(self.spool.add(canonical, measurement.measurement_start_time))
        for consumer in self.also:
            consumer(canonical)
        return canonical
