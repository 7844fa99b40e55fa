"""The compiled row encoder writes exactly what the Python path writes, or hands the row back."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.csv import load_sync
from connectors.csv.native import CsvRecords, available, row_encoder
from connectors.csv.plan import RowPlan
from ops.imports.conversion import Converted, Converter
from ops.imports.key_index import index_key

COLUMNS = (
    "customer_id", "name", "email", "city", "born", "seen", "balance", "rate", "accounts", "premium",
    "tags", "login", "joined",
)  # fmt: skip
EVERY_TYPE = """
id: every-type
kind: attributes
key: customer_id
empty_cells: {empty}
columns:
  - {{column: name, transforms: [trim]}}
  - {{column: email, transforms: [trim, lower]}}
  - {{column: city, transforms: [upper]}}
  - {{column: born, type: date, format: "%d/%m/%Y"}}
  - {{column: seen, type: date, format: "%y%m%d"}}
  - {{column: balance, type: decimal}}
  - {{column: rate, type: decimal, decimal_separator: ","}}
  - {{column: accounts, type: integer, default: 0}}
  - {{column: premium, type: boolean, true_values: ["sí", "yes"], false_values: ["no"]}}
  - {{column: tags, type: list, separator: "|"}}
  - {{column: login, type: timestamp}}
  - {{column: joined, type: timestamp, format: "%Y%m%d %H:%M:%S.%f", required: true}}
"""
CAMPAIGN = """
id: loan-offers
kind: campaign_data
campaign: loan-q4
key: customer_id
columns:
  - {column: name, attribute: rate_label, default: "none"}
  - {column: born, type: date, default: 2000-01-31}
  - {column: balance, type: decimal, default: 2.5}
  - {column: tags, type: list, store: false}
