"""Avro single-object encoding: the 10-byte header that precedes every value on the log.

A value is ``C3 01``, then the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of the
writer schema's Parsing Canonical Form, then the Avro binary body. The fingerprint lets any
reader pick the writer schema, so a record written by an older schema is still readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastavro.schema import to_parsing_canonical_form

MARKER = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(MARKER) + FINGERPRINT_SIZE

# The Rabin fingerprint of the Avro specification: the empty fingerprint and the table it
# derives, exactly as the reference (Java) implementation builds them.
_EMPTY_FINGERPRINT = 0xC15D213AA4D7A795


def _fingerprint_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ (_EMPTY_FINGERPRINT if value & 1 else 0)
        table.append(value)
    return tuple(table)


_TABLE = _fingerprint_table()


def rabin_fingerprint(data: bytes) -> bytes:
    """The CRC-64-AVRO fingerprint of ``data``, as 8 little-endian bytes (the framing order)."""
    value = _EMPTY_FINGERPRINT
    for byte in data:
        value = (value >> 8) ^ _TABLE[(value ^ byte) & 0xFF]
    return value.to_bytes(FINGERPRINT_SIZE, "little")


def parsing_canonical_form(schema: Mapping[str, Any]) -> str:
    """The Parsing Canonical Form of a self-contained schema (no docs, defaults, logical types)."""
    return str(to_parsing_canonical_form(dict(schema)))


def schema_fingerprint(schema: Mapping[str, Any]) -> bytes:
    """The 8 fingerprint bytes that frame every value written with ``schema``."""
    return rabin_fingerprint(parsing_canonical_form(schema).encode("utf-8"))


def header(schema: Mapping[str, Any]) -> bytes:
    """The 10 bytes that precede the body of every value written with ``schema``."""
    return MARKER + schema_fingerprint(schema)
