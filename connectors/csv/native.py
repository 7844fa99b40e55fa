"""The compiled row encoder (``connectors.csv._native.RowEncoder``) for a sync, when it can take it.

Converting and encoding a row in Python costs tens of microseconds, which bounds an import's
speed (docs/benchmarks.md). The encoder, written in Rust (``native/``), does the same for the
common syncs — profile attributes (also campaign-scoped) keyed by customer id, with file columns
of any type and no calculated fields — and writes exactly what ``RowPlan`` and the codec write:
the same digests and the same Envelope bytes (tests compare them). A row it is not sure of (a bad
cell, a text only Python reads, such as a non-Latin-1 ``lower``) goes back to Python, which
converts it or names its errors. Any other sync, or a machine without the compiled module, runs
the Python path.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import orjson

from connectors.csv.columns import Column
from connectors.csv.events import event_source
from connectors.csv.mapping import INDEXED_FIELDS
from connectors.csv.plan import RowPlan
from connectors.csv.values import (
    BooleanType,
    DateType,
    DecimalType,
    IntegerType,
    ListType,
    StringType,
    TimestampType,
    ValueType,
    numeric_tokens,
)
from engine.events import CustomerUpdate
from engine.values import AttributeValue
from schemas.codec import encode_event

try:
    from connectors.csv._native import CsvRecords, RowEncoder
except ImportError:  # pragma: no cover - the install builds it; without Rust, Python does the work
    CsvRecords = RowEncoder = None

__all__ = ["CsvRecords", "RowEncoder", "available", "row_encoder"]

_HEADER_BYTES = 10  # Avro single-object encoding: marker and 8-byte fingerprint
_BRANCH_PROBES: tuple[tuple[AttributeValue, bytes], ...] = (
    ("", b"\x00"),
    (0, b"\x00"),
    (0.0, bytes(8)),
    (False, b"\x00"),
    (dt.date(1970, 1, 1), b"\x00"),
    (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), b"\x00"),
    ((), b"\x00"),
)


def available() -> bool:
    """Whether the compiled module is installed."""
    return RowEncoder is not None


def row_encoder(plan: RowPlan, *, import_id: str, now_ms: int, index: bool, raw_key: bytes) -> Any | None:
    """A ``RowEncoder`` for ``plan``'s rows of import ``import_id``, or None when Python must
    read them (another kind of sync, a column type or option it does not handle, no module).

    ``index`` records identity fields in the key index; ``raw_key`` keys the raw pre-digests.
    """
    sync = plan.sync
    if (
        RowEncoder is None
        or sync.kind not in ("attributes", "campaign_data")
        or sync.key.needs_resolution
        or plan.calculated
        or sync.scope is not None
    ):
        return None
    columns = []
    for column, position in plan.value_columns:
        spec = _column_spec(column)
        if spec is None:
            return None
        columns.append((position, *spec))
    names = [name for _, name in plan.stored]
    if len(set(names)) != len(names):
        return None
    layout = _layout(sync.id, now_ms, sync.campaign)
    if layout is None:
        return None
    header, middle, campaign, branches = layout
    identities = (
        [(field, slot) for field in INDEXED_FIELDS for slot, name in plan.stored if name == field]
        if index and sync.campaign is None
        else []
    )
    return RowEncoder(
        width=plan.width,
        key_index=plan.key_index,
        columns=columns,
        stored=plan.stored,
        identities=identities,
        unset_empty=sync.empty_cells == "unset",
        header=header,
        middle=middle,
        campaign=campaign,
        branches=branches,
        event_id_opening=orjson.dumps([sync.id, import_id])[:-1] + b",",
        raw_key=raw_key,
        row_salt=plan.salt,
        row_person=plan.person,
        store_prefix=f"{sync.id}\0".encode(),
    )


def _column_spec(column: Column) -> tuple[Any, ...] | None:
    """(type, strip, transforms, default, required) of a column, or None if Rust cannot read it."""
    kind = _type_spec(column.type)
    if kind is None:
        return None
    default: tuple[str, Any] | None = None
    if column.default is not None:
        default = _default_spec(column.default, column.type)
        if default is None:
            return None
    strip = not isinstance(column.type, StringType)
    return kind, strip, list(column.transforms), default, column.required


def _type_spec(value_type: ValueType) -> tuple[Any, ...] | None:
    if isinstance(value_type, StringType):
        return ("string",)
    if isinstance(value_type, IntegerType):
        return ("integer",)
    if isinstance(value_type, DecimalType):
        return ("decimal", value_type.decimal_separator)
    if isinstance(value_type, BooleanType):
        return (
            "boolean",
            [text.lower() for text in value_type.true_values],
            [text.lower() for text in value_type.false_values],
        )
    if isinstance(value_type, DateType):
        tokens = numeric_tokens(value_type.format)
        return None if tokens is None else ("date", tokens)
    if isinstance(value_type, TimestampType):
        if value_type.timezone != "UTC":
            return None
        if value_type.format is None:
            return ("timestamp", None)
        tokens = numeric_tokens(value_type.format)
        return None if tokens is None else ("timestamp", tokens)
    if isinstance(value_type, ListType):
        return ("list", value_type.separator)
    return None


def _default_spec(value: AttributeValue, value_type: ValueType) -> tuple[str, Any] | None:
    """A column's default as (type, fields) for the encoder, or None when it cannot say it."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int):
        return ("integer", value) if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return ("decimal", value) if math.isfinite(value) else None
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, dt.datetime):
        offset = value.utcoffset()
        if offset is None or offset % dt.timedelta(minutes=1):
            return None
        fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
        return ("timestamp", (*fields, value.microsecond, offset // dt.timedelta(minutes=1)))
    if isinstance(value, dt.date):
        return ("date", (value.year, value.month, value.day))
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return ("list", list(value))
    return None


def _layout(
    sync_id: str, now_ms: int, campaign: str | None
) -> tuple[bytes, bytes, bytes, list[bytes]] | None:
    """(header, middle, campaign field, value branches) of the Envelopes, read off the codec's
    own encoding of probe events, so that the encoder follows the schema the codec uses."""
    source = event_source(sync_id)
    empty = encode_event("", "", now_ms, now_ms, source, CustomerUpdate({}, (), None))
    # header, "" and "" (one byte each), the middle, an empty map, an empty unset, null campaign
    if empty[-3:] != b"\x00\x00\x00":
        return None
    header, middle = empty[:_HEADER_BYTES], empty[_HEADER_BYTES + 2 : -3]
    expected = header + b"\x00\x00" + middle
    with_campaign = encode_event("", "", now_ms, now_ms, source, CustomerUpdate({}, (), campaign))
    if not with_campaign.startswith(expected + b"\x00\x00"):
        return None
    campaign_field = with_campaign[len(expected) + 2 :]
    branches: list[bytes] = []
    for value, body in _BRANCH_PROBES:
        probe = encode_event("", "", now_ms, now_ms, source, CustomerUpdate({"a": value}, (), None))
        start = expected + b"\x02\x02a"  # one entry, the key "a"
        end = body + b"\x00\x00\x00"  # the map's end, no unset, null campaign
        if not (probe.startswith(start) and probe.endswith(end)):
            return None
        branches.append(probe[len(start) : len(probe) - len(end)])
    return header, middle, campaign_field, branches