"""
RAW_KEY = bytes(range(32))
IMPORT_ID = "20261127-120000-abcdef"
NOW_MS = 1_764_244_800_123


def _pieces(sync_text: str) -> tuple[Any, Converter, RowPlan]:
    sync = load_sync(sync_text)
    positions = {name: COLUMNS.index(name) for name in sync.file_columns}
    plan = RowPlan(sync, positions, len(COLUMNS))
    encoder = row_encoder(plan, import_id=IMPORT_ID, now_ms=NOW_MS, index=True, raw_key=RAW_KEY)
    assert encoder is not None, "the compiled encoder takes this sync"
    return encoder, Converter(sync, COLUMNS, IMPORT_ID, NOW_MS, index=True), plan


def _raw(record: Sequence[str]) -> bytes:
    return hashlib.blake2b("\0".join(record).encode(), digest_size=16, key=RAW_KEY).digest()


def _encode(
    encoder: Any, records: list[list[str]], lines: list[int], get: Any, start: int
) -> tuple[Any, ...]:
    """``encoder.encode`` with its (keys, values) lists as lists of pairs."""
    produced, digests, index_keys, *rest = encoder.encode(records, lines, get, start)
    pairs = [list(zip(*pair, strict=True)) for pair in (produced, digests, index_keys)]
    return (*pairs, *rest)


def _compare(sync_text: str, records: list[list[str]]) -> int:
    """Encode ``records`` both ways and check they agree; answers how many the encoder took."""
    encoder, converter, plan = _pieces(sync_text)
    lines = [index + 2 for index in range(len(records))]
    taken, start = 0, 0
    while start < len(records):
        produced, digests, index_keys, unchanged, rows, stop = _encode(encoder, records, lines, None, start)
        assert unchanged == 0 and rows == len(produced) == len(digests) == stop - start
        for offset, index in enumerate(range(start, stop)):
            record = records[index]
            (outcome,) = converter.convert([(lines[index], record, plan.key_of(record), None)])
            assert isinstance(outcome, Converted), f"the encoder took a row Python refuses: {record}"
            assert outcome.values is not None
            key = record[0].strip()
            assert produced[offset] == (key.encode(), outcome.values[0]), record
            assert digests[offset] == (f"{plan.sync.id}\0{key}".encode(), _raw(record) + outcome.row_digest)
        expected = [
            (index_key(name, value), customer.encode())
            for index in range(start, stop)
            for customer in [records[index][0].strip()]
            for (name, value) in converter.convert([(lines[index], records[index], customer, None)])[
                0
            ].identities  # type: ignore[union-attr]
        ]
        assert index_keys == expected
        taken += stop - start
        start = stop + 1
    return taken


def test_the_compiled_module_is_built_by_the_install() -> None:
    assert available(), "connectors.csv._native is missing: the install builds it (Rust, native/)"


TYPICAL = [
    ["c-1", " Ana ", " Ana@Example.COM ", "Montevideo", "31/12/1999", "240229", "1234.56", "12,5", "3",
     "Sí", "gold| web |", "2026-01-05T12:34:56+00:00", "20240102 03:04:05.5"],
    ["c-2", "María", "maria@example.com", "paysandú", "1/2/2003", "991231", "-0", "0,001", "",
     "no", "", "2026-01-05 12:34:56.123-03:00", "20240102 03:04:05.123456"],
    ["c-3", "", "", "", "", "", "1e16", "", "007", "YES", "|", "2026-01-05", "20240102 23:59:59.0"],
    ["c-4", "O'Brien \"Jr\"", "x@y.z", "ñandú", "29/02/2024", "000101", "0.00001", "-1,5e-7", "-9",
     "yes", "a|b|c", "2026-01-05T12:34Z", "19991231 00:00:00.999999"],
]  # fmt: skip


@pytest.mark.parametrize("empty", ["unset", "keep"])
def test_typical_rows_are_all_encoded_as_the_python_path_encodes_them(empty: str) -> None:
    assert _compare(EVERY_TYPE.format(empty=empty), TYPICAL) == len(TYPICAL)


def test_campaign_data_with_defaults_of_every_kind_is_encoded_as_python_does() -> None:
    empty = [[*row[:1], "", *row[2:4], "", *row[5:6], "", *row[7:]] for row in TYPICAL]
    iso = [
        [*row[:4], date, *row[5:]]
        for row, date in zip(TYPICAL, ["1999-12-31", "2003-2-1", " 2024-02-29 ", "0001-01-01"], strict=True)
    ]
    assert _compare(CAMPAIGN, empty + iso) == 2 * len(TYPICAL)


def test_a_decimal_default_that_is_not_a_finite_number_is_left_to_python() -> None:
    sync = load_sync(CAMPAIGN.replace("default: 2.5", "default: .inf"))
    positions = {name: COLUMNS.index(name) for name in sync.file_columns}
    plan = RowPlan(sync, positions, len(COLUMNS))
    assert row_encoder(plan, import_id=IMPORT_ID, now_ms=NOW_MS, index=True, raw_key=RAW_KEY) is None


def test_rows_python_refuses_stop_the_encoder_at_that_row() -> None:
    bad = [
        ["c-5", "A", "a@b.c", "X", "31/02/2024", "", "", "", "", "", "", "", "20240102 03:04:05.5"],
        ["c-6", "A", "a@b.c", "X", "", "", "1.5.1", "", "", "", "", "", "20240102 03:04:05.5"],
        ["c-7", "A", "a@b.c", "X", "", "", "", "", "9223372036854775808", "", "", "", "20240102 03:04:05.5"],
        ["c-8", "A", "a@b.c", "X", "", "", "", "", "", "maybe", "", "", "20240102 03:04:05.5"],
        ["c-9", "A", "a@b.c", "X", "", "", "", "", "", "", "", "2026-13-05", "20240102 03:04:05.5"],
        ["c-10", "A", "a@b.c", "X", "", "", "", "", "", "", "", "", ""],
        ["", "A", "a@b.c", "X", "", "", "", "", "", "", "", "", "20240102 03:04:05.5"],
        ["c-11", "too few"],
    ]  # fmt: skip
    encoder, _, _ = _pieces(EVERY_TYPE.format(empty="unset"))
    for record in bad:
        *_, stop = _encode(encoder, [TYPICAL[0], record], [2, 3], None, 0)
        assert stop == 1, record
    alternating = [row for pair in zip(TYPICAL, bad[:4], strict=True) for row in pair]
    assert _compare(EVERY_TYPE.format(empty="unset"), alternating) == 4


def test_stored_digests_make_unchanged_rows_produce_nothing() -> None:
    encoder, _, _ = _pieces(EVERY_TYPE.format(empty="unset"))
    _, digests, *_ = _encode(encoder, TYPICAL, [2, 3, 4, 5], None, 0)
    stored = dict(digests)
    # The same text: the raw pre-digest matches. Other text with the same values ("007" is 7,
    # spaces around a number): the row digest matches, and the new raw digest is stored.
    same_values = [list(row) for row in TYPICAL]
    same_values[2][8] = "7"
    same_values[3][8] = " -9 "
    again, new_digests, _, unchanged, rows, stop = _encode(encoder, same_values, [2, 3, 4, 5], stored.get, 0)
    assert (again, unchanged, rows, stop) == ([], 4, 0, 4)
    assert [key for key, _ in new_digests] == [key for key, _ in digests[2:]]
    assert all(value != stored[key] and value[16:] == stored[key][16:] for key, value in new_digests)


def test_strip_and_case_mapping_agree_with_python_on_every_latin_1_and_space_character() -> None:
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    characters = sorted({*map(chr, range(1, 0x100)), *spaces})
    rows = [
        [
            f"c-{index}",
            f"{c}Ab{c}",
            f"{c}X@Y.Z{c}",
            f"{c}ab{c}",
            *TYPICAL[0][4:8],
            f"{c}7{c}" if c.isspace() else "7",
            *TYPICAL[0][9:],
        ]
        for index, c in enumerate(characters)
    ]
    taken = _compare(EVERY_TYPE.format(empty="unset"), rows)
    # Only the spaces beyond Latin-1 go to Python (for lower() and upper()).
    assert taken == len(characters) - sum(ord(c) > 0xFF for c in spaces)


# --- random cells -------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    [
        *"0123456789+-.,eE:/|TZ tzaAbñÑÉßµÿ\"'\\\t\n\x01",
        "\u00a0",
        "\u2003",
        "\u0130",
        "\u03a3",
        "٣",
        "\U0001f600",
    ]
)
_ANY_TEXT = st.text(_ALPHABET, max_size=12)


def _number(draw: Any) -> str:
    value = draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
    return draw(
        st.sampled_from(
            [repr(value), f"{value:.2f}", f"{value:e}", str(int(value)) if abs(value) < 1e18 else "1"]
        )
    )


@st.composite
def _cells(draw: Any) -> list[str]:
    born = draw(st.dates(min_value=dt.date(1, 1, 1)))
    login = draw(
        st.datetimes(
            min_value=dt.datetime(1, 1, 2),
            max_value=dt.datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [dt.UTC, dt.timezone(dt.timedelta(hours=-3)), dt.timezone(dt.timedelta(minutes=345))]
            ),
        )
    )
    joined = draw(st.datetimes(min_value=dt.datetime(1, 1, 1)))
    well_formed = [
        f"c-{draw(st.integers(0, 99))}",
        draw(st.text(max_size=8)),
        draw(st.emails()),
        draw(st.text(max_size=8)),
        f"{born.day}/{born.month:02d}/{born.year:04d}",
        born.strftime("%y%m%d"),
        _number(draw),
        _number(draw).replace(".", ","),
        str(draw(st.integers(-(2**63), 2**63 - 1))),
        draw(st.sampled_from(["SÍ", "yes", "No", "YES"])),
        "|".join(draw(st.lists(st.text(max_size=5), max_size=4))).replace("\x00", ""),
        login.isoformat(
            timespec=draw(st.sampled_from(["minutes", "seconds", "milliseconds", "microseconds"]))
        ),
        f"{joined.year:04d}{joined:%m%d %H:%M:%S.%f}",
    ]
    # Most rows well formed, some with a cell or two of anything.
    mangled = draw(st.sets(st.integers(1, len(COLUMNS) - 1), max_size=2))
    cells = [draw(_ANY_TEXT) if index in mangled else cell for index, cell in enumerate(well_formed)]
    return [cell.replace("\x00", "") for cell in cells]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_cells(), min_size=1, max_size=6), empty=st.sampled_from(["unset", "keep"]))
def test_any_rows_are_encoded_as_python_encodes_them_or_handed_back(
    rows: list[list[str]], empty: str
) -> None:
    _compare(EVERY_TYPE.format(empty=empty), rows)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(_cells(), min_size=1, max_size=4))
def test_any_campaign_rows_are_encoded_as_python_encodes_them_or_handed_back(rows: list[list[str]]) -> None:
    _compare(CAMPAIGN, rows)


# --- the compiled CSV reader ----------------------------------------------------------------------


def _csv_module(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(line, record) of every record the csv module reads in ``text``, blank lines included."""
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    found, previous = [], 0
    for record in records:
        found.append((previous + 1, record))
        previous = records.line_num
    return found


