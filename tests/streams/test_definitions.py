"""The definitions reader's syncs: the latest valid version of each, a bad one skipped and logged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import structlog

from connectors.csv import load_sync
from streams.definitions import DefinitionsReader, definition_record

TOPIC = "tunit.definitions"
SYNC: dict[str, Any] = {"id": "customers", "kind": "attributes", "key": "customer_id", "columns": ["city"]}


def saved(
    version: int, body: Mapping[str, Any], *, deleted: bool = False
) -> tuple[bytes | None, bytes | None]:
    record = definition_record(TOPIC, "sync", str(body["id"]), version, body, deleted=deleted, now_ms=5)
    return record.key, record.value


def test_the_reader_keeps_the_latest_version_of_each_sync_and_drops_deleted_ones() -> None:
    reader = DefinitionsReader("127.0.0.1:1", TOPIC)
    reader.take([saved(1, SYNC), saved(2, {**SYNC, "columns": ["city", "zip"]})])
    stored = reader.syncs["customers"]
    assert (stored.version, stored.updated_at_ms) == (2, 5)
    assert stored.sync == load_sync(orjson.dumps({**SYNC, "columns": ["city", "zip"]}))
    reader.take([saved(3, SYNC, deleted=True)])
    assert reader.syncs == {}


def test_a_sync_that_does_not_validate_is_skipped_with_a_log_and_others_are_kept() -> None:
    reader = DefinitionsReader("127.0.0.1:1", TOPIC)
    bad: dict[str, Any] = {
        "id": "bad",
        "kind": "attributes",
        "key": "customer_id",
        "columns": [{"column": "x", "type": "?"}],
    }
    with structlog.testing.capture_logs() as logs:
        reader.take([saved(1, SYNC), saved(1, bad)])
    assert list(reader.syncs) == ["customers"]
    [skipped] = [entry for entry in logs if entry["event"] == "definitions.sync_skipped"]
    assert (skipped["definition"], skipped["version"]) == ("bad", 1)
    assert skipped["error"].startswith("columns[0].type:")
