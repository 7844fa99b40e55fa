"""Attribute values: the types a profile attribute may hold, and how to name them."""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

# A profile attribute holds one of these. Lists are tuples so that values stay hashable and
# immutable once inside a state.
AttributeValue: TypeAlias = str | int | float | bool | dt.date | dt.datetime | tuple[str, ...]

ATTRIBUTE_TYPES = ("string", "long", "double", "boolean", "date", "timestamp", "list")


def type_name(value: AttributeValue) -> str:
    """The Refract type name of ``value`` (one of ATTRIBUTE_TYPES)."""
    # bool before int (bool is an int), datetime before date (datetime is a date).
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, tuple):
        return "list"
    raise TypeError(f"not an attribute value: {value!r}")
