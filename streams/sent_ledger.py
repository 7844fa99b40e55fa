"""The dispatchers' record of finished delivery ids: a changelog-backed RocksDB table per partition.

faust's table (``deliveries-sent``) gives the changelog topic, recovery on assignment and
standbys; as with the customer store, Refract produces the changelog records of a batch itself
and writes RocksDB in one batch with the changelog offset recovery resumes from (see
``streams.customer_store``). The table's partition n holds the ids of partition n of
``refract.deliveries``, so it moves with that partition between workers.

Why a changelog and not a rebuild from ``refract.events``: the results there are keyed by
customer and retained forever, so finding a partition's finished ids would mean reading all of
history on every assignment; the changelog is read from the last local offset only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import rocksdict

SENT_TABLE = "deliveries-sent"


@dataclass(slots=True, frozen=True)
class Finished:
    """What happened to a delivery id: its final status (or ``expired``) and the provider's id."""

    status: str
    provider_message_id: str | None
    at_ms: int

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"status": self.status, "provider_message_id": self.provider_message_id, "at": self.at_ms}
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Finished:
        document = orjson.loads(raw)
        return cls(document["status"], document.get("provider_message_id"), int(document.get("at", 0)))


class SentLedger:
    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def changelog_topic(self) -> str:
        name: str = self._table.changelog_topic.get_topic_name()
        return name

    def read(self, partition: int, delivery_id: str) -> Finished | None:
        raw = self._table.data._db_for_partition(partition).get(delivery_id.encode("utf-8"))
        return Finished.from_bytes(raw) if raw is not None else None

    def write(self, partition: int, values: Mapping[bytes, bytes], changelog_offset: int) -> None:
        store = self._table.data
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in values.items():
            batch.put(key, value)
        batch.put(store.offset_key, str(changelog_offset).encode())
        store._db_for_partition(partition).write(batch)
