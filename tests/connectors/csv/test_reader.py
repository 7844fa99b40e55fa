from __future__ import annotations

import datetime as dt
import io
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.csv import (
    CsvFormatError,
    CsvReader,
    EncodingRefused,
    HeaderRefused,
    NotCsvRefused,
    RowError,
    RowResult,
)
from connectors.csv.encoding import ByteChecker
from engine.events import (
    ConsentUpdate,
    ContactUpdate,
    CustomerErased,
    CustomerUpdate,
    PushToken,
)
from tests.connectors.csv.factories import (
    attributes_of,
    errors,
    make_csv,
    make_sync,
    read_rows,
    results,
)

# --- encodings -----------------------------------------------------------------------------


def test_a_latin_1_file_is_read_correctly() -> None:
    data = make_csv([["1", "Muñoz Peñalver"], ["2", "Hélène"]], encoding="latin-1")

    assert attributes_of(data, make_sync(encoding="latin-1")) == [
        {"name": "Muñoz Peñalver"},
        {"name": "Hélène"},
    ]


def test_a_utf_8_file_with_a_byte_order_mark_is_read_without_it() -> None:
    data = make_csv([["1", "Zoë"]], bom=True)
    reader = CsvReader(io.BytesIO(data), make_sync())

    assert reader.columns == ("id", "name") and reader.encoding == "utf-8-sig"
    assert [row.customer_key for row in results(list(reader))] == ["1"]


def test_utf_8_sig_declared_also_reads_a_file_without_a_byte_order_mark() -> None:
    assert attributes_of(make_csv([["1", "Zoë"]]), make_sync(encoding="utf-8-sig")) == [{"name": "Zoë"}]


def test_a_utf_8_file_with_latin_1_bytes_is_refused_up_front_with_the_byte_offset() -> None:
    data = make_csv([["1", "ok"], ["2", "Muñoz"]], encoding="latin-1")

    with pytest.raises(EncodingRefused) as caught:
        CsvReader(io.BytesIO(data), make_sync())

    assert caught.value.offset == data.index(b"\xf1")
    assert caught.value.line == 3
    assert "byte 17 (line 3, value 0xf1) is not valid UTF-8" in str(caught.value)
    assert "encoding: latin-1" in str(caught.value)


def test_a_stream_that_cannot_seek_is_refused_when_the_bad_byte_is_reached() -> None:
    good = make_csv([[str(n), "x" * 50] for n in range(5000)])
    data = good + "9999,Muñoz\n".encode("latin-1")

    with pytest.raises(EncodingRefused) as caught:
        read_rows(data, make_sync(), seekable=False)

    assert caught.value.offset == len(good) + len("9999,Mu")
    assert caught.value.line == 5002


def test_a_utf_8_sequence_cut_off_by_the_end_of_the_file_is_refused() -> None:
    data = make_csv([["1", "Zoë"]])[:-2]

    with pytest.raises(EncodingRefused):
        CsvReader(io.BytesIO(data), make_sync())


def _verdict(checker: ByteChecker, chunks: list[bytes]) -> tuple[int, int] | None:
    """(offset, line) of the first bad byte ``checker`` finds in ``chunks``, or None."""
    try:
        for chunk in chunks:
            checker.feed(chunk)
        checker.finish()
    except EncodingRefused as refused:
        return (refused.offset, refused.line)
    return None


