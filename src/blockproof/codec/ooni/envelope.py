"""The df-000 measurement envelope, lossless in both directions.

``test_keys`` stays JSON. Unknown keys go to ``Measurement.extra``; known keys
missing on read are listed in ``Measurement.absent`` and omitted on write. A
known key whose value has an unexpected JSON type (``"input": [...]``,
``"test_helpers": null``, ``"test_runtime": 3``) gets a best-effort typed value
and its raw value is also kept in ``extra`` under the same key; on write the raw
value wins as long as the typed field was not changed since. Each known key has a
spec (``ENVELOPE_SPECS``): whether a value fits, and how to coerce one that does not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from blockproof.codec.ooni.values import JSON, DecodeError, read_dict, read_float, read_opt_int
from blockproof.model.measurement import Measurement


def _fits_str(value: Any) -> bool:
    return isinstance(value, str)


def _fits_opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _fits_float(value: Any) -> bool:
    return isinstance(value, float)


def _fits_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _fits_int_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value.values()
    )


def _fits_object(value: Any) -> bool:
    return isinstance(value, dict)


def _coerce_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _coerce_opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _coerce_float(value: Any) -> float:
    return read_float(value)


def _coerce_str_map(value: Any) -> dict[str, str]:
    return {str(k): v for k, v in read_dict(value).items() if isinstance(v, str)}


def _coerce_int_map(value: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in read_dict(value).items():
        number = read_opt_int(v)
        if number is not None:
            out[str(k)] = number
    return out


def _coerce_object(value: Any) -> dict[str, Any]:
    return dict(read_dict(value))


_Spec = tuple[Callable[[Any], bool], Callable[[Any], Any]]
_STR: _Spec = (_fits_str, _coerce_str)

# Known envelope keys, in the order OONI's probe writes them (Go struct order), each with
# its spec: whether a value fits the typed field, and how to coerce one that does not.
ENVELOPE_SPECS: dict[str, _Spec] = {
    "annotations": (_fits_str_map, _coerce_str_map),
    "data_format_version": _STR,
    "extensions": (_fits_int_map, _coerce_int_map),
    "input": (_fits_opt_str, _coerce_opt_str),
    "measurement_start_time": _STR,
    "probe_asn": _STR,
    "probe_cc": _STR,
    "probe_ip": _STR,
    "probe_network_name": _STR,
    "report_id": _STR,
    "resolver_asn": _STR,
    "resolver_ip": _STR,
    "resolver_network_name": _STR,
    "software_name": _STR,
    "software_version": _STR,
    "test_helpers": (_fits_object, _coerce_object),
    "test_keys": (_fits_object, _coerce_object),
    "test_name": _STR,
    "test_runtime": (_fits_float, _coerce_float),
    "test_start_time": _STR,
    "test_version": _STR,
}

# Where OONI writes the keys blockproof does not model: after the first of these present.
_EXTRA_ORDER: dict[str, tuple[str, ...]] = {
    "id": ("extensions", "data_format_version", "annotations"),
    "input_hashes": ("input",),
    "options": ("measurement_start_time",),
    "probe_city": ("probe_cc",),
    "probe_id": ("probe_network_name", "probe_ip"),
    "measurement_uid": ("report_id",),
}


def _default_of(key: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(Measurement)}[key]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return ENVELOPE_SPECS[key][1](None)


def measurement_from_json(obj: Any) -> Measurement:
    """Decode a df-000 measurement; raises ``DecodeError`` only if ``obj`` is not an object."""
    if not isinstance(obj, dict):
        raise DecodeError("measurement: not a JSON object")
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    absent: set[str] = set()
    for key, (fits, coerce) in ENVELOPE_SPECS.items():
        if key not in obj:
            absent.add(key)
            fields[key] = _default_of(key)
            continue
        value = obj[key]
        fields[key] = coerce(value)
        if not fits(value):
            extra[key] = value
    for key, value in obj.items():
        if key not in ENVELOPE_SPECS:
            extra[key] = value
    return Measurement(**fields, extra=extra, absent=frozenset(absent))


def measurement_to_json(m: Measurement) -> JSON:
    """Encode a df-000 measurement; inverse of ``measurement_from_json``."""
    known: JSON = {}
    for key, (_, coerce) in ENVELOPE_SPECS.items():
        value = getattr(m, key)
        if key in m.absent and value == _default_of(key):
            continue
        if key in m.extra and coerce(m.extra[key]) == value:
            value = m.extra[key]  # the raw value read, unchanged since
        known[key] = value
    pending = {k: v for k, v in m.extra.items() if k not in ENVELOPE_SPECS}
    after: dict[str, list[str]] = {}
    for key, anchors in _EXTRA_ORDER.items():
        anchor = next((a for a in anchors if a in known), None)
        if key in pending and anchor is not None:
            after.setdefault(anchor, []).append(key)
    out: JSON = {}
    for key, value in known.items():
        out[key] = value
        for extra_key in after.get(key, ()):
            out[extra_key] = pending.pop(extra_key)
    out.update(pending)
    return out
