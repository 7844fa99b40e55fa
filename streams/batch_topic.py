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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import faust
import structlog

log = structlog.get_logger(__name__)

Prepared = TypeVar("Prepared")
Sent = TypeVar("Sent")


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


class Received:
    """A record the conductor handed over: the message, and the ack a faust Event would give.

    faust would build an Event per record (key and value deserialized, headers, a reference to
    the app); the processor reads the raw message only, so this is all it gets.
    """

    __slots__ = ("_app", "message")

    def __init__(self, message: Any, app: Any) -> None:
        self.message = message
        self._app = app

    def ack(self) -> bool:
        """Mark the record processed: faust may commit its offset (``faust.Event.ack``)."""
        acked: bool = self.message.ack(self._app.consumer)
        return acked


class BatchTopic(faust.Topic):  # type: ignore[misc]
    """A topic whose records go to an EventBuffer instead of a stream, as ``Received`` records."""

    buffer: EventBuffer

    def _compile_decode(self) -> None:
        # faust.Topic calls this from __init__ to build ``decode`` (message -> Event).
        app = self.app

        async def decode(message: Any, *, propagate: bool = False) -> Received:
            return Received(message, app)

        self.decode = decode  # type: ignore[assignment]  # duck-typed: .message and .ack()

    @property
    def queue(self) -> EventBuffer:  # type: ignore[override]  # duck-typed by the conductor
        return self.buffer

    async def put(self, value: Any) -> None:
        await self.buffer.put(value)


def batch_topic(
    app: faust.App, name: str, *, partitions: int, maxsize: int, buffer: type[EventBuffer] = EventBuffer
) -> BatchTopic:
    """A raw-bytes topic of ``app`` whose records go to a ``buffer`` of at most ``maxsize``."""
    topic = BatchTopic(
        app,
        topics=[name],
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    topic.buffer = buffer(maxsize)
    app.topics.add(topic)
    return topic


async def pump(
    topic: BatchTopic,
    prepare: Callable[[Sequence[Any]], Prepared],
    send: Callable[[Prepared], Sent],
    finish: Callable[[Prepared, Sent], Awaitable[object]],
    *,
    max_events: int,
    within_s: float,
    max_in_flight: int = 3,
) -> None:
    """Forever: take a batch, fold it, send its records, and go on while Kafka acks earlier ones.

    Up to ``max_in_flight`` batches wait for their acks at once. They are finished (RocksDB
    written, events acked so faust may commit their offsets) strictly in the order they were
    taken; a failed batch stops the pump before any later batch is finished.
    """
    buffer = topic.buffer
    in_flight: deque[asyncio.Task[None]] = deque()

    async def finish_and_ack(
        prepared: Prepared, sent: Sent, events: list[Any], previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await previous
        await finish(prepared, sent)
        for event in events:
            event.ack()

    try:
        while True:
            # Possibly empty after a wake(): prepare() then does pending background work.
            events = await buffer.take(max_events, within_s)
            prepared = prepare([event.message for event in events])
            sent = send(prepared)
            previous = in_flight[-1] if in_flight else None
            in_flight.append(asyncio.ensure_future(finish_and_ack(prepared, sent, events, previous)))
            while in_flight and (in_flight[0].done() or len(in_flight) >= max_in_flight):
                await asyncio.shield(in_flight.popleft())  # a cancelled pump must not cut a commit short
    finally:
        while in_flight:
            task = in_flight.popleft()
            if not task.done():
                await asyncio.shield(task)
