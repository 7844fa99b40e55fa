"""Column value types of a sync, and the converters that turn a cell's text into a typed value.

Converters are compiled once per column (``compile_converter``) and called once per cell, so they
avoid per-call set-up: formats are turned into a precompiled parser up front, and date parsing is
memoized in a bounded cache because date columns repeat values a lot (birth dates, due dates).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeAlias
from zoneinfo import ZoneInfo

from engine.values import AttributeValue

ISO_DATE = "%Y-%m-%d"
DEFAULT_TRUE_VALUES = ("true", "yes", "y", "t", "1")
DEFAULT_FALSE_VALUES = ("false", "no", "n", "f", "0")
DEFAULT_LIST_SEPARATOR = "|"

# Profile integers are Avro longs.
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# Distinct texts a date or timestamp converter remembers before it starts over.
_CACHE_ENTRIES = 65_536


class CellError(ValueError):
    """A cell's text is not a value of its column's type; ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True, frozen=True)
class StringType:
    name: ClassVar[str] = "string"


@dataclass(slots=True, frozen=True)
class IntegerType:
    name: ClassVar[str] = "integer"


@dataclass(slots=True, frozen=True)
class DecimalType:
    """A number with a fractional part; ``decimal_separator`` is "." or "," (never thousands)."""

    name: ClassVar[str] = "decimal"
    decimal_separator: str = "."


@dataclass(slots=True, frozen=True)
class BooleanType:
    """Texts accepted as true and false, compared case-insensitively."""

    name: ClassVar[str] = "boolean"
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES


@dataclass(slots=True, frozen=True)
class DateType:
    """A calendar date in a ``strftime`` ``format``."""

    name: ClassVar[str] = "date"
    format: str = ISO_DATE


@dataclass(slots=True, frozen=True)
class TimestampType:
    """An instant, ISO 8601 unless ``format`` is set; ``timezone`` is for texts without offset."""

    name: ClassVar[str] = "timestamp"
    format: str | None = None
    timezone: str = "UTC"


@dataclass(slots=True, frozen=True)
class ListType:
    """Several texts in one cell; items are trimmed and empty items dropped."""

    name: ClassVar[str] = "list"
    separator: str = DEFAULT_LIST_SEPARATOR


ValueType: TypeAlias = (
    StringType | IntegerType | DecimalType | BooleanType | DateType | TimestampType | ListType
)
TYPE_NAMES = ("string", "integer", "decimal", "boolean", "date", "timestamp", "list")

Converter: TypeAlias = Callable[[str], AttributeValue]


def compile_converter(value_type: ValueType) -> Converter:
    """A function from a cell's text (stripped, not empty) to its value; raises ``CellError``."""
    if isinstance(value_type, StringType):
        return str
    if isinstance(value_type, IntegerType):
        return _to_integer
    if isinstance(value_type, DecimalType):
        return _decimal_converter(value_type.decimal_separator)
    if isinstance(value_type, BooleanType):
        return _boolean_converter(value_type)
    if isinstance(value_type, DateType):
        return _memoized(_date_parser(value_type.format))
    if isinstance(value_type, TimestampType):
        parse = _timestamp_parser(value_type.format, _zone(value_type.timezone))
        return parse if value_type.format is None else _memoized(parse)
    return _list_converter(value_type.separator)