_UTF8_PIECES = st.sampled_from(
    [b"a", b"\n", b"\xc3\xb1", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xc3", b"\xe2\x82", b"\xff", b"\x80"]
)


@settings(max_examples=400)
@given(pieces=st.lists(_UTF8_PIECES, max_size=40), cuts=st.lists(st.integers(0, 60), max_size=6))
def test_the_compiled_utf_8_check_finds_what_the_decoder_finds_in_any_chunks(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    compiled = _verdict(ByteChecker("utf-8"), chunks)
    assert compiled == _verdict(ByteChecker("utf-8", compiled=False), chunks)
    try:
        data.decode()
    except UnicodeDecodeError as bad:
        assert compiled is not None and compiled[0] == bad.start
    else:
        assert compiled is None


def test_a_byte_order_mark_in_a_file_declared_latin_1_is_refused() -> None:
    with pytest.raises(EncodingRefused, match="set encoding: utf-8"):
        CsvReader(io.BytesIO(make_csv([["1", "a"]], bom=True)), make_sync(encoding="latin-1"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,name\n1,\x00\x01\x02\x03\n", "NUL byte at offset 10 (line 2)"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel (.xlsx)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Excel (.xls)"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\xff\xfei\x00d\x00", "UTF-16"),
        (b"  <!DOCTYPE html><html><body>Sign in</body></html>", "web page"),
    ],
)
def test_a_binary_or_non_csv_file_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(NotCsvRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        CsvReader(io.BytesIO(data), make_sync())


def test_the_readers_leaves_the_callers_stream_open_and_reports_progress() -> None:
    data = make_csv([["1", "a"], ["2", "b"]])
    stream = io.BytesIO(data)

    reader = CsvReader(stream, make_sync())
    rows = list(reader)
    del reader

    assert not stream.closed
    assert len(rows) == 2


def test_progress_counts_rows_and_bytes_read() -> None:
    data = make_csv([["1", "a"], ["2", "b"]])
    reader = CsvReader(io.BytesIO(data), make_sync())

    list(reader)

    assert reader.rows_read == 2 and reader.bytes_read == len(data)


# --- header --------------------------------------------------------------------------------


def test_a_header_without_the_mapped_columns_is_refused_up_front_naming_them() -> None:
    sync = make_sync(columns=["name", "city", "age"])
    data = make_csv([["1", "Ana"]], header=["id", "name"])

    with pytest.raises(HeaderRefused) as caught:
        CsvReader(io.BytesIO(data), sync)

    assert caught.value.missing == ("city", "age")
    assert "the header lacks 'city', 'age'" in str(caught.value)


def test_a_header_refusal_points_out_a_difference_of_case() -> None:
    with pytest.raises(HeaderRefused, match="the file has 'Name' for 'name'"):
        CsvReader(io.BytesIO(make_csv([], header=["id", "Name"])), make_sync())


def test_a_header_refusal_points_out_a_wrong_delimiter() -> None:
    data = make_csv([["1", "a"]], delimiter=";")

    with pytest.raises(HeaderRefused, match="seems delimited by ';'"):
        CsvReader(io.BytesIO(data), make_sync())


def test_unknown_extra_columns_are_allowed_and_listed() -> None:
    data = make_csv([["1", "Ana", "x", "y"]], header=["id", "name", "notes", "branch"])
    reader = CsvReader(io.BytesIO(data), make_sync())

    assert reader.unknown_columns == ("notes", "branch")
    assert len(results(list(reader))) == 1


def test_a_mapped_column_that_appears_twice_is_refused() -> None:
    data = make_csv([], header=["id", "name", "name"])

    with pytest.raises(HeaderRefused, match="appears 2 times in the header \\(positions 2, 3\\)"):
        CsvReader(io.BytesIO(data), make_sync())


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(HeaderRefused, match="the file is empty"):
        CsvReader(io.BytesIO(b"\n\n"), make_sync())


def test_header_names_are_matched_without_surrounding_spaces() -> None:
    data = make_csv([["1", "Ana"]], header=[" id ", "name "])

    assert attributes_of(data, make_sync()) == [{"name": "Ana"}]


def test_a_file_without_header_uses_the_names_the_sync_gives() -> None:
    sync = make_sync(header=["id", "name"])

    rows = read_rows(make_csv([["1", "Ana"], ["2", "Bo"]], header=None), sync)

    assert [(row.line, row.customer_key) for row in results(rows)] == [(1, "1"), (2, "2")]


def test_a_file_with_a_header_read_as_headerless_is_refused() -> None:
    with pytest.raises(HeaderRefused, match="remove header:"):
        CsvReader(io.BytesIO(make_csv([["1", "a"]])), make_sync(header=["id", "name"]))


# --- rows ----------------------------------------------------------------------------------


def test_bad_rows_are_reported_with_line_and_column_while_good_rows_still_yield() -> None:
    sync = make_sync(
        columns=[
            "name",
            {"column": "age", "type": "integer"},
            {"column": "born", "type": "date"},
        ]
    )
    data = make_csv(
        [
            ["1", "Ana", "34", "1990-01-02"],
            ["2", "Bo", "old", "1990-13-01"],
            ["3", "Cy", "40", "1984-05-06"],
        ],
        header=["id", "name", "age", "born"],
    )

    rows = read_rows(data, sync)

    assert [row.customer_key for row in results(rows)] == ["1", "3"]
    assert errors(rows) == [
        RowError(3, "age", "old", "'old' is not an integer"),
        RowError(3, "born", "1990-13-01", "'1990-13-01' is not a date in the format %Y-%m-%d"),
    ]


def test_line_numbers_count_blank_lines_and_quoted_line_breaks() -> None:
    data = b'id,name\n1,"two\nlines"\n\n2,x\n'

    rows = read_rows(data, make_sync())

    assert [(row.line, row.customer_key) for row in results(rows)] == [(2, "1"), (5, "2")]
    assert results(rows)[0].events == (CustomerUpdate(set={"name": "two\nlines"}),)


def test_a_row_with_the_wrong_number_of_fields_is_reported_as_a_whole() -> None:
    rows = read_rows(b"id,name\n1,a,extra\n2\n3,c\n", make_sync())

    assert errors(rows) == [
        RowError(2, None, None, "expected 2 fields, found 3; check the delimiter and quoting"),
        RowError(3, None, None, "expected 2 fields, found 1; check the delimiter and quoting"),
    ]
    assert [row.customer_key for row in results(rows)] == ["3"]


def test_a_row_without_a_key_is_reported() -> None:
    rows = read_rows(make_csv([[" ", "a"]]), make_sync())

    assert rows == [RowError(2, "id", "", "the key is empty; every row needs one")]


def test_a_required_empty_cell_is_an_error_and_a_default_fills_an_empty_cell() -> None:
    sync = make_sync(
        columns=[
            {"column": "name", "required": True},
            {"column": "tier", "default": "standard"},
            {"column": "score", "type": "integer", "default": 0},
        ]
    )
    header = ["id", "name", "tier", "score"]

    rows = read_rows(make_csv([["1", "", "", ""], ["2", "Bo", "", " "]], header=header), sync)

    assert errors(rows) == [RowError(2, "name", "", "a value is required")]
    assert results(rows)[0].events == (CustomerUpdate(set={"name": "Bo", "tier": "standard", "score": 0}),)


def test_an_empty_optional_cell_unsets_the_attribute_by_default() -> None:
    sync = make_sync(columns=["name", "city"])

    (row,) = read_rows(make_csv([["1", "Ana", ""]], header=["id", "name", "city"]), sync)

    assert isinstance(row, RowResult)
    assert row.events == (CustomerUpdate(set={"name": "Ana"}, unset=("city",)),)


def test_an_empty_optional_cell_keeps_the_attribute_when_the_sync_says_keep() -> None:
    sync = make_sync(columns=["name", "city"], empty_cells="keep")

    (row,) = read_rows(make_csv([["1", "Ana", ""]], header=["id", "name", "city"]), sync)

    assert isinstance(row, RowResult)
    assert row.events == (CustomerUpdate(set={"name": "Ana"}),)


def test_transforms_apply_in_order_before_conversion_and_strings_keep_spaces_otherwise() -> None:
    sync = make_sync(
        columns=[
            {"column": "email", "transforms": ["trim", "lower"]},
            {"column": "code", "transforms": ["upper"]},
            {"column": "tags", "type": "list", "transforms": ["lower"]},
            "note",
            {"column": "vip", "type": "boolean"},
        ]
    )
    header = ["id", "email", "code", "tags", "note", "vip"]

    values = attributes_of(
        make_csv([["1", "  Ana@Mail.COM ", "es-1", "Gold|VIP", " as is ", " yes "]], header=header),
        sync,
    )

    assert values == [
        {
            "email": "ana@mail.com",
            "code": "ES-1",
            "tags": ("gold", "vip"),
            "note": " as is ",
            "vip": True,
        }
    ]


def test_calculated_columns_compute_from_the_row_and_store_false_columns_are_not_written() -> None:
    sync = make_sync(
        columns=[
            {"column": "first", "store": False},
            {"column": "last", "store": False},
            {"column": "balance", "type": "decimal"},
            {"attribute": "full_name", "expression": 'first + " " + last'},
            {"attribute": "cents", "expression": "balance * 100", "type": "decimal"},
        ]
    )
    header = ["id", "first", "last", "balance"]

    values = attributes_of(make_csv([["1", "Ana", "Gil", "12.34"]], header=header), sync)

    assert values == [{"balance": 12.34, "full_name": "Ana Gil", "cents": 1234.0}]


def test_a_calculation_that_fails_is_reported_on_its_attribute() -> None:
    sync = make_sync(
        columns=[
            {"column": "total", "type": "integer"},
            {"column": "count", "type": "integer"},
            {"attribute": "average", "expression": "total / count"},
        ]
    )

    rows = read_rows(make_csv([["1", "10", "0"]], header=["id", "total", "count"]), sync)

    assert rows == [RowError(2, "average", None, "division by zero")]


def test_a_required_calculation_over_empty_cells_is_reported() -> None:
    sync = make_sync(
        columns=[
            {"column": "count", "type": "integer"},
            {"attribute": "double", "expression": "count * 2", "required": True},
        ]
    )

    rows = read_rows(make_csv([["1", ""]], header=["id", "count"]), sync)

    assert rows == [RowError(2, "double", None, "calculated from empty cells; required")]


def test_a_key_on_email_is_trimmed_and_lowercased() -> None:
    sync = make_sync(key={"column": "mail", "field": "email"})

    rows = read_rows(make_csv([[" Ana@Mail.com ", "Ana"]], header=["mail", "name"]), sync)

    assert [row.customer_key for row in results(rows)] == ["ana@mail.com"]


def test_other_delimiters_are_read() -> None:
    data = make_csv([["1", "a;b"]], delimiter="\t")

    assert attributes_of(data, make_sync(delimiter="\t")) == [{"name": "a;b"}]


def test_a_field_over_the_csv_size_limit_stops_the_file_naming_the_line() -> None:
    data = b"id,name\n1,a\n2," + b"x" * 200_000 + b"\n"

    with pytest.raises(CsvFormatError) as caught:
        read_rows(data, make_sync())

    assert caught.value.line == 3


# --- digests -------------------------------------------------------------------------------

DIGEST_SCRIPT = """
import io, sys
from connectors.csv import CsvReader, load_sync
sync = load_sync(sys.argv[1])
data = b"id,name,born,seen,balance\\n1,Ana,2024-01-02,2024-01-02T03:04:05+01:00,1.5\\n"
print(next(iter(CsvReader(io.BytesIO(data), sync))).digest.hex())
"""
DIGEST_SYNC = """
id: s
kind: attributes
key: id
columns: [name, {column: born, type: date}, {column: seen, type: timestamp},
          {column: balance, type: decimal}]
"""


def test_digests_are_the_same_across_processes() -> None:
    root = Path(__file__).resolve().parents[3]

    def digest(seed: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT, DIGEST_SYNC],
            cwd=root,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    assert digest("1") == digest("2")
    assert len(bytes.fromhex(digest("3"))) == 16


def test_a_digest_is_stable_and_changes_only_with_the_values_the_sync_reads() -> None:
    sync = make_sync(columns=["name", {"column": "age", "type": "integer"}])
    header = ["id", "name", "age", "ignored"]

    def digest(*row: str) -> bytes:
        (result,) = results(read_rows(make_csv([list(row)], header=header), sync))
        return result.digest

    base = digest("1", "Ana", "34", "x")
    assert digest("1", "Ana", "34", "x") == base
    assert digest("1", "Ana", "034", "y") == base  # same values, unread column changed
    assert digest("1", "Ana", "35", "x") != base
    assert digest("1", "Ann", "34", "x") != base
    assert digest("1", "Ana", "", "x") != base


def test_a_digest_changes_when_the_mapping_changes_but_not_with_its_source() -> None:
    data = make_csv([["1", "Ana"]])

    def digest(**overrides: object) -> bytes:
        (result,) = results(read_rows(data, make_sync(**overrides)))
        return result.digest

    base = digest()
    assert digest(source={"folder": "/in"}, schedule="0 2 * * *") == base
    assert digest(columns=[{"column": "name", "attribute": "full_name"}]) != base
    assert digest(id="other") != base


# --- kinds ---------------------------------------------------------------------------------


def test_an_attributes_row_sets_typed_attributes() -> None:
    sync = make_sync(
        columns=[
            "name",
            {"column": "born", "type": "date", "format": "%d/%m/%Y"},
            {"column": "balance", "type": "decimal", "decimal_separator": ","},
            {"column": "seen", "type": "timestamp"},
        ]
    )
    header = ["id", "name", "born", "balance", "seen"]

    (row,) = read_rows(
        make_csv([["7", "Ana", "02/01/1990", "-1,25", "2024-05-01T10:00:00"]], header=header),
        sync,
    )

    assert row == RowResult(
        line=2,
        customer_key="7",
        events=(
            CustomerUpdate(
                set={
                    "name": "Ana",
                    "born": dt.date(1990, 1, 2),
                    "balance": -1.25,
                    "seen": dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC),
                }
            ),
        ),
        digest=row.digest,  # type: ignore[union-attr]
    )


def test_a_contacts_row_updates_email_phone_and_push_tokens() -> None:
    sync = make_sync(
        kind="contacts",
        columns=[
            {"column": "email", "transforms": ["trim"]},
            "phone",
            {"column": "android", "attribute": "push_token_android"},
            {"column": "ios", "attribute": "push_token_ios"},
        ],
    )
    header = ["id", "email", "phone", "android", "ios"]
    data = make_csv(
        [["1", " ana@mail.com", "+34 600 000 000", "tok-a", ""], ["2", "", "", "", ""]],
        header=header,
    )

    first, second = (row.events for row in results(read_rows(data, sync)))

    assert first == (
        ContactUpdate(
            email="ana@mail.com",
            phone="+34 600 000 000",
            add_push_tokens=(PushToken("android", "tok-a"),),
        ),
    )
    assert second == (ContactUpdate(email="", phone=""),)  # "" clears


def test_a_contacts_row_with_a_bad_email_or_phone_is_reported() -> None:
    sync = make_sync(kind="contacts", columns=["email", "phone"])

    rows = read_rows(make_csv([["1", "ana.mail.com", "call me"]], header=["id", "email", "phone"]), sync)

    assert [(e.column, e.value) for e in errors(rows)] == [
        ("email", "ana.mail.com"),
        ("phone", "call me"),
    ]


def test_product_rows_of_a_customer_fold_into_lists() -> None:
    sync = make_sync(
        kind="products",
        columns=[
            {"column": "product", "attribute": "products"},
            {"column": "channels", "type": "list"},
        ],
    )
    data = make_csv(
        [
            ["1", "credit_card", "web"],
            ["1", "mortgage", "branch|web"],
            ["1", "credit_card", ""],
            ["2", "savings", ""],
        ],
        header=["id", "product", "channels"],
    )

    rows = read_rows(data, sync)

    assert [(r.line, r.customer_key, r.events) for r in results(rows)] == [
        (
            2,
            "1",
            (CustomerUpdate(set={"products": ("credit_card", "mortgage"), "channels": ("web", "branch")}),),
        ),
        (5, "2", (CustomerUpdate(set={"products": ("savings",)}, unset=("channels",)),)),
    ]


def test_product_rows_of_a_customer_that_come_back_later_are_refused() -> None:
    sync = make_sync(kind="products", columns=[{"column": "product", "attribute": "products"}])
    data = make_csv(
        [["1", "card"], ["2", "loan"], ["1", "mortgage"], ["3", "savings"]],
        header=["id", "product"],
    )

    rows = read_rows(data, sync)

    assert [(r.customer_key, r.events[0].set) for r in results(rows)] == [  # type: ignore[union-attr]
        ("1", {"products": ("card",)}),
        ("2", {"products": ("loan",)}),
        ("3", {"products": ("savings",)}),
    ]
    (error,) = errors(rows)
    assert (error.line, error.column, error.value) == (4, "id", "1")
    assert "must be contiguous" in error.reason and "sort the file by id" in error.reason


def test_a_customer_with_a_bad_product_row_keeps_its_products_untouched() -> None:
    sync = make_sync(
        kind="products",
        columns=[{"column": "product", "attribute": "products", "required": True}],
    )
    data = make_csv([["1", "card"], ["1", ""], ["1", "loan"], ["2", "savings"]], header=["id", "product"])

    rows = read_rows(data, sync)

    assert [r.customer_key for r in results(rows)] == ["2"]
    assert errors(rows) == [
        RowError(3, "product", "", "a value is required"),
        RowError(2, None, None, "not imported: line 3 of the same customer is invalid"),
        RowError(4, None, None, "not imported: line 3 of the same customer is invalid"),
    ]


def test_product_digests_change_when_a_customers_list_changes() -> None:
    sync = make_sync(kind="products", columns=[{"column": "product", "attribute": "products"}])

    def digest(*products: str) -> bytes:
        data = make_csv([["1", p] for p in products], header=["id", "product"])
        (row,) = results(read_rows(data, sync))
        return row.digest

    assert digest("card", "loan") == digest("card", "loan")
    assert digest("card", "loan") != digest("card")


def test_a_campaign_data_row_is_scoped_to_its_campaign() -> None:
    sync = make_sync(
        kind="campaign_data",
        campaign="loan-2024",
        columns=[{"column": "rate", "type": "decimal"}],
    )

    (row,) = read_rows(make_csv([["1", "5.25"]], header=["id", "rate"]), sync)

    assert isinstance(row, RowResult)
    assert row.events == (CustomerUpdate(set={"rate": 5.25}, campaign_id="loan-2024"),)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"type": "all"}, ConsentUpdate(opted_in=False)),
        ({"type": "channel", "value": "sms"}, ConsentUpdate(opted_in=False, channel="sms")),
        ({"type": "campaign", "value": "c1"}, ConsentUpdate(opted_in=False, campaign_id="c1")),
        ({"type": "category", "value": "news"}, ConsentUpdate(opted_in=False, category="news")),
    ],
)
def test_an_unsubscribe_row_opts_out_in_its_scope(scope: dict[str, str], expected: ConsentUpdate) -> None:
    sync = make_sync(kind="unsubscribes", columns=None, scope=scope)

    (row,) = read_rows(make_csv([["1"]], header=["id"]), sync)

    assert isinstance(row, RowResult) and row.events == (expected,)


