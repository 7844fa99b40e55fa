"""The customer processor: one batch of ``refract.events`` in, state and outputs out.

For each event: decode, fold into the customer's state (read once per batch per customer), update
its segment memberships (only the segments the event may have changed, see
``engine.segments.membership``), and collect what to write: the state and any ``SegmentChange``.
Then, once per batch: produce the outputs (segment changes, deliveries, audit, dead letters...), and
once Kafka acked them the changelog records; write the states to RocksDB, and return (faust then
commits the source offsets). See ``CustomerProcessor.send`` and ``streams.customer_store`` for why
the steps run in that order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import structlog

from engine.campaigns.audit import Decision, audit_record
from engine.campaigns.catalog import EMPTY_CATALOG, CampaignCatalog
from engine.campaigns.execution import FunnelMove, react
from engine.campaigns.links import MessageLinks, NoLinks
from engine.contact_index import contact_index_records
from engine.deliveries import Delivery
from engine.errors import DecodeError, RefractError, ValidationError
from engine.events import CustomerUpdate, Envelope
from engine.fold import fold
from engine.segments.membership import (
    EMPTY_INDEX,
    NOTHING_CHANGED,
    MembershipUpdate,
    SegmentChange,
    SegmentIndex,
    exits_on_erasure,
    inputs_changed_by,
)
from engine.segments.membership import update as update_memberships
from engine.segments.reevaluation import Reevaluation
from engine.state import (
    CustomerState,
    MembershipView,
    evolve,
    from_document,
    membership_view,
    to_document,
    with_memberships,
)
from engine.visitors import IDENTIFIED_AS, is_anonymous, merged_payloads
from schemas.codec import decode_envelope, encode, encode_envelope, encode_segment_changes, encode_typed
from streams import metrics
from streams.contact_directory import contact_records
from streams.customer_store import FUNNEL_COUNTS_KEY, SEGMENTS_EVALUATED_KEY, CustomerStore
from streams.producer import Delivered, OutRecord, ProduceFailed, Producer
from streams.segment_counts import SEGMENT_COUNTS_KEY, Members, SegmentCounts
from streams.timers import SegmentTimers

_T = TypeVar("_T")
log = structlog.get_logger(__name__)

SEND_ATTEMPTS = 6
# Customers evaluated for new or changed segments per batch (fewer when the batch has many events).
BACKFILL_CHUNK = 2000


@dataclass(slots=True)
class _Slot:
    """One customer's state during a batch."""

    state: CustomerState | None
    dirty: bool = False
    loaded: CustomerState | None = field(init=False)  # as read: the segment counts need both

    def __post_init__(self) -> None:
        self.loaded = self.state


@dataclass(slots=True)
class _Patched:
    """A stored customer whose memberships a backfill changed: the document to write as is."""

    document: bytes
    loaded: MembershipView  # as read, and with the new memberships: the segment counts need both
    view: MembershipView


@dataclass(slots=True)
class _PartitionBackfill:
    """Evaluating new or changed segments over the customers a partition already has."""

    segments: dict[str, int]  # segment id -> version
    keys: Iterator[bytes]
    evaluated: int = 0


