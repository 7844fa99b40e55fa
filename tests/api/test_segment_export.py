"""A segment's members as CSV: the columns asked for, and how values are written in cells."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from api.errors import ApiError
from api.segment_export import (
    PARTITIONS_HEADER,
    ExportColumns,
    SegmentExport,
    cell,
    export_columns,
    member_row,
)
from engine.errors import ValidationError
from engine.state import Contacts, CustomerState, to_document


def test_the_header_is_the_id_then_the_attributes_then_the_contacts_without_repeats() -> None:
    columns = export_columns({"attributes": " first_name,city,first_name", "contacts": "email"})
    assert columns.header == ["customer_id", "first_name", "city", "email"]
    assert export_columns({}).header == ["customer_id"]


@pytest.mark.parametrize("attributes", ["first name", "1st", "city,", "a;b", "x" * 65])
def test_an_attribute_that_is_not_a_name_is_refused(attributes: str) -> None:
    with pytest.raises(ValidationError, match="is not an attribute name") as refused:
        export_columns({"attributes": attributes})
    assert refused.value.field == "attributes"


def test_only_email_and_phone_are_contacts() -> None:
    with pytest.raises(ValidationError, match="'fax' is not a contact; choose from email, phone"):
        export_columns({"contacts": "email,fax"})


def test_values_are_written_as_text_dates_iso_and_lists_joined() -> None:
    assert cell('Ana, "la" grande') == 'Ana, "la" grande'
    assert [cell(12), cell(1.5), cell(True), cell(None)] == ["12", "1.5", "true", ""]
    assert cell(dt.date(1990, 5, 3)) == "1990-05-03"
    assert cell(dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)) == "2026-05-01T12:30:00Z"
    assert cell(("gold", "travel", 3)) == "gold;travel;3"


def test_a_row_is_read_from_the_stored_document_with_missing_values_empty() -> None:
    state = CustomerState(
        "ana",
        attributes={"first_name": "Ana", "born": dt.date(1990, 5, 3), "tags": ("a", "b")},
        contacts=Contacts(email="ana@example.com"),
        segments={"vips": 1},
    )
    columns = ExportColumns(("first_name", "born", "tags", "city"), ("email", "phone"))
    assert member_row(to_document(state), columns) == [
        "ana",
        "Ana",
        "1990-05-03",
        "a;b",
        "",
        "ana@example.com",
        "",
    ]


def check(own: set[int], *answered: str | None) -> None:
    """``_check_complete`` over 4 partitions: each other worker's partitions header, or None if silent."""
    worker = SimpleNamespace(settings=SimpleNamespace(partitions=4))
    export = SegmentExport(SimpleNamespace(api=None, worker=worker))  # type: ignore[arg-type]
    others: list[Any] = [
        (f"http://w{i}", None if listed is None else SimpleNamespace(headers={PARTITIONS_HEADER: listed}))
        for i, listed in enumerate(answered)
    ]
    export._check_complete(own, others)


def test_an_export_covering_every_partition_once_is_complete() -> None:
    check({0, 1}, "2,3")
    check({0, 1, 2, 3}, "")


@pytest.mark.parametrize(
    ("own", "answered", "problem"),
    [
        ({0, 1}, [None], r"workers \['http://w0'\] did not answer"),
        ({0, 1}, ["2"], r"no worker answered for partitions \[3\]"),
        ({0, 1}, ["1,2,3"], r"partitions \[1\] were claimed by two workers"),
    ],
)
def test_an_export_that_would_miss_or_repeat_members_is_refused_before_it_starts(
    own: set[int], answered: list[str | None], problem: str
) -> None:
    with pytest.raises(ApiError, match=problem) as refused:
        check(own, *answered)
    assert (refused.value.status, refused.value.code) == (503, "members_incomplete")


def test_states_of_a_batch_still_being_committed_are_exported_as_the_counts_count_them() -> None:
    # The store has ana (a member) and bob (not yet); a batch being committed made bob a member
    # and took ana out: the export follows the batch, as the member counts already do.
    stored = {
        b"ana": orjson.dumps(to_document(CustomerState("ana", segments={"vips": 1}))),
        b"bob": orjson.dumps(to_document(CustomerState("bob"))),
        b"cid": orjson.dumps(to_document(CustomerState("cid", segments={"vips": 1}))),
    }
    pending = {b"ana": CustomerState("ana"), b"bob": CustomerState("bob", segments={"vips": 2})}
    store = SimpleNamespace(customer_keys=lambda partition: iter(stored), read=lambda p, key: stored[key])
    processor = SimpleNamespace(uncommitted=lambda partition: dict(pending))
    segments: Any = SimpleNamespace(api=None, worker=SimpleNamespace(store=store, processor=processor))
    rows = list(SegmentExport(segments)._rows(0, "vips", ExportColumns((), ())))
    assert sorted(row[0] for row in rows) == ["bob", "cid"]
