"""Every worker's in-memory copy of ``refract.definitions``, and the segment index built from it.

The topic is compacted and small (one record per definition), so each worker reads it whole with a
plain confluent-kafka consumer, assigned every partition from the beginning, in a thread of its
own, and keeps following it. No consumer group: every worker must see every definition. This is
simpler and cheaper than a faust GlobalTable, which would need its own changelog topic (not the
one ``refract apply`` and the admin API write) and would block the worker's start-up in faust's
table recovery.

When segments change, the thread compiles them and builds a new ``SegmentIndex``, then swaps it
in with one attribute assignment: the processor reads ``index`` once per batch and never sees a
half-built one. ``loaded`` is set once the topic has been read up to where it ended at start, so a
worker processes no event before it knows the segments.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from engine.campaigns.catalog import EMPTY_CATALOG, CampaignCatalog
from engine.campaigns.definition import CAMPAIGN_KIND, campaign_from_body
from engine.campaigns.model import Campaign, Cap
from engine.campaigns.placements import PLACEMENT_KIND, Placement, placement_from_body
from engine.errors import RefractError
from engine.segments import SegmentCycleError
from engine.segments.definition import SEGMENT_KIND, SegmentDefinition, segment_from_body
from engine.segments.membership import EMPTY_INDEX, CompiledSegment, SegmentIndex
from schemas.codec import decode, encode
from streams.producer import OutRecord

log = structlog.get_logger(__name__)

# Definition kinds the reader compiles (segments into the index, campaigns into the catalog).
_COMPILED_KINDS = frozenset({SEGMENT_KIND, CAMPAIGN_KIND, PLACEMENT_KIND})


@dataclass(slots=True, frozen=True)
class DefinitionRecord:
    """One ``Definition`` as read from the topic."""

    kind: str
    definition_id: str
    version: int
    body: str
    deleted: bool
    updated_at_ms: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.definition_id}"


def definition_record(
    topic: str,
    kind: str,
    definition_id: str,
    version: int,
    body: Mapping[str, Any],
    *,
    deleted: bool,
    now_ms: int,
) -> OutRecord:
    """The record that saves a definition on ``topic`` (the definitions topic), keyed ``kind:id``."""
    value = encode(
        "Definition",
        {
            "kind": kind,
            "id": definition_id,
            "version": version,
            "body": orjson.dumps(body).decode(),
            "deleted": deleted,
            "updated_at": now_ms,
        },
    )
    return OutRecord(topic, f"{kind}:{definition_id}".encode(), value, 0)


def decode_definition(value: bytes) -> DefinitionRecord:
    name, fields = decode(value)
    if name != "Definition":
        raise RefractError(f"expected a Definition record, got {name}")
    return DefinitionRecord(
        kind=fields["kind"],
        definition_id=fields["id"],
        version=int(fields["version"]),
        body=fields["body"],
        deleted=bool(fields["deleted"]),
        updated_at_ms=int(fields["updated_at"]),
    )


def compile_segment(record: DefinitionRecord) -> SegmentDefinition:
    """The segment a (not deleted) record defines. Raises RefractError when it cannot be read."""
    try:
        body = orjson.loads(record.body)
    except orjson.JSONDecodeError as exc:
        raise RefractError(f"the body is not JSON: {exc}") from None
    return segment_from_body(record.definition_id, record.version, body, record.updated_at_ms)


def compile_campaign(record: DefinitionRecord) -> Campaign:
    """The campaign a (not deleted) record defines. Raises RefractError when it cannot be read."""
    try:
        body = orjson.loads(record.body)
    except orjson.JSONDecodeError as exc:
        raise RefractError(f"the body is not JSON: {exc}") from None
    return campaign_from_body(record.definition_id, record.version, body, record.updated_at_ms)


def build_index(segments: Mapping[str, SegmentDefinition]) -> SegmentIndex:
    """The index of ``segments``; segments in an ``in_segment`` loop are left out (and logged).

    The API refuses loops, so a loop can only come from writers racing each other.
    """
    kept = dict(segments)
    while True:
        try:
            return SegmentIndex.build(CompiledSegment(s.segment_id, s.version, s.rule) for s in kept.values())
        except SegmentCycleError as exc:
            newest = max(exc.cycle, key=lambda s: (kept[s].updated_at_ms, s) if s in kept else (-1, s))
            log.error("definitions.segment_cycle_skipped", segment=newest, cycle=list(exc.cycle))
            kept.pop(newest, None)


class DefinitionsReader:
    """Follows ``topic`` from its beginning in a thread; ``segments`` and ``index`` are current."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        poll_timeout_s: float = 0.2,
        channel_caps: tuple[Cap, ...] = (),
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._poll_timeout_s = poll_timeout_s
        self.records: dict[str, DefinitionRecord] = {}
        self.segments: Mapping[str, SegmentDefinition] = {}
        self.index: SegmentIndex = EMPTY_INDEX
        self.campaigns: Mapping[str, Campaign] = {}
        self.placements: Mapping[str, Placement] = {}
        self.catalog: CampaignCatalog = EMPTY_CATALOG.with_channel_caps(channel_caps)
        self._channel_caps = channel_caps
        self.loaded = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="refract-definitions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def latest(self, kind: str, definition_id: str) -> DefinitionRecord | None:
        """The last record of a definition (also when deleted), to number the next version."""
        return self.records.get(f"{kind}:{definition_id}")

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"refract-definitions-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            partitions = self._assign(consumer)
            at_end: set[int] = set()
            while not self._stopping.is_set():
                messages = consumer.consume(500, self._poll_timeout_s)
                changed = False
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(message.partition() or 0)
                        else:
                            log.warning("definitions.read_error", error=str(error))
                        continue
                    changed |= self._apply(message.key(), message.value())
                if changed:
                    self._rebuild()
                if not self.loaded.is_set() and at_end >= partitions:
                    self.loaded.set()
                    log.info("definitions.loaded", segments=len(self.segments))
        except Exception:
            log.exception("definitions.reader_failed")
            raise
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> set[int]:
        while not self._stopping.is_set():
            metadata = consumer.list_topics(self.topic, timeout=10.0)
            topic = metadata.topics.get(self.topic)
            if topic is not None and topic.error is None and topic.partitions:
                partitions = set(topic.partitions)
                consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
                return partitions
            time.sleep(0.5)
        return set()

    def _apply(self, key: bytes | None, value: bytes | None) -> bool:
        """Take one record in; True when a segment changed."""
        if key is None:
            return False
        if value is None:  # a tombstone: the definition is gone for good
            record = self.records.pop(key.decode("utf-8", "replace"), None)
            return record is not None and record.kind in _COMPILED_KINDS
        try:
            record = decode_definition(value)
        except Exception as exc:
            log.error("definitions.undecodable", key=key.decode("utf-8", "replace"), error=repr(exc))
            return False
        self.records[record.key] = record
        return record.kind in _COMPILED_KINDS

    def _rebuild(self) -> None:
        self._rebuild_segments()
        self._rebuild_campaigns()
        self._rebuild_placements()

    def _rebuild_placements(self) -> None:
        placements: dict[str, Placement] = {}
        for record in self.records.values():
            if record.kind != PLACEMENT_KIND or record.deleted:
                continue
            known = self.placements.get(record.definition_id)
            if known is not None and known.version == record.version:
                placements[record.definition_id] = known
                continue
            try:
                body = orjson.loads(record.body)
                placements[record.definition_id] = placement_from_body(
                    record.definition_id, record.version, body, record.updated_at_ms
                )
            except (RefractError, orjson.JSONDecodeError) as exc:
                log.error("definitions.placement_skipped", placement=record.definition_id, error=str(exc))
        self.placements = placements

    def _rebuild_campaigns(self) -> None:
        campaigns: dict[str, Campaign] = {}
        previous = self.campaigns
        for record in self.records.values():
            if record.kind != CAMPAIGN_KIND or record.deleted:
                continue
            known = previous.get(record.definition_id)
            if known is not None and known.version == record.version:
                campaigns[record.definition_id] = known
                continue
            try:
                campaigns[record.definition_id] = compile_campaign(record)
            except RefractError as exc:
                log.error(
                    "definitions.campaign_skipped",
                    campaign=record.definition_id,
                    version=record.version,
                    error=exc.message,
                )
        if campaigns.keys() == previous.keys() and all(campaigns[c] is previous[c] for c in campaigns):
            return
        # One assignment: the processor reads ``catalog`` once per batch and never a half-built one.
        self.catalog = CampaignCatalog.build(campaigns.values(), self._channel_caps)
        self.campaigns = campaigns
        log.info("definitions.campaigns_changed", campaigns=len(campaigns))

    def _rebuild_segments(self) -> None:
        segments: dict[str, SegmentDefinition] = {}
        previous = self.segments
        for record in self.records.values():
            if record.kind != SEGMENT_KIND or record.deleted:
                continue
            known = previous.get(record.definition_id)
            if known is not None and known.version == record.version:
                segments[record.definition_id] = known
                continue
            try:
                segments[record.definition_id] = compile_segment(record)
            except RefractError as exc:
                log.error(
                    "definitions.segment_skipped",
                    segment=record.definition_id,
                    version=record.version,
                    error=exc.message,
                )
        if segments.keys() == previous.keys() and all(segments[s] is previous[s] for s in segments):
            return  # only other kinds changed: keep the index (a new one would re-plan backfills)
        index = build_index(segments)
        self.segments = segments
        self.index = index
        log.info("definitions.segments_changed", segments=len(segments))


def read_definitions(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[str, DefinitionRecord]:
    """Every definition now on ``topic`` (read once to its end): key -> last record."""
    reader = DefinitionsReader(bootstrap, topic, poll_timeout_s=0.1)
    reader.start()
    try:
        if not reader.loaded.wait(timeout_s):
            raise RefractError(f"could not read {topic} to its end within {timeout_s:.0f} s; is Kafka up?")
        return dict(reader.records)
    finally:
        reader.stop()
