"""Segment member counts per partition follow the memberships the processor writes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import orjson

from engine.state import CustomerState, to_document
from streams import metrics
from streams.segment_counts import SEGMENT_COUNTS_KEY, SegmentCounts


class MemoryStore:
    """The two reads SegmentCounts makes of the customer store, over dicts."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[bytes, bytes]] = {}

    def read(self, partition: int, key: bytes) -> bytes | None:
        return self.partitions.get(partition, {}).get(key)

    def customer_keys(self, partition: int) -> Iterator[bytes]:
        return (key for key in self.partitions.get(partition, {}) if not key.startswith(b"\x00"))

    def write(self, partition: int, values: Mapping[bytes, bytes | None]) -> None:
        stored = self.partitions.setdefault(partition, {})
        for key, value in values.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = value


def customer(customer_id: str, *segments: str) -> CustomerState:
    return CustomerState(customer_id, segments={segment: 1 for segment in segments})


def commit(counts: SegmentCounts, store: MemoryStore, records: dict[int, bytes]) -> None:
    written = {partition: {SEGMENT_COUNTS_KEY: record} for partition, record in records.items()}
    for partition, values in written.items():
        store.write(partition, values)
    counts.written(written)


def test_entries_and_exits_adjust_the_counts_of_their_partition() -> None:
    store = MemoryStore()
    counts = SegmentCounts(store)
    commit(counts, store, counts.prepare([(1, None, customer("c", "rich"))]))
    records = counts.prepare(
        [
            (0, None, customer("a", "rich")),
            (0, customer("b"), customer("b", "rich", "vip")),
            (1, customer("c", "rich"), customer("c", "vip")),
        ]
    )
    assert {p: orjson.loads(r) for p, r in records.items()} == {0: {"rich": 2, "vip": 1}, 1: {"vip": 1}}
    commit(counts, store, records)
    assert counts.totals([0, 1]) == {"rich": 2, "vip": 2}


def test_a_state_written_with_the_same_memberships_writes_no_count() -> None:
    counts = SegmentCounts(MemoryStore())
    same = customer("a", "rich")
    changed_attribute = CustomerState("a", attributes={"x": 1}, segments={"rich": 1})
    assert counts.prepare([(0, same, same), (0, same, changed_attribute)]) == {}


def test_a_batch_prepared_again_after_a_crash_counts_once() -> None:
    store = MemoryStore()
    commit(SegmentCounts(store), store, SegmentCounts(store).prepare([(0, None, customer("a", "rich"))]))
    batch = [(0, customer("b"), customer("b", "rich"))]
    SegmentCounts(store).prepare(batch)  # prepared, then the worker died before writing it
    again = SegmentCounts(store)
    commit(again, store, again.prepare(batch))
    assert again.totals([0]) == {"rich": 2}


def test_a_batch_prepared_before_the_previous_is_written_counts_on_top_of_it() -> None:
    store = MemoryStore()
    counts = SegmentCounts(store)
    first = counts.prepare([(0, None, customer("a", "rich"))])
    second = counts.prepare([(0, None, customer("b", "rich"))])
    commit(counts, store, first)
    assert counts.totals([0]) == {"rich": 2}  # the second batch's counts, not the store's yet
    commit(counts, store, second)
    assert orjson.loads(store.read(0, SEGMENT_COUNTS_KEY) or b"") == {"rich": 2}


def test_a_segment_with_no_members_left_is_dropped_from_the_record() -> None:
    store = MemoryStore()
    counts = SegmentCounts(store)
    commit(counts, store, counts.prepare([(0, None, customer("a", "rich"))]))
    commit(counts, store, counts.prepare([(0, customer("a", "rich"), None)]))  # erased
    assert orjson.loads(store.read(0, SEGMENT_COUNTS_KEY) or b"") == {}


def test_a_partition_without_a_record_is_counted_from_its_states() -> None:
    store = MemoryStore()
    store.write(
        2,
        {
            b"a": orjson.dumps(to_document(customer("a", "rich", "vip"))),
            b"b": orjson.dumps(to_document(customer("b", "rich"))),
            b"c": orjson.dumps(to_document(CustomerState("c", attributes={"segments": "not these"}))),
        },
    )
    counts = SegmentCounts(store)
    assert counts.counts(2) == {"rich": 2, "vip": 1}
    records = counts.prepare([(2, customer("b", "rich"), customer("b"))])
    assert orjson.loads(records[2]) == {"rich": 1, "vip": 1}


def test_the_gauge_shows_defined_segments_over_the_owned_partitions_only() -> None:
    store = MemoryStore()
    counts = SegmentCounts(store)
    commit(
        counts,
        store,
        counts.prepare([(0, None, customer("a", "g-rich")), (1, None, customer("b", "g-rich", "g-old"))]),
    )
    counts.publish([1], ["g-rich", "g-old"])
    assert metrics.REGISTRY.get_sample_value("refract_segment_members", {"segment": "g-rich"}) == 1
    counts.publish([0, 1], ["g-rich"])
    assert metrics.REGISTRY.get_sample_value("refract_segment_members", {"segment": "g-rich"}) == 2
    assert metrics.REGISTRY.get_sample_value("refract_segment_members", {"segment": "g-old"}) is None
