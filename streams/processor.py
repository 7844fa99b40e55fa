"""The customer processor: one batch of ``refract.events`` in, state and outputs out.

For each event: decode, fold into the customer's state (read once per batch per customer), and
collect what to write. Then, once per batch: produce the changelog records and dead letters and
wait for Kafka's acks, write the states to RocksDB, and return (faust then commits the source
offsets). See ``streams.customer_store`` for why the steps run in that order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from engine.errors import DecodeError, RefractError, ValidationError
from engine.events import Envelope
from engine.fold import fold
from engine.state import CustomerState, from_document, to_document
from schemas.codec import decode_envelope, encode
from streams import metrics
from streams.customer_store import CustomerStore
from streams.producer import Delivered, OutRecord, ProduceFailed, Producer

log = structlog.get_logger(__name__)

SEND_ATTEMPTS = 6


@dataclass(slots=True)
class _Slot:
    """One customer's state during a batch."""

    state: CustomerState | None
    dirty: bool = False


@dataclass(slots=True)
class BatchOutcome:
    processed: int = 0
    replayed: int = 0
    dead_letters: int = 0
    customers_written: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error: RefractError,
    now_ms: int,
) -> bytes:
    return encode(
        "DeadLetter",
        {
            "original_topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key,
            "value": value,
            "error_code": error.code,
            "error_message": error.message,
            "failed_at": now_ms,
        },
    )


@dataclass(slots=True)
class PreparedBatch:
    """A folded batch waiting to be committed."""

    outcome: BatchOutcome
    records: list[OutRecord]
    written: dict[int, dict[bytes, bytes | None]]
    states: dict[tuple[int, bytes], CustomerState | None]
    received: list[int]
    started: float