def _compiled(text: str, delimiter: str, block: int) -> list[tuple[int, list[str]]]:
    """The same through ``CsvRecords`` fed ``block`` characters at a time, and the csv module
    for the rest when it hands over (as the import runner does)."""
    parsed = CsvRecords(delimiter, 1)
    found: list[tuple[int, list[str]]] = []
    for start in range(0, len(text), block):
        parsed.feed(text[start : start + block], False)
        found.extend(parsed)
    parsed.feed("", True)
    found.extend(parsed)
    rest = parsed.python_from()
    if rest is not None:
        line, remaining = rest
        found.extend((line + at - 1, record) for at, record in _csv_module(remaining, delimiter))
    return found


_CSV_TEXT = st.lists(
    st.sampled_from(["a", "bc", ",", ";", '"', '""', "\n", "\r", "\r\n", " ", "é", "€"]), max_size=40
)


@settings(max_examples=600, deadline=None)
@given(pieces=_CSV_TEXT, delimiter=st.sampled_from([",", ";"]), block=st.integers(1, 70))
def test_the_compiled_reader_splits_any_text_as_the_csv_module_does(
    pieces: list[str], delimiter: str, block: int
) -> None:
    text = "".join(pieces)
    assert _compiled(text, delimiter, block) == _csv_module(text, delimiter)


