"""A faust topic that hands its records to Refract's processor in batches, without a stream.

faust delivers each record of a subscribed topic to its channels' queues, and an agent's stream
then takes them one by one (~100 µs of machinery per record, see PERFORMANCE.md). This topic
keeps faust's consumer, group membership, partition assignment, table recovery and offset
commits, but its "queue" is a bounded list that a single task drains a batch at a time: the
per-record cost is faust's fetch and dispatch only.

Offsets: each record is acked (so faust may commit it) only after its batch is processed, that is
after its effects are in Kafka. During a rebalance faust waits until every fetched record is
acked before giving up partitions (``stream_wait_empty``), so the task finishes the buffered
batch first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import faust
import structlog

log = structlog.get_logger(__name__)

Prepared = TypeVar("Prepared")


class EventBuffer:
    """The queue faust's conductor fills: ``full``/``put_nowait_enhanced`` as faust calls them."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._events: list[Any] = []
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._woken = False

    def full(self) -> bool:
        return len(self._events) >= self.maxsize

    def put_nowait_enhanced(self, value: Any, **_: Any) -> None:
        self._events.append(value)
        self._ready.set()

    async def put(self, event: Any) -> None:
        """The conductor's path for a full buffer: wait for room (back-pressure on the fetcher)."""
        while self.full():
            self._space.clear()
            await self._space.wait()
        self.put_nowait_enhanced(event)

    def wake(self) -> None:
        """Let ``take`` return at once, even with no events: the processor has other work."""
        self._woken = True
        self._ready.set()

    async def take(self, max_events: int, within_s: float) -> list[Any]:
        """Wait for events; give up to ``max_events``, waiting ``within_s`` for a batch to fill.

        After ``wake`` it returns at once with what is there, possibly nothing.
        """
        await self._ready.wait()
        woken, self._woken = self._woken, False
        if len(self._events) < max_events and not woken:
            deadline = asyncio.get_running_loop().time() + within_s
            while len(self._events) < max_events:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, 0.005))
        batch, self._events = self._events[:max_events], self._events[max_events:]
        if not self._events:
            self._ready.clear()
        self._space.set()
        return batch

    def __len__(self) -> int:
        return len(self._events)


class BatchTopic(faust.Topic):  # type: ignore[misc]
    """A topic whose records go to an EventBuffer instead of a stream."""

    buffer: EventBuffer

    @property
    def queue(self) -> EventBuffer:  # type: ignore[override]  # duck-typed by the conductor
        return self.buffer

    async def put(self, value: Any) -> None:
        await self.buffer.put(value)


def batch_topic(app: faust.App, name: str, *, partitions: int, maxsize: int) -> BatchTopic:
    topic = BatchTopic(
        app,
        topics=[name],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    topic.buffer = EventBuffer(maxsize)
    app.topics.add(topic)
    return topic


async def pump(
    topic: BatchTopic,
    prepare: Callable[[Sequence[Any]], Prepared],
    commit: Callable[[Prepared], Awaitable[object]],
    *,
    max_events: int,
    within_s: float,
) -> None:
    """Forever: take a batch and fold it while the previous batch's writes are in flight.

    At most one batch is being committed; commits (and so acks, which let faust commit
    offsets) happen in the order batches were taken.
    """
    buffer = topic.buffer
    in_flight: asyncio.Task[None] | None = None

    async def commit_and_ack(prepared: Prepared, events: list[Any]) -> None:
        await commit(prepared)
        for event in events:
            event.ack()

    try:
        while True:
            events = await buffer.take(max_events, within_s)
            prepared = prepare([event.message for event in events])
            if in_flight is not None:
                await asyncio.shield(in_flight)  # a cancelled pump must not cut a commit short
            in_flight = asyncio.ensure_future(commit_and_ack(prepared, events))
    finally:
        if in_flight is not None and not in_flight.done():
            await asyncio.shield(in_flight)
