"""Hand-written Avro writers for flat records (``SegmentChange``, ``Definition``), byte for byte fastavro's.

fastavro's schemaless writer costs ~10 us a call before it writes a byte; a ``SegmentChange`` is
written for every entry and exit of every customer. A flat record (strings, longs, ints, booleans
and enums, no unions, arrays or maps) needs none of that: its fields are written in order by
their exact Python type. ``compile_flat_writer`` refuses any other layout (None), and the writer
it makes answers None for a value it does not expect (a missing field, another type, a long out
of range, an unknown symbol), so that the codec falls back to fastavro and its errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.avro_binary import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, encode_long, string_bytes

FlatWriter = Callable[[Mapping[str, Any]], "bytes | None"]
_Field = Callable[[Any], "bytes | None"]
# Logical types whose integer values fastavro writes as they are (a datetime goes to fastavro).
_INTEGER_TIMESTAMPS = frozenset(("timestamp-millis", "timestamp-micros"))


def compile_flat_writer(schema: Mapping[str, Any]) -> FlatWriter | None:
    """A writer of the body of ``schema`` (a fastavro-parsed record), or None if it is not flat."""
    if schema.get("type") != "record":
        return None
    fields: list[tuple[str, _Field]] = []
    for field in schema["fields"]:
        field_writer = _field_writer(field["type"])
        if field_writer is None:
            return None
        fields.append((field["name"], field_writer))
    layout = tuple(fields)

    def write(value: Mapping[str, Any]) -> bytes | None:
        parts = []
        try:
            for name, write_field in layout:
                part = write_field(value[name])
                if part is None:
                    return None
                parts.append(part)
        except (KeyError, UnicodeEncodeError):
            return None
        return b"".join(parts)

    return write


def _field_writer(kind: Any) -> _Field | None:
    if isinstance(kind, dict):
        if kind.get("type") == "enum":
            return _enum(kind["symbols"])
        logical = kind.get("logicalType")
        if logical is not None and logical not in _INTEGER_TIMESTAMPS:
            return None
        kind = kind.get("type")
    if kind == "string":
        return _string
    if kind == "long":
        return _long
    if kind == "int":
        return _int
    if kind == "boolean":
        return _boolean
    return None


def _string(value: Any) -> bytes | None:
    return string_bytes(value) if type(value) is str else None


def _long(value: Any) -> bytes | None:
    return encode_long(value) if type(value) is int and LONG_MIN <= value <= LONG_MAX else None


def _int(value: Any) -> bytes | None:
    return encode_long(value) if type(value) is int and INT_MIN <= value <= INT_MAX else None


def _boolean(value: Any) -> bytes | None:
    if type(value) is not bool:
        return None
    return b"\x01" if value else b"\x00"


def _enum(symbols: list[str]) -> _Field:
    indexes = {symbol: encode_long(index) for index, symbol in enumerate(symbols)}
    return lambda value: indexes.get(value) if type(value) is str else None
