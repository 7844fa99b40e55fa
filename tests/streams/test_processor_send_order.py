"""The order a batch's records reach Kafka in: outputs, then the state that produced them.

A worker may die between any two records. Outputs first means the replay of the batch's events
writes them again with the same ids; the state first would make the replay skip the events and
lose their deliveries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest

from streams.processor import BatchOutcome, CustomerProcessor, PreparedBatch
from streams.producer import Delivered, OutRecord, ProduceFailed


class HeldProducer:
    """Records what is produced; each write is acked when the test says so."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.acks: dict[str, tuple[asyncio.Future[Any], int]] = {}

    def send_batch(self, records: Sequence[OutRecord]) -> asyncio.Future[list[Delivered]]:
        return self._held(records, counted=False)

    def send_counted(self, records: Sequence[OutRecord]) -> asyncio.Future[int]:
        return self._held(records, counted=True)

    def _held(self, records: Sequence[OutRecord], *, counted: bool) -> asyncio.Future[Any]:
        names = [(record.key or b"").decode() for record in records]
        self.sent.append(names)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not names:
            future.set_result(0 if counted else [])
        for offset, name in enumerate(names):
            self.acks[name] = (future, -1 if counted else offset)
        return future

    def ack(self, name: str) -> None:
        future, offset = self.acks[name]
        future.set_result(1 if offset < 0 else [Delivered("changelog", 0, offset)])


def batch(outputs: list[str], changelog: list[str]) -> PreparedBatch:
    def records(topic: str, names: list[str]) -> list[OutRecord]:
        return [OutRecord(topic, name.encode(), b"", 0) for name in names]

    return PreparedBatch(
        BatchOutcome(),
        records("deliveries", outputs),
        records("changelog", changelog),
        {},
        {},
        [],
        time.perf_counter(),
    )


def processor(producer: HeldProducer) -> CustomerProcessor:
    store: Any = None  # sending touches only the producer
    return CustomerProcessor(store, producer, events_topic="events", dead_letters_topic="dead")  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_batch_state_is_produced_only_after_its_outputs_are_acked() -> None:
    producer = HeldProducer()
    sent = processor(producer).send(batch(["delivery-1"], ["state-1"]))
    await settle()
    assert producer.sent == [["delivery-1"]]
    producer.ack("delivery-1")
    await settle()
    assert producer.sent == [["delivery-1"], ["state-1"]]
    assert not sent.done()  # the batch is finished when its state is acked too
    producer.ack("state-1")
    assert await sent == [Delivered("changelog", 0, 0)]  # the state's offset, for RocksDB


async def test_states_keep_the_order_of_their_batches_when_later_outputs_are_acked_first() -> None:
    producer = HeldProducer()
    sender = processor(producer)
    sender.send(batch(["delivery-1"], ["state-1"]))
    sender.send(batch(["delivery-2"], ["state-2"]))
    await settle()
    producer.ack("delivery-2")
    await settle()
    assert ["state-2"] not in producer.sent  # it would be overwritten by the older state-1
    producer.ack("delivery-1")
    await settle()
    assert producer.sent[2:] == [["state-1"], ["state-2"]]


async def test_a_batch_without_outputs_waits_for_the_state_of_the_batch_before() -> None:
    producer = HeldProducer()
    sender = processor(producer)
    sender.send(batch(["delivery-1"], ["state-1"]))
    sender.send(batch([], ["state-2"]))
    await settle()
    assert producer.sent == [["delivery-1"], []]
    producer.ack("delivery-1")
    await settle()
    assert producer.sent[2:] == [["state-1"], ["state-2"]]


async def test_a_batch_whose_outputs_failed_never_writes_its_state_nor_any_later_one() -> None:
    producer = HeldProducer()
    sender = processor(producer)
    first = sender.send(batch(["delivery-1"], ["state-1"]))
    second = sender.send(batch(["delivery-2"], ["state-2"]))
    await settle()
    producer.acks["delivery-1"][0].set_exception(ProduceFailed("broker gone", retriable=False))
    producer.ack("delivery-2")
    with pytest.raises(ProduceFailed):
        await first
    with pytest.raises(ProduceFailed):
        await second
    assert all(not name.startswith("state") for names in producer.sent for name in names)
