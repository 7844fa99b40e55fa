"""A static segment's list: a CSV with a customer_id column; a worker's local list of members."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from api.static_segments import StaticSegmentsApi, read_member_ids
from engine.errors import ValidationError
from engine.state import CustomerState, to_document


def test_the_customer_id_column_is_read_in_file_order_without_repeats() -> None:
    data = "\ufeffname;customer_id\nAna;c-2\nBo; c-1 \n\nAna again;c-2\n".encode()
    assert read_member_ids(data) == ["c-2", "c-1"]


def test_a_list_without_a_customer_id_column_is_refused() -> None:
    with pytest.raises(ValidationError, match="customer_id column"):
        read_member_ids(b"id\nc-1\n")


def test_an_empty_id_is_refused_with_its_line() -> None:
    with pytest.raises(ValidationError, match="line 3: customer_id must be"):
        read_member_ids(b"customer_id,name\nc-1,a\n,b\n")


def test_a_list_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ValidationError, match="not UTF-8"):
        read_member_ids(b"customer_id\n\xff\xfe\n")


class _Store:
    """Stored documents of partition 0."""

    def __init__(self, documents: dict[bytes, dict[str, Any]]) -> None:
        self.documents = documents

    def customer_keys(self, partition: int) -> list[bytes]:
        return list(self.documents) if partition == 0 else []

    def read(self, partition: int, key: bytes) -> bytes | None:
        return orjson.dumps(self.documents[key])


class _Processor:
    def __init__(self, pending: dict[bytes, CustomerState | None]) -> None:
        self.pending = pending

    def uncommitted(self, partition: int) -> dict[bytes, CustomerState | None]:
        return self.pending if partition == 0 else {}


def test_members_of_batches_being_committed_are_listed_over_what_is_stored() -> None:
    stored = {
        b"a": to_document(CustomerState("a", segments={"vips": 1})),
        b"b": to_document(CustomerState("b", segments={"vips": 1})),  # left, not written yet
        b"c": to_document(CustomerState("c", attributes={"balance": 3})),
    }
    pending = {
        b"b": CustomerState("b"),
        b"d": CustomerState("d", segments={"vips": 2}),  # new, not written yet
        b"e": None,
    }
    worker = SimpleNamespace(store=_Store(stored), processor=_Processor(pending))
    api = StaticSegmentsApi(SimpleNamespace(api=None, worker=worker))  # type: ignore[arg-type]
    assert sorted(api._local(0, "vips", None)) == ["a", "d"]
    assert api._local(1, "vips", None) == []
