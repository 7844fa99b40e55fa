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
worker processes no event before it knows the segments. Syncs (``syncs``) are validated the same
way; one that does not validate is left out, and logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import structlog

from connectors.syncs.definition import SYNC_KIND, SyncDefinition, sync_from_body
from engine.campaigns.catalog import EMPTY_CATALOG, CampaignCatalog
from engine.campaigns.definition import CAMPAIGN_KIND, campaign_from_body
from engine.campaigns.model import Campaign, Cap
from engine.campaigns.placements import PLACEMENT_KIND, Placement, placement_from_body
from engine.errors import RefractError
from engine.segments import SegmentCycleError
from engine.segments.definition import SEGMENT_KIND, SegmentDefinition, segment_from_body
from engine.segments.membership import EMPTY_INDEX, CompiledSegment, SegmentIndex
from schemas.codec import decode, encode
from streams.compacted_topic import CompactedTopicFollower
from streams.producer import OutRecord

log = structlog.get_logger(__name__)

# Definition kinds the reader compiles (segments into the index, campaigns into the catalog, syncs checked).
_COMPILED_KINDS = frozenset({SEGMENT_KIND, CAMPAIGN_KIND, PLACEMENT_KIND, SYNC_KIND})


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


T = TypeVar("T")


def compile_record(record: DefinitionRecord, read: Callable[[str, int, Any, int], T]) -> T:
    """What a (not deleted) record defines, read by ``read(id, version, body, updated_at_ms)``.

    Raises RefractError when it cannot be read.
    """
    try:
        body = orjson.loads(record.body)
    except orjson.JSONDecodeError as exc:
        raise RefractError(f"the body is not JSON: {exc}") from None
    return read(record.definition_id, record.version, body, record.updated_at_ms)


def compile_segment(record: DefinitionRecord) -> SegmentDefinition:
    return compile_record(record, segment_from_body)


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


class DefinitionsReader(CompactedTopicFollower):
    """Follows ``topic`` from its beginning in a thread; ``segments`` and ``index`` are current."""

    name = "definitions"

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        poll_timeout_s: float = 0.2,
        channel_caps: tuple[Cap, ...] = (),
    ) -> None:
        super().__init__(bootstrap, topic, poll_timeout_s=poll_timeout_s)
        self.records: dict[str, DefinitionRecord] = {}
        self.segments: Mapping[str, SegmentDefinition] = {}
        self.index: SegmentIndex = EMPTY_INDEX
        self.campaigns: Mapping[str, Campaign] = {}
        self.placements: Mapping[str, Placement] = {}
        self.syncs: Mapping[str, SyncDefinition] = {}
        self.catalog: CampaignCatalog = EMPTY_CATALOG.with_channel_caps(channel_caps)
        self._channel_caps = channel_caps

    def latest(self, kind: str, definition_id: str) -> DefinitionRecord | None:
        """The last record of a definition (also when deleted), to number the next version."""
        return self.records.get(f"{kind}:{definition_id}")

    def take(self, records: Sequence[tuple[bytes | None, bytes | None]]) -> None:
        changed = False
        for key, value in records:
            changed |= self._apply(key, value)
        if changed:
            self._rebuild()

    def loaded_fields(self) -> dict[str, Any]:
        return {"segments": len(self.segments), "campaigns": len(self.campaigns), "syncs": len(self.syncs)}

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
        segments = self._compiled(SEGMENT_KIND, self.segments, segment_from_body)
        if segments is not None:
            # A new index makes the processor re-plan backfills: only when segments changed.
            self.index = build_index(segments)
            self.segments = segments
            log.info("definitions.segments_changed", segments=len(segments))
        campaigns = self._compiled(CAMPAIGN_KIND, self.campaigns, campaign_from_body)
        if campaigns is not None:
            # One assignment: the processor reads ``catalog`` once per batch, never a half-built one.
            self.catalog = CampaignCatalog.build(campaigns.values(), self._channel_caps)
            self.campaigns = campaigns
            log.info("definitions.campaigns_changed", campaigns=len(campaigns))
        placements = self._compiled(PLACEMENT_KIND, self.placements, placement_from_body)
        if placements is not None:
            self.placements = placements
        syncs = self._compiled(SYNC_KIND, self.syncs, sync_from_body)
        if syncs is not None:
            self.syncs = syncs
            log.info("definitions.syncs_changed", syncs=len(syncs))

    def _compiled(
        self, kind: str, previous: Mapping[str, T], read: Callable[[str, int, Any, int], T]
    ) -> dict[str, T] | None:
        """The definitions of ``kind`` now (reusing what did not change), or None if none changed."""
        compiled: dict[str, T] = {}
        for record in self.records.values():
            if record.kind != kind or record.deleted:
                continue
            known = previous.get(record.definition_id)
            if known is not None and getattr(known, "version", None) == record.version:
                compiled[record.definition_id] = known
                continue
            try:
                compiled[record.definition_id] = compile_record(record, read)
            except RefractError as exc:
                log.error(
                    f"definitions.{kind}_skipped",
                    definition=record.definition_id,
                    version=record.version,
                    error=exc.message,
                )
        if compiled.keys() == previous.keys() and all(compiled[k] is previous[k] for k in compiled):
            return None
        return compiled


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