def check_format(format: str, type_name: str) -> str | None:
    """Why ``format`` cannot parse a date (or timestamp), or None when it can."""
    sample = dt.datetime(2024, 12, 31, 13, 45, 56, 123456, tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.strptime(sample.strftime(format), format)
    except ValueError as exc:
        return f"'{format}' is not a usable {type_name} format ({exc})"
    if parsed.date() != sample.date():
        return (
            f"'{format}' does not hold a full {type_name}; it needs a year, a month and a day,"
            " e.g. '%d/%m/%Y'"
        )
    return None


def _zone(name: str) -> dt.tzinfo:
    # The fixed UTC zone is much cheaper than ZoneInfo("UTC") to attach and to serialize.
    return dt.UTC if name == "UTC" else ZoneInfo(name)


def _to_integer(text: str) -> int:
    # int() also takes "1_000" and non-ASCII digits; a CSV cell with those is a mistake.
    if "_" in text or not text.isascii():
        raise CellError(f"'{text}' is not an integer")
    try:
        value = int(text)
    except ValueError:
        raise CellError(f"'{text}' is not an integer") from None
    if value < _LONG_MIN or value > _LONG_MAX:
        raise CellError(f"{text} is out of range for an integer (64 bits)")
    return value


def _decimal_converter(separator: str) -> Converter:
    other = "," if separator == "." else "."
    hint = (
        "; no thousands separators, and set decimal_separator: ',' if the file uses a decimal comma"
        if separator == "."
        else "; no thousands separators, and the decimal separator of this column is ','"
    )

    def to_decimal(text: str) -> float:
        if other in text or "_" in text or not text.isascii():
            raise CellError(f"'{text}' is not a decimal number{hint}")
        try:
            value = float(text if separator == "." else text.replace(",", "."))
        except ValueError:
            raise CellError(f"'{text}' is not a decimal number{hint}") from None
        if not math.isfinite(value):
            raise CellError(f"'{text}' is not a finite decimal number")
        return value

    return to_decimal


def _boolean_converter(value_type: BooleanType) -> Converter:
    table = {text.lower(): True for text in value_type.true_values}
    table.update({text.lower(): False for text in value_type.false_values})
    accepted = ", ".join([*value_type.true_values, *value_type.false_values])

    def to_boolean(text: str) -> bool:
        value = table.get(text.lower())
        if value is None:
            raise CellError(f"'{text}' is not a boolean; use one of {accepted}")
        return value

    return to_boolean


def _list_converter(separator: str) -> Converter:
    def to_list(text: str) -> tuple[str, ...]:
        return tuple(filter(None, map(str.strip, text.split(separator))))

    return to_list


def _memoized(parse: Converter) -> Converter:
    cache: dict[str, AttributeValue] = {}

    def convert(text: str) -> AttributeValue:
        value = cache.get(text)
        if value is None:
            value = parse(text)
            if len(cache) >= _CACHE_ENTRIES:
                cache.clear()
            cache[text] = value
        return value

    return convert


# --- formats ---------------------------------------------------------------------------------
# Numeric strftime formats (the usual "%d/%m/%Y", "%Y%m%d %H:%M") are compiled into one regular
# expression matched once per cell; strptime does the same plus a lot of Python around it. Other
# directives (month names, weekdays, %z) fall back to strptime.

_NUMERIC_DIRECTIVES = {
    "Y": r"(\d{4})",
    "y": r"(\d{2})",
    "m": r"(\d{1,2})",
    "d": r"(\d{1,2})",
    "H": r"(\d{1,2})",
    "M": r"(\d{1,2})",
    "S": r"(\d{1,2})",
    "f": r"(\d{1,6})",
}
_FIELDS: dict[str, str] = {
    "Y": "year",
    "y": "year",
    "m": "month",
    "d": "day",
    "H": "hour",
    "M": "minute",
    "S": "second",
    "f": "microsecond",
}


def numeric_tokens(format: str) -> list[tuple[str, str]] | None:
    """``format`` as ("literal", text) and ("directive", letter) tokens, or None when it is not
    purely numeric (or lacks a year, a month or a day)."""
    tokens: list[tuple[str, str]] = []
    directives: list[str] = []
    index = 0
    while index < len(format):
        char = format[index]
        if char != "%":
            tokens.append(("literal", char))
            index += 1
            continue
        directive = format[index + 1 : index + 2]
        if directive == "%":
            tokens.append(("literal", "%"))
        elif directive in _NUMERIC_DIRECTIVES and directive not in directives:
            tokens.append(("directive", directive))
            directives.append(directive)
        else:
            return None
        index += 2
    if {_FIELDS[d] for d in directives} & {"year", "month", "day"} != {"year", "month", "day"}:
        return None
    return tokens


def _compile_numeric(format: str) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
    """A regex and the directive of each group, or None when ``format`` is not purely numeric."""
    tokens = numeric_tokens(format)
    if tokens is None:
        return None
    pattern = [re.escape(text) if kind == "literal" else _NUMERIC_DIRECTIVES[text] for kind, text in tokens]
    directives = tuple(text for kind, text in tokens if kind == "directive")
    return re.compile("".join(pattern)), directives


def _numeric_parser(format: str) -> Callable[[str], dt.datetime] | None:
    compiled = _compile_numeric(format)
    if compiled is None:
        return None
    fullmatch = compiled[0].fullmatch
    fields = tuple(_FIELDS[d] for d in compiled[1])
    two_digit_year = "y" in compiled[1]
    microseconds = "f" in compiled[1]

    def parse(text: str) -> dt.datetime:
        match = fullmatch(text)
        if match is None:
            raise ValueError(text)
        parts = dict(zip(fields, map(int, match.groups()), strict=True))
        if two_digit_year:
            # The same pivot as strptime: 69-99 are 1969-1999, 00-68 are 2000-2068.
            parts["year"] += 1900 if parts["year"] >= 69 else 2000
        if microseconds:
            digits = match.group(compiled[1].index("f") + 1)
            parts["microsecond"] *= 10 ** (6 - len(digits))
        return dt.datetime(**parts)  # type: ignore[arg-type]

    return parse


def _datetime_parser(format: str) -> Callable[[str], dt.datetime]:
    numeric = _numeric_parser(format)
    if numeric is not None:
        return numeric

    def parse(text: str) -> dt.datetime:
        return dt.datetime.strptime(text, format)

    return parse


def _date_parser(format: str) -> Converter:
    parse = _datetime_parser(format)
    iso = format == ISO_DATE
    fromisoformat = dt.date.fromisoformat

    def to_date(text: str) -> dt.date:
        if iso and len(text) == 10:
            try:
                return fromisoformat(text)
            except ValueError:
                pass
        try:
            return parse(text).date()
        except ValueError:
            raise CellError(f"'{text}' is not a date in the format {format}") from None

    return to_date


def _timestamp_parser(format: str | None, zone: dt.tzinfo) -> Converter:
    # combine() attaches the zone several times faster than replace(tzinfo=...).
    combine = dt.datetime.combine
    if format is None:
        fromisoformat = dt.datetime.fromisoformat

        def to_iso_timestamp(text: str) -> dt.datetime:
            try:
                value = fromisoformat(text)
            except ValueError:
                raise CellError(
                    f"'{text}' is not an ISO 8601 timestamp (e.g. 2024-05-31T13:45:00+02:00);"
                    " set format: for another layout"
                ) from None
            return value if value.tzinfo is not None else combine(value, value.time(), zone)

        return to_iso_timestamp

    parse = _datetime_parser(format)

    def to_timestamp(text: str) -> dt.datetime:
        try:
            value = parse(text)
        except ValueError:
            raise CellError(f"'{text}' is not a timestamp in the format {format}") from None
        return value if value.tzinfo is not None else combine(value, value.time(), zone)

    return to_timestamp
