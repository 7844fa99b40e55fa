"""An asyncio face on confluent-kafka's producer: idempotent, acks=all, murmur2 partitioning.

Every record Refract writes goes through here. A write is done only when Kafka acknowledged it:
callers await the delivery reports. Keys are partitioned with murmur2, as Java clients and
aiokafka (faust) do, so a customer's events, state and outputs land in the same partition number.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import confluent_kafka
import structlog

from engine.errors import InfrastructureError

log = structlog.get_logger(__name__)


class ProduceFailed(InfrastructureError):
    code = "kafka_produce_failed"

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class OutRecord(NamedTuple):
    """A record to produce (``partition`` None: by the key's murmur2 hash).

    Named tuples rather than frozen dataclasses: several are made per event, and a tuple is
    several times cheaper to build.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


class Delivered(NamedTuple):
    """Where Kafka wrote a record (made by the poll thread for each record acked)."""

    topic: str
    partition: int
    offset: int


class _Acks:
    """Counts a write's delivery reports, in the producer's poll thread; resolves one future
    when all are in (with ``_result()``, or ProduceFailed if Kafka refused any record)."""

    __slots__ = ("error", "future", "loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.pending = size
        self.error: confluent_kafka.KafkaError | None = None

    def on_delivery(self, err: confluent_kafka.KafkaError | None, _: confluent_kafka.Message) -> None:
        if err is not None and self.error is None:
            self.error = err
        self._counted()

    def _counted(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def _result(self) -> Any:
        raise NotImplementedError

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(_refused(self.error))
        else:
            self.future.set_result(self._result())


class _Batch(_Acks):
    """The acks of a batch with their offsets (``Delivered``), in no particular order across
    partitions. One bound method serves every record of the batch (no closure per record)."""

    __slots__ = ("reports",)

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        super().__init__(loop, size)
        self.reports: list[Delivered] = []

    def on_delivery(self, err: confluent_kafka.KafkaError | None, msg: confluent_kafka.Message) -> None:
        if err is not None:
            self.error = self.error or err
        else:
            self.reports.append(Delivered(msg.topic(), msg.partition(), msg.offset()))  # type: ignore[arg-type]
        self._counted()

    def _result(self) -> list[Delivered]:
        return self.reports


class _Count(_Acks):
    """The acks of a write whose offsets nobody needs (``send_counted``), counted only: no record
    of offsets, so the poll thread, which takes the GIL once per record to report it, holds up the
    producing thread less. (Imports need no report per record at all: ``BulkProducer``.)"""

    __slots__ = ("size",)

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        super().__init__(loop, size)
        self.size = size

    def _result(self) -> int:
        return self.size


def _settings(bootstrap: str, client_id: str, linger_ms: int) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": linger_ms,
        "partitioner": "murmur2_random",
        "compression.type": "lz4",
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500000,
        "message.timeout.ms": 60000,
        # librdkafka's own log lines go through logging (the worker log), not stderr.
        "logger": logging.getLogger("confluent_kafka"),
    }


class Producer:
    """One idempotent producer per process; a thread serves its delivery callbacks."""

    def __init__(self, bootstrap: str, *, client_id: str, linger_ms: int = 5) -> None:
        self._producer = confluent_kafka.Producer(_settings(bootstrap, client_id, linger_ms))
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-producer", daemon=True)
        self._poller.start()

    def _poll_forever(self) -> None:
        while not self._closing.is_set():
            try:
                self._producer.poll(0.05)
            except confluent_kafka.KafkaException as exc:
                # A fatal error (the producer can no longer keep its order): poll raises it
                # once, then serves the failed records' reports. Keep polling so their writers
                # hear of it, rather than let this thread die and their futures wait forever.
                log.error("producer.fatal_error", error=str(exc.args[0]))

    def send_batch(self, records: Sequence[OutRecord]) -> asyncio.Future[list[Delivered]]:
        """Queue ``records``; the returned future resolves with their offsets once all are acked."""
        batch = _Batch(asyncio.get_running_loop(), len(records))
        if not records:
            batch.future.set_result([])
            return batch.future
        self._produce(records, batch.on_delivery)
        return batch.future

    def send_counted(self, records: Sequence[OutRecord]) -> asyncio.Future[int]:
        """``send_batch`` for records whose offsets nobody needs: the future resolves with their
        number once all are acked, and the poll thread makes no report object per record."""
        count = _Count(asyncio.get_running_loop(), len(records))
        if not records:
            count.future.set_result(0)
            return count.future
        self._produce(records, count.on_delivery)
        return count.future

    def _produce(self, records: Sequence[OutRecord], on_delivery: Callable[..., None]) -> None:
        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    if record.partition is None:
                        produce(record.topic, record.value, record.key, on_delivery=on_delivery)
                    else:
                        produce(
                            record.topic, record.value, record.key, record.partition, on_delivery=on_delivery
                        )
                    break
                except BufferError:
                    # The local queue is full: let the poller drain it, then try again.
                    self._producer.poll(0.01)
                except confluent_kafka.KafkaException as exc:
                    # Refused before queueing: too large, or the producer stopped (fatal).
                    raise _refused(exc.args[0]) from None

    def send_nowait(self, records: Sequence[OutRecord]) -> None:
        """Queue ``records`` without waiting for, or hearing about, their acks (best effort).

        For records whose loss on a crash is acceptable (the audit of a banner decision): no
        delivery report is made per record, which saves the poll thread most of its work.
        """
        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    if record.partition is None:
                        produce(record.topic, record.value, record.key)
                    else:
                        produce(record.topic, record.value, record.key, record.partition)
                    break
                except BufferError:
                    self._producer.poll(0.01)

    async def send(self, record: OutRecord) -> Delivered:
        return (await self.send_batch([record]))[0]

    def close(self, timeout_s: float = 10.0) -> None:
        remaining = self._producer.flush(timeout_s)
        self._closing.set()
        self._poller.join(timeout=1.0)
        if remaining:
            raise ProduceFailed(f"{remaining} records were not delivered before close", retriable=True)


def _refused(error: confluent_kafka.KafkaError) -> ProduceFailed:
    return ProduceFailed(f"Kafka did not accept a record: {error.str()}", retriable=error.retriable())


class BulkProducer:
    """A producer for bulk writes whose records need no offsets back (imports), one per writer.

    librdkafka reports only the records it failed to write (``delivery.report.only.error``): a
    report per record costs the reporting thread the GIL once per record (1-2 µs of CPU each,
    and it holds up the threads producing). What Kafka acknowledged is learnt by draining: once
    ``drain`` returns, every record queued before it is in its topic; if any record of this
    producer failed since the last drain, ``drain`` raises ``ProduceFailed`` instead.
    """

    def __init__(self, bootstrap: str, *, client_id: str, linger_ms: int = 20) -> None:
        self._error: confluent_kafka.KafkaError | None = None
        self._producer = confluent_kafka.Producer(
            {
                **_settings(bootstrap, client_id, linger_ms),
                "delivery.report.only.error": True,
                "on_delivery": self._failed,
            }
        )

    def _failed(self, err: confluent_kafka.KafkaError | None, _: confluent_kafka.Message) -> None:
        if err is not None and self._error is None:
            self._error = err

    def queue(self, topic: str, keys: Sequence[bytes], values: Sequence[bytes]) -> None:
        """Queue records of ``keys`` and ``values`` (parallel lists) for ``topic``."""
        produce, poll = self._producer.produce, self._producer.poll
        for key, value in zip(keys, values, strict=True):
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    poll(0.01)  # the local queue is full: wait for acks to free it

    async def drain(self) -> None:
        """Wait until every record queued so far is acknowledged (librdkafka then sends at once,
        without waiting out its linger); raise ``ProduceFailed`` if any was refused."""
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, self._producer.flush, 1.0):
            pass  # each record is written or failed within message.timeout.ms
        error, self._error = self._error, None
        if error is not None:
            raise _refused(error)

    def close(self, timeout_s: float = 10.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise ProduceFailed(f"{remaining} records were not delivered before close", retriable=True)
