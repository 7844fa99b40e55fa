"""A static segment's list: a CSV with a customer_id column."""

from __future__ import annotations

import pytest

from api.static_segments import read_member_ids
from engine.errors import ValidationError


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
