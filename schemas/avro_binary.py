"""Avro's binary encoding of the primitive values, for the hand-written writers.

The writers (``envelope_writer``, ``flat_writer``) write the same bytes as fastavro, faster, for
the records written several times per event; these are the pieces they share.
"""

from __future__ import annotations

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

_BYTES = tuple(bytes((number,)) for number in range(0x80))


def encode_long(value: int) -> bytes:
    """Avro's zig-zag varint of a long (the caller checks the range)."""
    number = (value << 1) ^ (value >> 63)
    if number < 0x80:
        return _BYTES[number]
    if number < 0x4000:
        return bytes(((number & 0x7F) | 0x80, number >> 7))
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


SMALL_LONGS = tuple(encode_long(number) for number in range(1024))


def long_bytes(value: int) -> bytes:
    """``encode_long``, looked up for the small counts and sizes most values are."""
    return SMALL_LONGS[value] if 0 <= value < 1024 else encode_long(value)


def string_bytes(value: str) -> bytes:
    """An Avro string: its UTF-8 length, then the bytes."""
    data = value.encode()
    size = len(data)
    return (SMALL_LONGS[size] if size < 1024 else encode_long(size)) + data


def checked_long(value: int) -> bytes:
    """``long_bytes`` of an int in Avro's long range: TypeError for another type, OverflowError
    out of range (a caller then leaves the value to fastavro and its errors)."""
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__}")
    if not LONG_MIN <= value <= LONG_MAX:
        raise OverflowError(f"{value} does not fit an Avro long")
    return long_bytes(value)