@dataclass(slots=True)
class BatchOutcome:
    processed: int = 0
    replayed: int = 0
    dead_letters: int = 0
    customers_written: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    # (segment id, ENTERED/EXITED) -> how many.
    segment_changes: dict[tuple[str, str], int] = field(default_factory=dict)
    backfilled: int = 0
    deliveries: int = 0
    decisions: int = 0
    # (campaign id, arm, stage) -> how many runs reached it in this batch.
    funnel: dict[tuple[str, str, str], int] = field(default_factory=dict)


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
    outputs: list[OutRecord]  # deliveries, audit, segment changes, contacts, dead letters...
    changelog: list[OutRecord]  # the new states: produced only once the outputs are in Kafka
    written: dict[int, dict[bytes, bytes | None]]
    states: dict[tuple[int, bytes], CustomerState | bytes | None]  # bytes: a document a backfill wrote
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
        segment_changes_topic: str = "",
        deliveries_topic: str = "",
        contacts_topic: str = "",
        audit_topic: str = "",
        segment_index: Callable[[], SegmentIndex] = lambda: EMPTY_INDEX,
        campaign_catalog: Callable[[], CampaignCatalog] = lambda: EMPTY_CATALOG,
        links: MessageLinks | None = None,
        default_timezone: str = "UTC",
        assigned_partitions: Callable[[], set[int]] = set,
        wake: Callable[[], None] = lambda: None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._store = store
        self._segment_changes_topic = segment_changes_topic
        self._segment_index = segment_index
        self._campaign_catalog = campaign_catalog
        self._links: MessageLinks = links or NoLinks()
        self._deliveries_topic = deliveries_topic
        self._contacts_topic = contacts_topic
        self._audit_topic = audit_topic
        self._default_timezone = default_timezone
        self._assigned_partitions = assigned_partitions
        self._wake = wake
        # What the last backfill plan was made for, and the partitions still being evaluated.
        self._planned: tuple[SegmentIndex, frozenset[int]] | None = None
        self._backfill: dict[int, _PartitionBackfill] = {}
        self.timers = SegmentTimers()
        self.segment_counts = SegmentCounts(store)
        self._producer = producer
        self._events_topic = events_topic
        self._dead_letters_topic = dead_letters_topic
        self._clock_ms = clock_ms
        # States folded by a prepared batch whose commit has not finished yet; the documents a
        # backfill wrote are kept as written, and decoded only if read.
        self._uncommitted: dict[tuple[int, bytes], CustomerState | bytes | None] = {}
        # Funnel counts of partitions written by a prepared batch not committed yet.
        self._uncommitted_funnel: dict[int, bytes] = {}
        # Resolved once the last sent batch's changelog records are queued in the producer.
        self._changelog_queued: asyncio.Future[None] | None = None

    def current_state(self, partition: int, customer_id: str) -> CustomerState | None:
        """A customer's latest state on this worker (including batches not yet committed)."""
        return self._load(partition, customer_id.encode("utf-8"))

    def uncommitted(self, partition: int) -> dict[bytes, CustomerState | None]:
        """States of ``partition`` folded by batches not written to the store yet (newer than it).

        Readers that scan the store (an export) overlay these, so they agree with the segment
        counts, which count prepared batches.
        """
        return {
            key: from_document(orjson.loads(state)) if isinstance(state, bytes) else state
            for (part, key), state in self._uncommitted.items()
            if part == partition
        }

    def _load(self, partition: int, key: bytes) -> CustomerState | None:
        slot_key = (partition, key)
        raw: CustomerState | bytes | None
        if slot_key in self._uncommitted:
            raw = self._uncommitted[slot_key]
            if not isinstance(raw, bytes):
                return raw
        else:
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
        # One index for the whole batch: definitions may change in between, never within.
        index = self._segment_index()
        has_segments = bool(index.segments)
        catalog = self._campaign_catalog()
        has_campaigns = bool(catalog.campaigns)
        funnel: dict[int, list[FunnelMove]] = {}
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
            before = slot.state
            try:
                new_state = fold(before, envelope, message.offset)
                changes: tuple[SegmentChange, ...] = ()
                if new_state is None:
                    if before is not None and before.segments:
                        changes = exits_on_erasure(index, before, envelope.received_at_ms)
                elif new_state is not before and (
                    has_segments or new_state.segments or new_state.segment_due_ms
                ):
                    new_state, changes = self._memberships(index, before, new_state, envelope)
                reacts = has_campaigns or (new_state is not None and bool(new_state.campaigns))
                if new_state is not None and new_state is not before and reacts:
                    reaction = react(
                        before,
                        new_state,
                        envelope,
                        changes,
                        catalog,
                        links=self._links,
                        default_timezone=self._default_timezone,
                    )
                    new_state = reaction.state
                    self._emit_reaction(reaction.deliveries, reaction.decisions, partition, key, out, outcome)
                    if reaction.funnel:
                        funnel.setdefault(partition, []).extend(reaction.funnel)
            except Exception as exc:  # a bug in the fold must not stop the partition
                log.exception("processor.fold_failed", offset=message.offset, partition=partition)
                failure = RefractError(f"fold failed: {type(exc).__name__}: {exc}")
                failure.code = "fold_failed"
                out.append(self._dead_letter(message, failure))
                continue
            if new_state is slot.state:
                outcome.replayed += 1
                continue
            if self._contacts_topic:
                self._index_contacts(before, new_state, envelope.customer_id, out)
            if new_state is not None and is_anonymous(envelope.customer_id):
                self._hand_over(new_state, envelope, message.offset, out)
            slot.state = new_state
            slot.dirty = True
            if changes:
                self._emit_changes(
                    changes, envelope.event_id, envelope.customer_id, partition, key, out, outcome
                )
            outcome.processed += 1
            type_name = envelope.type_name
            by_type[type_name] = by_type.get(type_name, 0) + 1
            received.append(envelope.received_at_ms)

        markers: dict[int, bytes] = {}
        patched: dict[tuple[int, bytes], _Patched] = {}
        if self._backfill or self.backfill_wanted(index):
            self._plan_backfill(index)
        if self._backfill:
            budget = max(100, BACKFILL_CHUNK - len(messages))
            self._backfill_chunk(index, slots, patched, out, outcome, markers, budget)

        outputs, out = out, []
        changelog = self._store.changelog_topic
        has_timers = len(self.timers) > 0
        written: dict[int, dict[bytes, bytes | None]] = {}
        states: dict[tuple[int, bytes], CustomerState | bytes | None] = {}
        dirty: list[tuple[int, Members | None, Members | None]] = []
        for slot_key, slot in slots.items():
            if not slot.dirty:
                continue
            partition, key = slot_key
            state = slot.state
            value = orjson.dumps(to_document(state)) if state is not None else None
            written.setdefault(partition, {})[key] = value
            states[slot_key] = state
            dirty.append((partition, slot.loaded, state))
            out.append(OutRecord(changelog, key, value, partition))
            due_ms = state.due_ms if state is not None else None
            if due_ms is not None:
                self.timers.schedule(partition, key, due_ms)
            elif has_timers:
                self.timers.schedule(partition, key, None)
        for slot_key, patch in patched.items():
            partition, key = slot_key
            written.setdefault(partition, {})[key] = patch.document
            states[slot_key] = patch.document
            dirty.append((partition, patch.loaded, patch.view))
            out.append(OutRecord(changelog, key, patch.document, partition))
            due_ms = patch.view.due_ms
            if due_ms is not None:
                self.timers.schedule(partition, key, due_ms)
            elif has_timers:
                self.timers.schedule(partition, key, None)
        for partition, marker in markers.items():
            written.setdefault(partition, {})[SEGMENTS_EVALUATED_KEY] = marker
            out.append(OutRecord(changelog, SEGMENTS_EVALUATED_KEY, marker, partition))
        for partition, moves in funnel.items():
            counts = orjson.dumps(self._funnel_counts(partition, moves, outcome))
            written.setdefault(partition, {})[FUNNEL_COUNTS_KEY] = counts
            self._uncommitted_funnel[partition] = counts
            out.append(OutRecord(changelog, FUNNEL_COUNTS_KEY, counts, partition))
        counted = self.segment_counts.prepare(dirty)
        for partition, record in counted.items():
            written.setdefault(partition, {})[SEGMENT_COUNTS_KEY] = record
            out.append(OutRecord(changelog, SEGMENT_COUNTS_KEY, record, partition))
        self._uncommitted.update(states)
        outcome.dead_letters = sum(1 for r in outputs if r.topic == self._dead_letters_topic)
        return PreparedBatch(outcome, outputs, out, written, states, received, started)

    # --- evaluating new and changed segments over existing customers -------------------------

    def backfill_wanted(self, index: SegmentIndex | None = None) -> bool:
        """Whether segments must be evaluated over existing customers: segments or partitions changed."""
        if self._backfill:
            return True
        index = self._segment_index() if index is None else index
        if self._planned is None:
            return bool(index.segments)
        planned_index, partitions = self._planned
        return index is not planned_index or partitions != frozenset(self._assigned_partitions())

    def backfill_progress(self) -> dict[int, int]:
        """Partition -> customers evaluated so far, for the partitions still being evaluated."""
        return {partition: work.evaluated for partition, work in self._backfill.items()}

    def _plan_backfill(self, index: SegmentIndex) -> None:
        """Start evaluating, in each assigned partition, the segments its customers were not evaluated for.

        The versions a partition's customers were all evaluated for are stored in the partition
        itself (``SEGMENTS_EVALUATED_KEY``), so a restarted worker, or the partition's next owner,
        carries on where evaluation stopped: it redoes an interrupted partition from its start,
        which changes nothing for the customers already done.
        """
        partitions = frozenset(self._assigned_partitions())
        if self._planned is not None and self._planned[0] is index and self._planned[1] == partitions:
            for partition in [p for p in self._backfill if p not in partitions]:
                del self._backfill[partition]
            return
        previous = self._planned[1] if self._planned is not None else frozenset()
        self._planned = (index, partitions)
        if previous != partitions:
            self.timers.forget_partitions(set(partitions))
        # Customers may be due by time: timed segments, or campaign flows that wait.
        timed = bool(self._campaign_catalog().campaigns) or any(
            segment.rule.time_dependent for segment in index.segments.values()
        )
        wanted = {segment_id: segment.version for segment_id, segment in index.segments.items()}
        for partition in sorted(partitions):
            done = self._segments_evaluated(partition)
            missing = {s: v for s, v in wanted.items() if done.get(s) != v}
            if not missing:
                current = self._backfill.get(partition)
                if current is not None and not current.segments:
                    continue  # rebuilding the partition's timers: let it finish
                if timed and partition not in previous:
                    # A partition new to this worker: rebuild its timers from its states.
                    self._backfill[partition] = _PartitionBackfill({}, self._customer_keys(partition))
                else:
                    self._backfill.pop(partition, None)
                continue
            log.info("segments.backfill_started", partition=partition, segments=sorted(missing))
            self._backfill[partition] = _PartitionBackfill(missing, self._customer_keys(partition))
        for partition in [p for p in self._backfill if p not in partitions]:
            del self._backfill[partition]
        metrics.SEGMENT_BACKFILL_PARTITIONS.set(len(self._backfill))

    def _customer_keys(self, partition: int) -> Iterator[bytes]:
        """The customers of ``partition`` to evaluate: those stored, and those that only a batch
        not yet written holds.

        A batch folded before the new segments were known may still be waiting for Kafka when
        the plan is made. The customers it stores first are not in RocksDB yet; left out, they
        would stay unevaluated (and uncounted) until their next event, as the partition is marked
        evaluated when the keys run out.
        """
        # A list, not a live RocksDB iterator: the partition's database may close on a rebalance.
        keys = list(self._store.customer_keys(partition))
        stored = set(keys)
        keys.extend(
            key
            for (part, key), state in self._uncommitted.items()
            if part == partition and state is not None and key not in stored
        )
        return iter(keys)

    def _segments_evaluated(self, partition: int) -> dict[str, int]:
        raw = self._store.read(partition, SEGMENTS_EVALUATED_KEY)
        if raw is None:
            return {}
        try:
            done = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return done if isinstance(done, dict) else {}

    def _backfill_chunk(
        self,
        index: SegmentIndex,
        slots: dict[tuple[int, bytes], _Slot],
        patched: dict[tuple[int, bytes], _Patched],
        out: list[OutRecord],
        outcome: BatchOutcome,
        markers: dict[int, bytes],
        budget: int,
    ) -> None:
        now_ms = self._clock_ms()
        uncommitted = self._uncommitted
        read = self._store.read
        for partition in sorted(self._backfill):
            work = self._backfill[partition]
            segments = [s for s in work.segments if s in index.segments]
            reevaluation = Reevaluation.plan(index, segments)
            started = budget
            for key in work.keys:
                budget -= 1
                slot_key = (partition, key)
                slot = slots.get(slot_key)
                if slot is None:
                    raw = uncommitted[slot_key] if slot_key in uncommitted else read(partition, key)
                    if raw is None or isinstance(raw, bytes):
                        # Not folded by any batch in flight: evaluate the stored document.
                        if raw is not None:
                            self._backfill_document(
                                reevaluation, segments, partition, key, raw, now_ms, patched, out, outcome
                            )
                        if budget <= 0:
                            break
                        continue
                    slot = slots[slot_key] = _Slot(raw)
                state = slot.state
                if state is not None and segments:
                    result = self._reevaluate(index, state, segments, now_ms)
                    if (
                        result.segments is not state.segments
                        or result.segment_due_ms is not state.segment_due_ms
                    ):
                        slot.state = evolve(
                            state, {"segments": result.segments, "segment_due_ms": result.segment_due_ms}
                        )
                        slot.dirty = True
                    if result.changes:
                        self._emit_changes(
                            result.changes, None, state.customer_id, partition, key, out, outcome
                        )
                if slot.state is not None and slot.state.due_ms is not None and not slot.dirty:
                    # Dirty states are registered when the batch is written.
                    self.timers.schedule(partition, key, slot.state.due_ms)
                if budget <= 0:
                    break
            work.evaluated += started - budget
            outcome.backfilled += started - budget
            if budget > 0:
                # The keys ran out before the budget: the partition is done. Remember what its
                # customers were evaluated for.
                if work.segments:
                    evaluated = self._segments_evaluated(partition)
                    done = {s: v for s, v in evaluated.items() if s in index.segments}
                    done.update(work.segments)
                    markers[partition] = orjson.dumps(done)
                del self._backfill[partition]
                log.info("segments.backfill_finished", partition=partition, customers=work.evaluated)
            if budget <= 0:
                break
        metrics.SEGMENT_BACKFILL_PARTITIONS.set(len(self._backfill))
        if self._backfill:
            self._wake()

    def _backfill_document(
        self,
        reevaluation: Reevaluation,
        segments: list[str],
        partition: int,
        key: bytes,
        raw: bytes,
        now_ms: int,
        patched: dict[tuple[int, bytes], _Patched],
        out: list[OutRecord],
        outcome: BatchOutcome,
    ) -> None:
        """Evaluate ``segments`` for a stored customer from a view of its document (no full decode).

        When the memberships change, the new document is the stored one with them patched in; the
        customer's timer is registered either way (a partition new to this worker has none).
        """
        doc = orjson.loads(raw)
        view = membership_view(doc)
        if segments:
            result = reevaluation.update(view, now_ms, default_timezone=self._default_timezone)
            if result is None:
                result = self._reevaluate(reevaluation.index, view.as_state(), segments, now_ms)
            if result.changes:
                self._emit_changes(result.changes, None, view.customer_id, partition, key, out, outcome)
            if result.segments is not view.segments or result.segment_due_ms is not view.segment_due_ms:
                # Its timer is registered when the batch is written.
                patched[(partition, key)] = _Patched(
                    orjson.dumps(with_memberships(doc, result.segments, result.segment_due_ms)),
                    view,
                    view.with_memberships(result.segments, result.segment_due_ms),
                )
                return
        due_ms = view.due_ms
        if due_ms is not None:
            self.timers.schedule(partition, key, due_ms)

    def _reevaluate(
        self, index: SegmentIndex, state: CustomerState, segments: list[str], now_ms: int
    ) -> MembershipUpdate:
        """``segments`` evaluated for a stored customer, whatever changed (a backfill)."""
        return update_memberships(
            index,
            state,
            state,
            NOTHING_CHANGED,
            now_ms,
            reevaluate=segments,
            default_timezone=self._default_timezone,
        )

    def _memberships(
        self, index: SegmentIndex, before: CustomerState | None, after: CustomerState, envelope: Envelope
    ) -> tuple[CustomerState, tuple[SegmentChange, ...]]:
        result = update_memberships(
            index,
            before,
            after,
            inputs_changed_by(envelope.payload),
            envelope.received_at_ms,
            default_timezone=self._default_timezone,
        )
        if result.segments is not after.segments or result.segment_due_ms is not after.segment_due_ms:
            after = evolve(after, {"segments": result.segments, "segment_due_ms": result.segment_due_ms})
        return after, result.changes

    def _emit_reaction(
        self,
        deliveries: Sequence[Delivery],
        decisions: Sequence[Decision],
        partition: int,
        key: bytes,
        out: list[OutRecord],
        outcome: BatchOutcome,
    ) -> None:
        """Add the outbox and audit records of a campaign reaction (same partition as the event)."""
        for delivery in deliveries:
            value = encode_typed("Delivery", delivery.to_record())
            out.append(OutRecord(self._deliveries_topic, key, value, partition))
        if decisions:
            value = encode_typed("Decision", audit_record(decisions))
            out.append(OutRecord(self._audit_topic, key, value, partition))
        outcome.deliveries += len(deliveries)
        outcome.decisions += len(decisions)

    def _index_contacts(
        self,
        before: CustomerState | None,
        after: CustomerState | None,
        customer_id: str,
        out: list[OutRecord],
    ) -> None:
        """Keep the contact index (address -> customer, for inbound replies) in step with the profile."""
        old = before.contacts if before is not None else None
        new = after.contacts if after is not None else None
        if old is new or (
            old is not None and new is not None and (old.email, old.phone) == (new.email, new.phone)
        ):
            return
        records = contact_index_records(
            old.email if old else None,
            old.phone if old else None,
            new.email if new else None,
            new.phone if new else None,
            customer_id,
        )
        out.extend(contact_records(self._contacts_topic, records))

    def _hand_over(self, state: CustomerState, envelope: Envelope, offset: int, out: list[OutRecord]) -> None:
        """An anonymous visitor just identified: append their profile's data to the customer's events."""
        payload = envelope.payload
        if not isinstance(payload, CustomerUpdate) or IDENTIFIED_AS not in payload.set:
            return
        customer_id = payload.set[IDENTIFIED_AS]
        if not isinstance(customer_id, str) or not customer_id or is_anonymous(customer_id):
            return
        for number, handed in enumerate(merged_payloads(state)):
            merged = Envelope(
                event_id=f"identify:{envelope.customer_id}:{offset}:{number}",
                customer_id=customer_id,
                occurred_at_ms=envelope.received_at_ms,
                received_at_ms=envelope.received_at_ms,
                source="identify",
                payload=handed,
            )
            out.append(OutRecord(self._events_topic, customer_id.encode("utf-8"), encode_envelope(merged)))

    def funnel_counts(self, partition: int) -> dict[str, dict[str, dict[str, int]]]:
        """campaign -> arm -> stage -> runs, for one partition (including batches not yet committed)."""
        raw = self._uncommitted_funnel.get(partition) or self._store.read(partition, FUNNEL_COUNTS_KEY)
        if raw is None:
            return {}
        try:
            counts = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return counts if isinstance(counts, dict) else {}

    def _funnel_counts(
        self, partition: int, moves: list[FunnelMove], outcome: BatchOutcome
    ) -> dict[str, dict[str, dict[str, int]]]:
        counts = self.funnel_counts(partition)
        for move in moves:
            stages = counts.setdefault(move.campaign_id, {}).setdefault(move.arm, {})
            stages[move.stage] = stages.get(move.stage, 0) + 1
            counted = (move.campaign_id, move.arm, move.stage)
            outcome.funnel[counted] = outcome.funnel.get(counted, 0) + 1
        return counts

    def _emit_changes(
        self,
        changes: tuple[SegmentChange, ...],
        event_id: str | None,
        customer_id: str,
        partition: int,
        key: bytes,
        out: list[OutRecord],
        outcome: BatchOutcome,
    ) -> None:
        """Add SegmentChange records; with no causing event (a backfill) the cause names the version."""
        counted = outcome.segment_changes
        topic = self._segment_changes_topic
        # Same partition number as the event: customer-keyed topics are co-partitioned.
        for change, value in zip(
            changes, encode_segment_changes(customer_id, event_id, changes), strict=True
        ):
            out.append(OutRecord(topic, key, value, partition))
            counted[(change.segment_id, change.kind)] = counted.get((change.segment_id, change.kind), 0) + 1

    async def commit(self, batch: PreparedBatch) -> BatchOutcome:
        """Produce a prepared batch's outputs, then its changelog (retrying), then write RocksDB.

        Batches must be committed in the order they were prepared.
        """
        await self._send(self._producer.send_counted, batch.outputs)
        return self._persist(batch, await self._send(self._producer.send_batch, batch.changelog))

    def send(self, batch: PreparedBatch) -> asyncio.Future[list[Delivered]]:
        """Produce a prepared batch's outputs now and its changelog once they are acked; the future
        gives the changelog's acks (their offsets), which ``finish`` needs.

        Outputs first: a crash in between leaves outputs without the state that produced them,
        so the replay of the batch's events (their offsets are not committed) emits the same
        records again, with the same ids, which the readers drop. The other order would lose
        them: the recovered state would say the events were applied. Across batches the
        changelog keeps the order the batches were prepared in.

        For pipelining: several batches may be sent before the first is finished. There is no
        retry here (the idempotent producer already retries transient errors in order): a batch
        that fails must stop the worker, because a later batch may already be in Kafka.
        """
        previous = self._changelog_queued
        if not batch.outputs and (previous is None or (previous.done() and previous.exception() is None)):
            return self._producer.send_batch(batch.changelog)
        queued: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._changelog_queued = queued
        return asyncio.ensure_future(self._send_in_order(batch, previous, queued))

    async def _send_in_order(
        self, batch: PreparedBatch, previous: asyncio.Future[None] | None, queued: asyncio.Future[None]
    ) -> list[Delivered]:
        try:
            await self._producer.send_counted(batch.outputs)
            if previous is not None:
                await previous
            changelog_acked = self._producer.send_batch(batch.changelog)
        except BaseException as exc:
            queued.set_exception(exc)
            queued.exception()  # retrieved here: the pump reports the batch's own failure
            raise
        queued.set_result(None)
        return await changelog_acked

    async def finish(self, batch: PreparedBatch, sent: asyncio.Future[list[Delivered]]) -> BatchOutcome:
        """Wait for a sent batch's acks and write its states to RocksDB (in send order)."""
        return self._persist(batch, await sent)

    def _persist(self, batch: PreparedBatch, changelog_acks: list[Delivered]) -> BatchOutcome:
        last_changelog_offset: dict[int, int] = {}
        for report in changelog_acks:
            if report.offset > last_changelog_offset.get(report.partition, -1):
                last_changelog_offset[report.partition] = report.offset
        for partition, values in batch.written.items():
            self._store.write(partition, values, last_changelog_offset[partition])
            batch.outcome.customers_written += len(values)
        for partition, values in batch.written.items():
            counts = values.get(FUNNEL_COUNTS_KEY)
            if counts is not None and self._uncommitted_funnel.get(partition) is counts:
                del self._uncommitted_funnel[partition]
        self.segment_counts.written(batch.written)
        uncommitted = self._uncommitted
        for slot_key, state in batch.states.items():
            # A later prepared batch may have changed this customer again: keep its state.
            if slot_key in uncommitted and uncommitted[slot_key] is state:
                del uncommitted[slot_key]
        self._record_metrics(batch.outcome, batch.received, batch.started)
        return batch.outcome

    async def _send(self, send: Callable[[list[OutRecord]], asyncio.Future[_T]], out: list[OutRecord]) -> _T:
        """Produce the batch's records, retrying while Kafka says it may work later.

        Re-sending is safe: changelog records carry whole states, outputs carry deterministic ids.
        Past the last attempt the error propagates and the batch's offsets stay uncommitted.
        """
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                return await send(out)
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
        if key is not None and key.startswith(b"\x00"):
            # Such keys hold the store's own bookkeeping (SEGMENTS_EVALUATED_KEY).
            raise ValidationError("a customer id may not start with a NUL character", field="key")
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
        if outcome.backfilled:
            metrics.SEGMENT_BACKFILL_CUSTOMERS.inc(outcome.backfilled)
        for (segment_id, kind), count in outcome.segment_changes.items():
            metrics.SEGMENT_CHANGES.labels(segment_id, kind.lower()).inc(count)
        for (campaign_id, arm, stage), count in outcome.funnel.items():
            metrics.CAMPAIGN_FUNNEL.labels(campaign_id, arm, stage).inc(count)
        if outcome.deliveries:
            metrics.DELIVERIES_DECIDED.inc(outcome.deliveries)
        now_ms = self._clock_ms()
        observe = metrics.PROCESSING_LATENCY.observe
        for received_at_ms in received:
            observe(max(0, now_ms - received_at_ms) / 1000)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(outcome.processed + outcome.replayed + outcome.dead_letters)
