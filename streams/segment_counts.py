"""How many customers each segment has, per partition, kept with the states that make them up.

Each partition of the customer store holds one count record (``SEGMENT_COUNTS_KEY``: JSON of
segment id -> members). The processor hands over every state it writes with the state it read;
the difference of their memberships adjusts the partition's counts, and the new count record is
written in the same batch, to the same changelog and the same RocksDB write batch, as the states.
So the counts always equal the memberships stored: a replayed event leaves the state as it was
and changes nothing; a crash loses or keeps the states and the counts together; recovery,
standbys and a partition's next owner get both from the changelog. A partition that has no
record yet (written before counts existed) is counted once from its states.

The processor prepares a batch before the previous one is written, so counts prepared but not
yet written are kept here and read instead of the store, as the processor does with states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson
import structlog

from streams import metrics

log = structlog.get_logger(__name__)

# Per partition: segment id -> customers of the partition in it (JSON). Travels in the changelog.
SEGMENT_COUNTS_KEY = b"\x00segment-counts"
# A state document that lists memberships contains this (the cheap test before decoding one).
_SEGMENTS_FIELD = b'"segments":'


class Members(Protocol):
    """A customer's memberships: a state, or a membership view of a stored one."""

    @property
    def segments(self) -> Mapping[str, int]: ...


class SegmentCounts:
    def __init__(self, store: Any) -> None:
        self._store = store
        # Partition -> (counts, the encoded record) prepared but not yet written to the store.
        self._uncommitted: dict[int, tuple[dict[str, int], bytes]] = {}
        # Partition -> counts recounted from states, for partitions with no record yet.
        self._recounted: dict[int, dict[str, int]] = {}
        # The segments the gauge has a value for.
        self._published: set[str] = set()

    def counts(self, partition: int) -> dict[str, int]:
        """Segment id -> members in ``partition``, as of the last prepared batch."""
        pending = self._uncommitted.get(partition)
        if pending is not None:
            return pending[0]
        raw = self._store.read(partition, SEGMENT_COUNTS_KEY)
        if raw is not None:
            self._recounted.pop(partition, None)
            counts: dict[str, int] = orjson.loads(raw)
            return counts
        if partition not in self._recounted:
            self._recounted[partition] = self._recount(partition)
        return self._recounted[partition]

    def prepare(self, changed: Iterable[tuple[int, Members | None, Members | None]]) -> dict[int, bytes]:
        """The count records to write with a batch: (partition, state read, state written) in."""
        deltas: dict[int, dict[str, int]] = {}
        for partition, before, after in changed:
            was = before.segments if before is not None else _NONE
            now = after.segments if after is not None else _NONE
            if was is now or was.keys() == now.keys():
                continue
            delta = deltas.setdefault(partition, {})
            for segment_id in now.keys() - was.keys():
                delta[segment_id] = delta.get(segment_id, 0) + 1
            for segment_id in was.keys() - now.keys():
                delta[segment_id] = delta.get(segment_id, 0) - 1
        records: dict[int, bytes] = {}
        for partition, delta in deltas.items():
            if not any(delta.values()):
                continue
            counts = dict(self.counts(partition))
            for segment_id, change in delta.items():
                members = counts.get(segment_id, 0) + change
                if members:
                    counts[segment_id] = members
                else:
                    counts.pop(segment_id, None)
            record = orjson.dumps(counts)
            self._uncommitted[partition] = (counts, record)
            records[partition] = record
        return records

    def written(self, values: Mapping[int, Mapping[bytes, bytes | None]]) -> None:
        """A batch's values are in the store: its count records need no keeping here any more."""
        for partition, written in values.items():
            pending = self._uncommitted.get(partition)
            # A later prepared batch may have counted again: keep its counts.
            if pending is not None and written.get(SEGMENT_COUNTS_KEY) is pending[1]:
                del self._uncommitted[partition]

    def totals(self, partitions: Iterable[int]) -> dict[str, int]:
        """Segment id -> members over ``partitions``."""
        totals: dict[str, int] = {}
        for partition in partitions:
            for segment_id, members in self.counts(partition).items():
                totals[segment_id] = totals.get(segment_id, 0) + members
        return totals

    def publish(self, partitions: Iterable[int], segments: Iterable[str]) -> None:
        """Set ``refract_segment_members`` for the defined ``segments`` over this worker's partitions."""
        totals = self.totals(partitions)
        defined = set(segments)
        for segment_id in defined:
            metrics.SEGMENT_MEMBERS.labels(segment_id).set(totals.get(segment_id, 0))
        for segment_id in self._published - defined:
            metrics.SEGMENT_MEMBERS.remove(segment_id)
        self._published = defined

    def _recount(self, partition: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        customers = 0
        for key in self._store.customer_keys(partition):
            raw = self._store.read(partition, key)
            if raw is None or _SEGMENTS_FIELD not in raw:
                continue
            customers += 1
            for segment_id in orjson.loads(raw).get("segments") or ():
                counts[segment_id] = counts.get(segment_id, 0) + 1
        log.info("segments.recounted", partition=partition, customers_in_segments=customers)
        return counts


_NONE: Mapping[str, int] = {}
