"""Hand-written Avro writers for plain records (``SegmentChange``, ``Decision``, ``Delivery``...),
byte for byte fastavro's.

fastavro's schemaless writer costs ~5 us a call before it writes a byte, and ~15-30 us for a
record with maps, optional fields and nested records (a ``Delivery``, a ``Decision`` with its
steps); such records are written for most events a campaign reacts to. A plain record needs none
of that walking: strings, longs, ints, booleans, bytes, enums, optional values (a union of null and
one of those), maps and arrays of them and nested plain records are written in order by their
exact Python type. ``compile_record_writer`` refuses any other layout (None), and the writer it
makes answers None for a value it does not expect (a missing field, another type, a long out of
range, an unknown symbol), so that the codec falls back to fastavro and its errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.avro_binary import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    SMALL_LONGS,
    encode_long,
    long_bytes,
    string_bytes,
)

RecordWriter = Callable[[Mapping[str, Any]], "bytes | None"]
_Write = Callable[[Any], bytes]  # raises _Refused for a value it does not write
# Logical types whose integer values fastavro writes as they are (a datetime goes to fastavro).
_INTEGER_TIMESTAMPS = frozenset(("timestamp-millis", "timestamp-micros"))


class _Refused(Exception):
    """A value the hand-written writer does not write: fastavro will (or will say what is wrong)."""


def compile_record_writer(schema: Mapping[str, Any]) -> RecordWriter | None:
    """A writer of the body of ``schema`` (a fastavro-parsed record), or None if it is not plain."""
    write = _writer(schema)
    if write is None or schema.get("type") != "record":
        return None
    record = write

    def write_record(value: Mapping[str, Any]) -> bytes | None:
        try:
            return record(value)
        except (_Refused, KeyError, UnicodeEncodeError):
            return None

    return write_record


def _writer(kind: Any) -> _Write | None:
    """The writer of a value of Avro type ``kind``, or None if this module does not write it."""
    if isinstance(kind, list):
        return _optional(kind)
    if not isinstance(kind, dict):
        return _PRIMITIVES.get(kind)
    name = kind.get("type")
    if name == "record":
        return _record(kind["fields"])
    if name == "enum":
        return _enum(kind["symbols"])
    if name == "map":
        return _map(kind["values"])
    if name == "array":
        return _array(kind["items"])
    logical = kind.get("logicalType")
    if logical is not None and logical not in _INTEGER_TIMESTAMPS:
        return None
    return _PRIMITIVES.get(name) if isinstance(name, str) else None


def _record(fields: list[Mapping[str, Any]]) -> _Write | None:
    layout: list[tuple[str, _Write | None]] = []  # None: a string, written inline (most fields)
    for field in fields:
        write = _writer(field["type"])
        if write is None:
            return None
        layout.append((field["name"], None if write is _string else write))
    ordered = tuple(layout)

    def record(value: Any) -> bytes:
        if type(value) is not dict:
            raise _Refused
        parts: list[bytes] = []
        append = parts.append
        for name, write in ordered:
            item = value[name]
            if write is None:
                if type(item) is not str:
                    raise _Refused
                data = item.encode()
                size = len(data)
                append(SMALL_LONGS[size] if size < 1024 else encode_long(size))
                append(data)
            else:
                append(write(item))
        return b"".join(parts)

    return record


def _optional(branches: list[Any]) -> _Write | None:
    """A union of null and one other type (in either order)."""
    if len(branches) != 2 or "null" not in branches:
        return None
    null_index = branches.index("null")
    write = _writer(branches[1 - null_index])
    if write is None:
        return None
    null_tag, value_tag = long_bytes(null_index), long_bytes(1 - null_index)

    def optional(value: Any) -> bytes:
        return null_tag if value is None else value_tag + write(value)

    return optional


def _map(values: Any) -> _Write | None:
    write = _writer(values)
    if write is None:
        return None

    def write_map(value: Any) -> bytes:
        if type(value) is not dict:
            raise _Refused
        if not value:
            return b"\x00"
        parts = [encode_long(len(value))]
        append = parts.append
        for key, item in value.items():
            append(_string(key))
            append(write(item))
        append(b"\x00")
        return b"".join(parts)

    return write_map


def _array(items: Any) -> _Write | None:
    write = _writer(items)
    if write is None:
        return None

    def array(value: Any) -> bytes:
        if type(value) is not list and type(value) is not tuple:
            raise _Refused
        if not value:
            return b"\x00"
        return b"".join([encode_long(len(value)), *[write(item) for item in value], b"\x00"])

    return array


def _enum(symbols: list[str]) -> _Write:
    indexes = {symbol: encode_long(index) for index, symbol in enumerate(symbols)}

    def enum(value: Any) -> bytes:
        if type(value) is not str or value not in indexes:
            raise _Refused
        return indexes[value]

    return enum


def _string(value: Any) -> bytes:
    if type(value) is not str:
        raise _Refused
    return string_bytes(value)


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise _Refused
    return long_bytes(len(value)) + value


def _long(value: Any) -> bytes:
    if type(value) is not int or not LONG_MIN <= value <= LONG_MAX:
        raise _Refused
    return encode_long(value)


def _int(value: Any) -> bytes:
    if type(value) is not int or not INT_MIN <= value <= INT_MAX:
        raise _Refused
    return encode_long(value)


def _boolean(value: Any) -> bytes:
    if type(value) is not bool:
        raise _Refused
    return b"\x01" if value else b"\x00"


_PRIMITIVES: dict[str, _Write] = {
    "string": _string,
    "bytes": _bytes,
    "long": _long,
    "int": _int,
    "boolean": _boolean,
}