def test_the_compiled_reader_hands_over_only_what_it_cannot_take() -> None:
    typical = 'id,name\r\nc-1,"Gil, Ana"\r\n\r\nc-2,"say ""hi""\nthere"\rc-3,x'
    parsed = CsvRecords(",", 1)
    parsed.feed(typical, True)
    assert parsed.python_from() is None
    assert list(parsed) == [
        (1, ["id", "name"]),
        (2, ["c-1", "Gil, Ana"]),
        (3, []),
        (4, ["c-2", 'say "hi"\nthere']),
        (6, ["c-3", "x"]),
    ]
    open_quote = 'id,name\nc-1,"never closed\n'
    parsed = CsvRecords(",", 1)
    parsed.feed(open_quote, True)
    assert next(parsed) == (1, ["id", "name"])
    assert parsed.python_from() == (2, 'c-1,"never closed\n')
    too_long = "id,name\nc-1," + "x" * (csv.field_size_limit() + 1) + "\nc-2,y\n"
    parsed = CsvRecords(",", 1)
    parsed.feed(too_long[:20], False)
    parsed.feed(too_long[20:], False)
    parsed.feed("c-3,z\n", True)  # text fed after the hand-over is the csv module's too
    assert next(parsed) == (1, ["id", "name"])
    assert parsed.python_from() == (2, too_long[len("id,name\n") :] + "c-3,z\n")