class CustomerProcessor:
    def __init__(
        self,
        store: CustomerStore,
        producer: Producer,
        *,
        events_topic: str,
        dead_letters_topic: str,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._store = store
        self._producer = producer
        self._events_topic = events_topic
        self._dead_letters_topic = dead_letters_topic
        self._clock_ms = clock_ms
        # States folded by a prepared batch whose commit has not finished yet.
        self._uncommitted: dict[tuple[int, bytes], CustomerState | None] = {}

    def _load(self, partition: int, key: bytes) -> CustomerState | None:
        slot_key = (partition, key)
        if slot_key in self._uncommitted:
            return self._uncommitted[slot_key]
        raw = self._store.read(partition, key)
        return from_document(orjson.loads(raw)) if raw is not None else None

    async def process(self, messages: Sequence[Any]) -> BatchOutcome:
        """Fold a batch and commit it: its effects are in Kafka and RocksDB when this returns."""
        return await self.commit(self.prepare(messages))

    def prepare(self, messages: Sequence[Any]) -> PreparedBatch:
        """Fold faust messages into states and collect what to write (no I/O but state reads).

        The new states are visible to the next ``prepare`` before this batch is committed, so
        the next batch can be folded while this one waits for Kafka.
        """
        started = time.perf_counter()
        outcome = BatchOutcome()
        slots: dict[tuple[int, bytes], _Slot] = {}
        out: list[OutRecord] = []
        received: list[int] = []
        by_type = outcome.by_type
        for message in messages:
            partition: int = message.partition
            key: bytes | None = message.key
            try:
                envelope = self._decode(key, message.value)
            except RefractError as error:
                out.append(self._dead_letter(message, error))
                continue
            except Exception as exc:  # a codec bug is still bad input to dead-letter, not a crash
                out.append(self._dead_letter(message, DecodeError(f"cannot decode: {exc!r}")))
                continue
            assert key is not None
            slot_key = (partition, key)
            slot = slots.get(slot_key)
            if slot is None:
                slot = slots[slot_key] = _Slot(self._load(partition, key))
            try:
                new_state = fold(slot.state, envelope, message.offset)
            except Exception as exc:  # a bug in the fold must not stop the partition
                log.exception("processor.fold_failed", offset=message.offset, partition=partition)
                failure = RefractError(f"fold failed: {type(exc).__name__}: {exc}")
                failure.code = "fold_failed"
                out.append(self._dead_letter(message, failure))
                continue
            if new_state is slot.state:
                outcome.replayed += 1
                continue
            slot.state = new_state
            slot.dirty = True
            outcome.processed += 1
            type_name = envelope.type_name
            by_type[type_name] = by_type.get(type_name, 0) + 1
            received.append(envelope.received_at_ms)

        changelog = self._store.changelog_topic
        written: dict[int, dict[bytes, bytes | None]] = {}
        states: dict[tuple[int, bytes], CustomerState | None] = {}
        for slot_key, slot in slots.items():
            if not slot.dirty:
                continue
            partition, key = slot_key
            value = orjson.dumps(to_document(slot.state)) if slot.state is not None else None
            written.setdefault(partition, {})[key] = value
            states[slot_key] = slot.state
            out.append(OutRecord(changelog, key, value, partition))
        self._uncommitted.update(states)
        outcome.dead_letters = sum(1 for r in out if r.topic == self._dead_letters_topic)
        return PreparedBatch(outcome, out, written, states, received, started)

    async def commit(self, batch: PreparedBatch) -> BatchOutcome:
        """Produce a prepared batch's records, wait for Kafka's acks, then write RocksDB.

        Batches must be committed in the order they were prepared.
        """
        delivered = await self._send(batch.records)
        changelog = self._store.changelog_topic
        last_changelog_offset: dict[int, int] = {}
        for report in delivered:
            if report.topic == changelog and report.offset > last_changelog_offset.get(report.partition, -1):
                last_changelog_offset[report.partition] = report.offset
        for partition, values in batch.written.items():
            self._store.write(partition, values, last_changelog_offset[partition])
            batch.outcome.customers_written += len(values)
        uncommitted = self._uncommitted
        for slot_key, state in batch.states.items():
            # A later prepared batch may have changed this customer again: keep its state.
            if slot_key in uncommitted and uncommitted[slot_key] is state:
                del uncommitted[slot_key]
        self._record_metrics(batch.outcome, batch.received, batch.started)
        return batch.outcome

    async def _send(self, out: list[OutRecord]) -> list[Delivered]:
        """Produce the batch's records, retrying while Kafka says it may work later.

        Re-sending is safe: changelog records carry whole states, outputs carry deterministic ids.
        Past the last attempt the error propagates and the batch's offsets stay uncommitted.
        """
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await self._producer.send_batch(out)
            except ProduceFailed as exc:
                if not exc.retriable or attempt == SEND_ATTEMPTS:
                    raise
                log.warning("processor.send_retry", attempt=attempt, error=exc.message)
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        raise AssertionError("unreachable")

    def _decode(self, key: bytes | None, value: bytes | None) -> Envelope:
        if value is None:
            raise DecodeError("the record has no value")
        envelope = decode_envelope(value)
        if key is None or key.decode("utf-8", "replace") != envelope.customer_id:
            raise ValidationError(
                f"record key {key!r} is not the envelope's customer id {envelope.customer_id!r}",
                field="key",
            )
        return envelope

    def _dead_letter(self, message: Any, error: RefractError) -> OutRecord:
        metrics.DEAD_LETTERS.labels(error.code).inc()
        log.warning(
            "processor.dead_letter",
            reason=error.code,
            partition=message.partition,
            offset=message.offset,
        )
        value = dead_letter(
            self._events_topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            error,
            self._clock_ms(),
        )
        return OutRecord(self._dead_letters_topic, message.key, value)

    def _record_metrics(self, outcome: BatchOutcome, received: list[int], started: float) -> None:
        for type_name, count in outcome.by_type.items():
            metrics.EVENTS_PROCESSED.labels(type_name).inc(count)
        if outcome.replayed:
            metrics.EVENTS_REPLAYED.inc(outcome.replayed)
        now_ms = self._clock_ms()
        observe = metrics.PROCESSING_LATENCY.observe
        for received_at_ms in received:
            observe(max(0, now_ms - received_at_ms) / 1000)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(outcome.processed + outcome.replayed + outcome.dead_letters)