def test_an_unsubscribe_scope_read_from_a_column_is_checked_per_row() -> None:
    sync = make_sync(kind="unsubscribes", columns=None, scope={"type": "channel", "column": "ch"})
    data = make_csv([["1", "Email"], ["2", "fax"]], header=["id", "ch"])

    rows = read_rows(data, sync)

    assert [r.events for r in results(rows)] == [(ConsentUpdate(opted_in=False, channel="email"),)]
    assert errors(rows) == [RowError(3, "ch", "fax", "not a channel; use one of email, sms, push")]


def test_a_removals_row_erases_the_customer() -> None:
    sync = make_sync(kind="removals", columns=None, reason="account closed")

    rows = read_rows(make_csv([["1"], ["2"]], header=["id"]), sync)

    assert [(r.customer_key, r.events) for r in results(rows)] == [
        ("1", (CustomerErased(reason="account closed"),)),
        ("2", (CustomerErased(reason="account closed"),)),
    ]


CELLS = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(CELLS, min_size=1, max_size=8), max_size=6))
def test_any_text_in_any_cell_gives_results_or_row_errors_never_an_exception(
    rows: list[list[str]],
) -> None:
    sync = make_sync(
        columns=[
            {"column": "a", "type": "integer"},
            {"column": "b", "type": "decimal"},
            {"column": "c", "type": "boolean"},
            {"column": "d", "type": "date", "format": "%d/%m/%Y"},
            {"column": "e", "type": "timestamp"},
            {"column": "f", "type": "list", "transforms": ["upper"]},
            {"attribute": "g", "expression": "a * 2 + b"},
        ]
    )
    header = ["id", "a", "b", "c", "d", "e", "f"]

    read = read_rows(make_csv(rows, header=header), sync)

    assert all(isinstance(row, RowResult | RowError) for row in read)
    assert all(isinstance(row.line, int) and row.line >= 2 for row in read)
