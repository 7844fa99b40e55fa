"""The customer state store: faust's changelog-backed RocksDB table, written once per batch.

faust gives the table its changelog topic, recovery on assignment, standby replicas and
rebalancing. Writing through ``table[key] = value`` would cost one changelog send and one
RocksDB put per event (~250 µs, see PERFORMANCE.md); instead the processor produces the
changelog records of a whole batch itself and then writes them here in one RocksDB batch, with
the changelog offset faust's recovery resumes from. The records are exactly what faust would have
written (raw key, raw value, same partition), so recovery and standbys read them unchanged.

Order matters for crash safety: the batch's outputs acked by Kafka -> its changelog acked ->
RocksDB written -> source offsets committed (by faust, after the batch returns). A crash between
any two steps is repaired by recovery (changelog ahead of RocksDB) or by replaying events (source
offset behind state; outputs already written are written again with the same ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import rocksdict
from faust.types import TP

from streams import metrics

CUSTOMERS_TABLE = "customers"
# Per partition: the segment versions every customer of the partition was evaluated for (JSON).
# It travels in the changelog like a state, so a partition's next owner knows it too.
SEGMENTS_EVALUATED_KEY = b"\x00segments-evaluated"
# Per partition: how many campaign runs reached each funnel stage (JSON campaign -> arm -> stage
# -> count), written in the same batch as the states whose runs moved, so replays count nothing twice.
FUNNEL_COUNTS_KEY = b"\x00funnel-counts"


class CustomerStore:
    def __init__(self, table: Any) -> None:
        self._table = table
        store = table.data
        apply_batch = store.apply_changelog_batch

        def counted_apply(batch: Iterable[Any], to_key: Any, to_value: Any) -> None:
            records = list(batch)
            metrics.CHANGELOG_RESTORED.inc(len(records))
            apply_batch(records, to_key, to_value)

        store.apply_changelog_batch = counted_apply

    @property
    def changelog_topic(self) -> str:
        name: str = self._table.changelog_topic.get_topic_name()
        return name

    def read(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self._table.data._db_for_partition(partition).get(key)
        return value

    def customer_keys(self, partition: int) -> Iterator[bytes]:
        """The customer ids stored in a partition (a RocksDB snapshot iterator: later writes are unseen)."""
        store = self._table.data
        offset_key = store.offset_key
        # keys(), not iteration: iterating a raw-mode Rdict directly fails.
        for key in store._db_for_partition(partition).keys():  # noqa: SIM118
            if key != offset_key and not key.startswith(b"\x00"):
                yield key

    def write(self, partition: int, values: Mapping[bytes, bytes | None], changelog_offset: int) -> None:
        """Write one partition's changed states (None deletes) and the changelog offset they reach."""
        store = self._table.data
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in values.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(store.offset_key, str(changelog_offset).encode())
        store._db_for_partition(partition).write(batch)

    def persisted_offset(self, partition: int) -> int | None:
        offset: int | None = self._table.data.persisted_offset(TP(self.changelog_topic, partition))
        return offset
