"""Evaluating a new segment over the stored customers, in the processor's own batches (no Kafka).

The stored documents are evaluated through a membership view and patched, not decoded whole: the
outcome must still be what evaluating every segment from scratch gives, with the entries emitted,
the counts, the timers and the partition's marker kept as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import orjson

from engine.events import BusinessEvent, CustomerUpdate, Envelope, Payload
from engine.fold import fold
from engine.segments import rule_from_text
from engine.segments.membership import CompiledSegment, SegmentIndex, evaluate_all, inputs_changed_by, update
from engine.state import CustomerState, evolve, from_document, to_document
from schemas.codec import decode, encode_envelope
from streams.customer_store import SEGMENTS_EVALUATED_KEY
from streams.processor import CustomerProcessor, PreparedBatch
from streams.producer import Delivered
from streams.segment_counts import SEGMENT_COUNTS_KEY

NOW_MS = 1_718_020_800_000
DAY_MS = 86_400_000
RULES = {"rich": "balance >= 100", "active": 'count(event="login", within="2d") >= 1'}


class MemoryStore:
    """What the processor reads and writes of a CustomerStore, over dicts."""

    changelog_topic = "changelog"

    def __init__(self) -> None:
        self.partitions: dict[int, dict[bytes, bytes]] = {0: {}, 1: {}}

    def read(self, partition: int, key: bytes) -> bytes | None:
        return self.partitions[partition].get(key)

    def customer_keys(self, partition: int) -> Iterator[bytes]:
        return (key for key in list(self.partitions[partition]) if not key.startswith(b"\x00"))

    def write(self, partition: int, values: Mapping[bytes, bytes | None], changelog_offset: int) -> None:
        for key, value in values.items():
            if value is None:
                self.partitions[partition].pop(key, None)
            else:
                self.partitions[partition][key] = value

    def state(self, customer_id: str) -> CustomerState:
        return from_document(orjson.loads(self.partitions[partition_of(customer_id)][customer_id.encode()]))


@dataclass
class Message:
    partition: int
    key: bytes
    value: bytes
    offset: int


def partition_of(customer_id: str) -> int:
    return int(customer_id[1:]) % 2


def make_index(rules: Mapping[str, str]) -> SegmentIndex:
    return SegmentIndex.build(CompiledSegment(s, 1, rule_from_text(text)) for s, text in rules.items())


def stored_customers(index: SegmentIndex, customers: int) -> MemoryStore:
    """Customers folded with ``index`` and stored as a worker stores them, marked evaluated for it."""
    store = MemoryStore()
    counts: dict[int, dict[str, int]] = {0: {}, 1: {}}
    for number in range(customers):
        customer_id = f"c{number}"
        state: CustomerState | None = None
        payloads: list[Payload] = [CustomerUpdate(set={"balance": number * 7 % 300})]
        if number % 3 == 0:
            payloads.append(BusinessEvent("login"))
        for offset, payload in enumerate(payloads):
            at_ms = NOW_MS - DAY_MS + offset
            after = fold(
                state, Envelope(f"e{number}-{offset}", customer_id, at_ms, at_ms, "t", payload), offset
            )
            assert after is not None
            result = update(index, state, after, inputs_changed_by(payload), at_ms)
            state = evolve(after, {"segments": result.segments, "segment_due_ms": result.segment_due_ms})
        assert state is not None
        partition = partition_of(customer_id)
        store.partitions[partition][customer_id.encode()] = orjson.dumps(to_document(state))
        for segment_id in state.segments:
            counts[partition][segment_id] = counts[partition].get(segment_id, 0) + 1
    evaluated = orjson.dumps({segment_id: 1 for segment_id in index.segments})
    for partition in (0, 1):
        store.partitions[partition][SEGMENTS_EVALUATED_KEY] = evaluated
        store.partitions[partition][SEGMENT_COUNTS_KEY] = orjson.dumps(counts[partition])
    return store


def make_processor(store: MemoryStore, index: SegmentIndex) -> CustomerProcessor:
    return CustomerProcessor(
        store,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # prepare and persist only: nothing is sent
        events_topic="events",
        dead_letters_topic="dead-letters",
        segment_changes_topic="segment-changes",
        segment_index=lambda: index,
        assigned_partitions=lambda: {0, 1},
        clock_ms=lambda: NOW_MS,
    )


def persist(processor: CustomerProcessor, batch: PreparedBatch) -> None:
    processor._persist(batch, [Delivered("changelog", partition, 0) for partition in batch.written])


def backfill(processor: CustomerProcessor) -> list[PreparedBatch]:
    batches = []
    while True:
        batch = processor.prepare([])
        persist(processor, batch)
        batches.append(batch)
        if not processor.backfill_progress():
            return batches


NEW = {**RULES, "big": "balance >= 150", "quiet": 'count(event="login", within="3d") == 0'}


def test_a_new_segment_leaves_every_stored_customer_as_an_evaluation_from_scratch() -> None:
    store = stored_customers(make_index(RULES), 300)
    index = make_index(NEW)
    batches = backfill(make_processor(store, index))
    for number in range(300):
        state = store.state(f"c{number}")
        assert set(state.segments) == set(evaluate_all(index, state, NOW_MS)), number
    entries = [
        decode(record.value or b"")[1]
        for batch in batches
        for record in batch.outputs
        if record.topic == "segment-changes"
    ]
    bigs = {fields["customer_id"] for fields in entries if fields["segment_id"] == "big"}
    assert bigs == {f"c{n}" for n in range(300) if n * 7 % 300 >= 150}
    assert {fields["caused_by_event_id"] for fields in entries} >= {"backfill:big:1", "backfill:quiet:1"}


def test_the_counts_and_the_marker_follow_the_backfill() -> None:
    store = stored_customers(make_index(RULES), 200)
    backfill(make_processor(store, make_index(NEW)))
    for partition in (0, 1):
        stored = store.partitions[partition]
        members: dict[str, int] = {}
        for key, value in stored.items():
            if not key.startswith(b"\x00"):
                for segment_id in orjson.loads(value).get("segments") or ():
                    members[segment_id] = members.get(segment_id, 0) + 1
        assert orjson.loads(stored[SEGMENT_COUNTS_KEY]) == members
        assert orjson.loads(stored[SEGMENTS_EVALUATED_KEY]) == {s: 1 for s in NEW}


def test_every_customer_due_by_time_has_a_timer_after_the_backfill() -> None:
    store = stored_customers(make_index(RULES), 90)
    processor = make_processor(store, make_index(NEW))
    backfill(processor)
    due = processor.timers.pop_due(NOW_MS + 400 * DAY_MS, {0, 1})
    expected = {
        (partition_of(f"c{n}"), f"c{n}".encode(), store.state(f"c{n}").due_ms)
        for n in range(90)
        if store.state(f"c{n}").due_ms is not None
    }
    assert expected and set(due) == expected


def test_a_customer_changed_by_a_batch_not_yet_written_is_evaluated_from_that_state() -> None:
    store = stored_customers(make_index(RULES), 20)
    processor = make_processor(store, make_index(RULES))
    backfill(processor)  # the plan is made: nothing to evaluate
    envelope = Envelope("raise", "c2", NOW_MS, NOW_MS, "t", CustomerUpdate(set={"balance": 299}))
    pending = processor.prepare([Message(0, b"c2", encode_envelope(envelope), 10)])  # not persisted yet
    new_index = make_index(NEW)
    processor._segment_index = lambda: new_index
    first = processor.prepare([])
    assert "big" in (processor.current_state(0, "c2") or CustomerState("?")).segments
    persist(processor, pending)
    persist(processor, first)
    backfill(processor)
    assert store.state("c2").attributes["balance"] == 299 and "big" in store.state("c2").segments


def test_a_new_customer_in_a_batch_not_yet_written_is_evaluated_by_the_backfill() -> None:
    # The batch that first stores the customer was folded before the new segments were known, and
    # is still waiting for Kafka when the backfill is planned: the store does not list the customer.
    store = stored_customers(make_index(RULES), 20)
    processor = make_processor(store, make_index(RULES))
    backfill(processor)
    envelope = Envelope("first", "c40", NOW_MS, NOW_MS, "t", CustomerUpdate(set={"balance": 299}))
    pending = processor.prepare([Message(0, b"c40", encode_envelope(envelope), 10)])
    new_index = make_index(NEW)
    processor._segment_index = lambda: new_index
    first = processor.prepare([])
    persist(processor, pending)
    persist(processor, first)
    backfill(processor)
    assert set(store.state("c40").segments) == {"rich", "big", "quiet"}
    assert orjson.loads(store.partitions[0][SEGMENTS_EVALUATED_KEY]) == {s: 1 for s in NEW}
    big = sum(1 for n in range(0, 20, 2) if n * 7 % 300 >= 150) + 1
    assert orjson.loads(store.partitions[0][SEGMENT_COUNTS_KEY])["big"] == big


def test_a_backfilled_customer_not_yet_written_reads_back_whole() -> None:
    store = stored_customers(make_index(RULES), 20)
    before = store.state("c4")
    processor = make_processor(store, make_index(NEW))
    batch = processor.prepare([])  # evaluated, not written
    assert (0, b"c4") in batch.states
    current = processor.current_state(0, "c4")
    assert current is not None and "quiet" in current.segments
    changed = {"segments": current.segments, "segment_due_ms": current.segment_due_ms}
    assert current == evolve(before, changed)  # contacts, counters, ids: all there
    assert processor.uncommitted(0)[b"c4"] == current
    persist(processor, batch)
    assert store.state("c4") == current
