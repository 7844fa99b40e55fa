"""A hand-written Avro writer for the Envelopes of profile updates and delivery results, byte for
byte fastavro's.

Profile updates (``CustomerUpdate``) are most of what imports and the API append, delivery results
(``DeliveryResult``) one per message the dispatchers send, and fastavro
spends most of an import row's time walking the Envelope schema (a union of nine records, a map
of a union of eight branches). This writer knows that layout: it writes the fields in order,
with the union indexes and the map keys encoded once, and the values by their exact Python type.
It is built from the current schema and refuses (``compile_writer`` answers None) any layout it
was not written for. Anything it does not recognize (another payload, a subclass, a value out of
range) makes it answer None, so that the codec falls back to fastavro and its errors.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.events import CustomerUpdate, DeliveryResult, Envelope, Payload
from schemas.avro_binary import LONG_MAX, LONG_MIN, SMALL_LONGS, encode_long, long_bytes, string_bytes
from schemas.catalog import NAMESPACE


@dataclass(slots=True, frozen=True)
class EnvelopeWriter:
    """The body of an Envelope (no header), or None when fastavro must write it; ``fields``
    takes the Envelope's fields, for writers of many events that need no Envelope object."""

    envelope: Callable[[Envelope], bytes | None]
    fields: Callable[[str, str, int, int, str, Payload], bytes | None]


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_MILLISECOND = dt.timedelta(milliseconds=1)
_ENVELOPE_FIELDS = (
    ("event_id", "string"),
    ("customer_id", "string"),
    ("occurred_at", "long"),
    ("received_at", "long"),
    ("source", "string"),
)
_CUSTOMER_UPDATE = f"{NAMESPACE}.CustomerUpdate"
_DELIVERY_RESULT = f"{NAMESPACE}.DeliveryResult"
_DELIVERY_RESULT_FIELDS: list[tuple[str, object]] = [
    ("delivery_id", "string"),
    ("status", "string"),
    ("channel", "string"),
    ("campaign_id", ["null", "string"]),
    ("provider_message_id", ["null", "string"]),
    ("reason", ["null", "string"]),
]
_VALUE_BRANCHES = (
    "string", "long", "double", "boolean",
    f"{NAMESPACE}.DateValue", f"{NAMESPACE}.TimestampValue", f"{NAMESPACE}.StringList",
)  # fmt: skip
_KEYS_REMEMBERED = 4096
_pack_double = struct.Struct("<d").pack


def compile_writer(envelope_schema: Mapping[str, Any]) -> EnvelopeWriter | None:
    """The writer of Envelope bodies (no header) for this fastavro-parsed schema, or None if its
    layout is not the one this module knows (then fastavro writes every Envelope)."""
    fields = [(f["name"], _plain(f["type"])) for f in envelope_schema.get("fields", [])]
    if len(fields) != 6 or fields[:5] != list(_ENVELOPE_FIELDS) or not isinstance(fields[5][1], list):
        return None
    payloads = fields[5][1]
    names = [_name(p) for p in payloads]
    if _CUSTOMER_UPDATE not in names:
        return None
    update = _record_fields(payloads[names.index(_CUSTOMER_UPDATE)])
    if update is None or [name for name, _ in update] != ["set", "unset", "campaign_id"]:
        return None
    (_, set_type), (_, unset_type), (_, campaign_type) = update
    if not (
        isinstance(set_type, dict)
        and set_type.get("type") == "map"
        and isinstance(set_type.get("values"), list)
        and _plain(unset_type) == {"type": "array", "items": "string"}
        and campaign_type == ["null", "string"]
    ):
        return None
    values = set_type["values"]
    branches = [_name(b) for b in values]
    if not set(_VALUE_BRANCHES) <= set(branches):
        return None
    for record, expected in _VALUE_RECORDS.items():
        if _record_fields(values[branches.index(record)]) != expected:
            return None
    result_index = None  # results go to fastavro when their layout is not the one written here
    if (
        _DELIVERY_RESULT in names
        and _record_fields(payloads[names.index(_DELIVERY_RESULT)]) == _DELIVERY_RESULT_FIELDS
    ):
        result_index = long_bytes(names.index(_DELIVERY_RESULT))
    return _writer(
        long_bytes(names.index(_CUSTOMER_UPDATE)),
        [long_bytes(branches.index(b)) for b in _VALUE_BRANCHES],
        result_index,
    )


_VALUE_RECORDS: Mapping[str, list[tuple[str, object]]] = {
    f"{NAMESPACE}.DateValue": [("days", "int")],
    f"{NAMESPACE}.TimestampValue": [("millis", "long")],
    f"{NAMESPACE}.StringList": [("items", {"type": "array", "items": "string"})],
}


def _plain(kind: object) -> object:
    """A type without its annotations: ``{"type": "long"}`` is ``"long"``."""
    if isinstance(kind, dict):
        if kind.get("type") == "array":
            return {"type": "array", "items": _plain(kind.get("items"))}
        if kind.get("type") in ("string", "long", "int", "double", "boolean", "null"):
            return kind["type"]
    return kind


def _name(kind: object) -> object:
    return kind.get("name") if isinstance(kind, dict) else kind


def _record_fields(kind: object) -> list[tuple[str, object]] | None:
    """(name, plain type) of the fields of a record defined in place, or None."""
    if not isinstance(kind, dict) or kind.get("type") != "record":
        return None
    return [(f["name"], _plain(f["type"])) for f in kind["fields"]]


