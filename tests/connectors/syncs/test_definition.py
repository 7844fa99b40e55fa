"""Syncs stored as definitions: the canonical body, reading it back, and the file fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connectors.csv import MappingError, load_sync
from connectors.syncs.definition import find_sync, sync_body, sync_from_body

CUSTOMERS = """
id: customers
kind: attributes
key: customer_id
columns:
  - first_name
  - {column: balance, type: decimal}
schedule: "0 2 * * *"
source: {folder: /srv/incoming}
"""


def test_two_wordings_of_one_sync_give_the_same_body() -> None:
    spelled_out = yaml.safe_load(CUSTOMERS) | {
        "key": {"column": "customer_id", "field": "customer_id"},
        "delimiter": ",",
        "encoding": "UTF8",
        "schedule": {"cron": "0 2 * * *", "timezone": "UTC"},
    }
    assert sync_body(spelled_out) == sync_body(yaml.safe_load(CUSTOMERS))


def test_a_stored_body_reads_back_as_the_sync_it_was_made_of() -> None:
    body = sync_body(yaml.safe_load(CUSTOMERS))
    stored = sync_from_body("customers", 3, body, 1_700_000_000_000)
    assert stored.sync == load_sync(CUSTOMERS)
    assert stored.as_json() == {
        "id": "customers",
        "version": 3,
        "updated_at_ms": 1_700_000_000_000,
        "definition": body,
    }


def test_the_id_of_a_path_fills_in_a_missing_id_and_must_equal_a_given_one() -> None:
    document = {"kind": "attributes", "key": "customer_id", "columns": ["city"]}
    assert sync_body(document, "branches")["id"] == "branches"
    with pytest.raises(MappingError, match="id: the body says 'other' but the path says 'branches'"):
        sync_body({**document, "id": "other"}, "branches")


def test_a_body_that_does_not_validate_names_the_field() -> None:
    with pytest.raises(MappingError) as caught:
        sync_from_body(
            "customers", 1, {"id": "customers", "kind": "attributes", "key": "id", "columns": 5}, 0
        )
    assert caught.value.field == "columns"
    with pytest.raises(MappingError, match="the definition is 'customers'"):
        sync_from_body("customers", 1, sync_body(yaml.safe_load(CUSTOMERS)) | {"id": "x"}, 0)


def test_a_stored_sync_wins_over_a_file_of_the_same_id_and_a_file_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / "syncs").mkdir()
    (tmp_path / "syncs" / "customers.yaml").write_text(CUSTOMERS.replace("first_name", "nickname"))
    (tmp_path / "syncs" / "broken.yaml").write_text("id: broken\nkind: nothing\n")
    stored = {"customers": sync_from_body("customers", 1, sync_body(yaml.safe_load(CUSTOMERS)), 0)}
    assert find_sync(stored, tmp_path, "customers") == load_sync(CUSTOMERS)
    from_file = find_sync({}, tmp_path, "customers")
    assert from_file is not None and from_file.columns[0].column == "nickname"
    assert find_sync(stored, tmp_path, "nothing") is None
    with pytest.raises(MappingError):
        find_sync(stored, tmp_path, "broken")
