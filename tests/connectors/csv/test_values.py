from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.csv.values import (
    BooleanType,
    CellError,
    DateType,
    DecimalType,
    IntegerType,
    ListType,
    StringType,
    TimestampType,
    ValueType,
    check_format,
    compile_converter,
)


def convert(value_type: ValueType, text: str) -> object:
    return compile_converter(value_type)(text)


def reason(value_type: ValueType, text: str) -> str:
    with pytest.raises(CellError) as caught:
        convert(value_type, text)
    return caught.value.reason


def test_a_string_is_kept_as_it_is() -> None:
    assert convert(StringType(), "  Ana María ") == "  Ana María "


@pytest.mark.parametrize(("text", "value"), [("42", 42), ("-7", -7), ("+3", 3), ("007", 7)])
def test_integers_are_read_in_base_ten(text: str, value: int) -> None:
    assert convert(IntegerType(), text) == value


@pytest.mark.parametrize("text", ["4.0", "1e3", "1_000", "1,000", "٣", "forty"])
def test_anything_but_plain_digits_is_not_an_integer(text: str) -> None:
    assert "is not an integer" in reason(IntegerType(), text)


def test_an_integer_beyond_64_bits_is_refused() -> None:
    assert "out of range" in reason(IntegerType(), str(2**63))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_every_64_bit_integer_reads_back_from_its_text(value: int) -> None:
    assert convert(IntegerType(), str(value)) == value


@pytest.mark.parametrize(("text", "value"), [("12.50", 12.5), ("-0.5", -0.5), ("3", 3.0)])
def test_decimals_use_a_dot_by_default(text: str, value: float) -> None:
    assert convert(DecimalType(), text) == value


def test_a_decimal_comma_is_refused_with_a_hint_unless_declared() -> None:
    assert "decimal_separator: ','" in reason(DecimalType(), "12,5")
    assert convert(DecimalType(decimal_separator=","), "12,5") == 12.5


@pytest.mark.parametrize("text", ["1.234,5", "1,234.5"])
def test_a_decimal_with_thousands_separators_is_refused(text: str) -> None:
    assert "no thousands separators" in reason(DecimalType(decimal_separator=","), text)


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity"])
def test_a_decimal_must_be_finite(text: str) -> None:
    reason(DecimalType(), text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[("true", True), ("Yes", True), ("Y", True), ("1", True), ("t", True)],
        *[("FALSE", False), ("no", False), ("n", False), ("0", False), ("f", False)],
    ],
)
def test_booleans_accept_the_usual_texts_in_any_case(text: str, value: bool) -> None:
    assert convert(BooleanType(), text) is value


def test_boolean_texts_can_be_replaced_for_other_languages() -> None:
    spanish = BooleanType(true_values=("sí", "si"), false_values=("no",))

    assert convert(spanish, "SÍ") is True and convert(spanish, "No") is False
    assert "use one of sí, si, no" in reason(spanish, "yes")


def test_an_iso_date_is_the_default() -> None:
    assert convert(DateType(), "2024-02-29") == dt.date(2024, 2, 29)


@pytest.mark.parametrize(
    ("date_format", "text"),
    [
        ("%d/%m/%Y", "29/02/2024"),
        ("%d/%m/%Y", "29/2/2024"),
        ("%m/%d/%Y", "02/29/2024"),
        ("%Y%m%d", "20240229"),
        ("%d.%m.%y", "29.02.24"),
        ("%d %b %Y", "29 Feb 2024"),
        ("%Y-%m-%d", "2024-2-29"),
    ],
)
def test_dates_are_read_in_their_format(date_format: str, text: str) -> None:
    assert convert(DateType(format=date_format), text) == dt.date(2024, 2, 29)


def test_two_digit_years_pivot_like_strptime() -> None:
    short = DateType(format="%d/%m/%y")

    assert convert(short, "01/01/68") == dt.date(2068, 1, 1)
    assert convert(short, "01/01/69") == dt.date(1969, 1, 1)


@given(st.dates(min_value=dt.date(1000, 1, 1)))
def test_the_compiled_date_parser_agrees_with_strptime(value: dt.date) -> None:
    for date_format in ("%d/%m/%Y", "%Y%m%d", "%m-%d-%Y"):
        text = value.strftime(date_format)
        expected = dt.datetime.strptime(text, date_format).date()
        assert convert(DateType(format=date_format), text) == expected


@pytest.mark.parametrize("text", ["30/02/2024", "2024-02-29", "29/02", "tomorrow"])
def test_a_text_not_in_the_format_or_not_a_real_date_is_refused(text: str) -> None:
    assert "is not a date in the format %d/%m/%Y" in reason(DateType(format="%d/%m/%Y"), text)


def test_an_iso_timestamp_keeps_its_offset_and_gets_the_zone_when_it_has_none() -> None:
    madrid = TimestampType(timezone="Europe/Madrid")

    with_offset = convert(madrid, "2024-06-01T10:00:00+02:00")
    without = convert(madrid, "2024-06-01 10:00:00")
    utc = convert(TimestampType(), "2024-06-01T08:00:00Z")

    assert with_offset == without == utc
    assert without == dt.datetime(2024, 6, 1, 10, tzinfo=ZoneInfo("Europe/Madrid"))


def test_a_timestamp_in_a_format_is_read_in_the_columns_zone() -> None:
    value = convert(TimestampType(format="%d/%m/%Y %H:%M:%S.%f", timezone="UTC"), "1/2/2024 3:04:05.5")

    assert value == dt.datetime(2024, 2, 1, 3, 4, 5, 500000, tzinfo=dt.UTC)


def test_a_text_that_is_not_a_timestamp_is_refused() -> None:
    assert "not an ISO 8601 timestamp" in reason(TimestampType(), "yesterday")
    assert "in the format %d/%m/%Y %H:%M" in reason(TimestampType(format="%d/%m/%Y %H:%M"), "x")


def test_a_list_splits_on_its_separator_trims_items_and_drops_empty_ones() -> None:
    assert convert(ListType(), " gold | |silver|") == ("gold", "silver")
    assert convert(ListType(separator=";"), "a;b") == ("a", "b")


@pytest.mark.parametrize(("date_format", "usable"), [("%d/%m/%Y", True), ("%H:%M", False)])
def test_a_format_must_hold_a_full_date(date_format: str, usable: bool) -> None:
    assert (check_format(date_format, "date") is None) is usable