def _writer(payload_index: bytes, branch_indexes: list[bytes], result_index: bytes | None) -> EnvelopeWriter:
    string_tag, long_tag, double_tag, boolean_tag, date_tag, timestamp_tag, list_tag = branch_indexes
    true, false = boolean_tag + b"\x01", boolean_tag + b"\x00"
    empty_list = list_tag + b"\x00"

    def write_long(value: int) -> bytes | None:
        return long_tag + encode_long(value) if LONG_MIN <= value <= LONG_MAX else None

    def write_timestamp(value: dt.datetime) -> bytes | None:
        if value.utcoffset() is None:
            return None
        return timestamp_tag + encode_long((value - _EPOCH) // _MILLISECOND)

    def write_list(items: tuple[object, ...]) -> bytes | None:
        if not items:
            return empty_list
        if not all(type(item) is str for item in items):
            return None
        return list_tag + long_bytes(len(items)) + b"".join(map(string_bytes, items)) + b"\x00"  # type: ignore[arg-type]

    # By exact type: subclasses (and None, which the typed path refuses) go to fastavro.
    values: dict[type, Callable[[Any], bytes | None]] = {
        str: lambda value: string_tag + string_bytes(value),
        float: lambda value: double_tag + _pack_double(value),
        int: write_long,
        bool: lambda value: true if value else false,
        dt.date: lambda value: date_tag + encode_long(value.toordinal() - _EPOCH_DAY),
        dt.datetime: write_timestamp,
        tuple: write_list,
    }
    string_heads = tuple(string_tag + length for length in SMALL_LONGS)
    keys: dict[str, bytes] = {}
    # An import writes every event with the same times and source: encode them once.
    middles: dict[tuple[int, int, str], bytes] = {}

    def write(envelope: Envelope) -> bytes | None:
        return write_fields(
            envelope.event_id,
            envelope.customer_id,
            envelope.occurred_at_ms,
            envelope.received_at_ms,
            envelope.source,
            envelope.payload,
        )

    def write_fields(
        event_id: str,
        customer_id: str,
        occurred_at_ms: int,
        received_at_ms: int,
        source: str,
        payload: Payload,
    ) -> bytes | None:
        if type(event_id) is not str or type(customer_id) is not str:
            return None
        if type(payload) is DeliveryResult and result_index is not None:
            return write_result(event_id, customer_id, occurred_at_ms, received_at_ms, source, payload)
        if type(payload) is not CustomerUpdate:
            return None
        times = (occurred_at_ms, received_at_ms, source)
        middle = middles.get(times)
        if middle is None:
            middle = _middle(times, payload_index)
            if middle is None:
                return None
            if len(middles) >= _KEYS_REMEMBERED:
                middles.clear()
            middles[times] = middle
        parts = [string_bytes(event_id), string_bytes(customer_id), middle]
        append = parts.append
        attributes = payload.set
        if attributes:
            append(long_bytes(len(attributes)))
            for name, value in attributes.items():
                key = keys.get(name)
                if key is None:
                    if type(name) is not str:
                        return None
                    if len(keys) >= _KEYS_REMEMBERED:
                        keys.clear()
                    key = keys[name] = string_bytes(name)
                append(key)
                kind = type(value)
                if kind is str:  # most values: written here, without a call
                    data = value.encode()  # type: ignore[union-attr]
                    size = len(data)
                    append(string_heads[size] if size < 1024 else string_tag + encode_long(size))
                    append(data)
                    continue
                write_value = values.get(kind)
                written = None if write_value is None else write_value(value)
                if written is None:
                    return None
                append(written)
        append(b"\x00")
        unset = payload.unset
        if unset:
            if not all(type(name) is str for name in unset):
                return None
            append(long_bytes(len(unset)))
            parts.extend(map(string_bytes, unset))
        append(b"\x00")
        campaign = payload.campaign_id
        if campaign is None:
            append(b"\x00")
        elif type(campaign) is str:
            append(b"\x02" + string_bytes(campaign))
        else:
            return None
        return b"".join(parts)

    def write_result(
        event_id: str,
        customer_id: str,
        occurred_at_ms: int,
        received_at_ms: int,
        source: str,
        result: DeliveryResult,
    ) -> bytes | None:
        assert result_index is not None
        middle = _middle((occurred_at_ms, received_at_ms, source), result_index)
        strings = (result.delivery_id, result.status, result.channel)
        optional = (result.campaign_id, result.provider_message_id, result.reason)
        if middle is None or not all(type(value) is str for value in strings):
            return None
        parts = [string_bytes(event_id), string_bytes(customer_id), middle, *map(string_bytes, strings)]
        for value in optional:
            if value is None:
                parts.append(b"\x00")
            elif type(value) is str:
                parts.append(b"\x02" + string_bytes(value))
            else:
                return None
        return b"".join(parts)

    return EnvelopeWriter(write, write_fields)


def _middle(times: tuple[object, object, object], payload_index: bytes) -> bytes | None:
    """occurred_at, received_at, source and the payload's union index, encoded."""
    occurred, received, source = times
    for millis in (occurred, received):
        if type(millis) is not int or not LONG_MIN <= millis <= LONG_MAX:
            return None
    if type(source) is not str:
        return None
    return encode_long(occurred) + encode_long(received) + string_bytes(source) + payload_index  # type: ignore[arg-type]
