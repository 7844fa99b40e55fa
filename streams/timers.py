"""Segment timers: append a ``Tick`` for a customer when one of their segments may change by time.

The processor registers each written state's ``segments_due_ms`` here; a worker task asks every
second for the customers now due and appends a ``Tick`` for each to ``refract.events``, which is
processed like any other event (so the segments that are due are evaluated again, in order, with
the same guarantees). The schedule lives in memory: when a worker gets a partition it rebuilds the
schedule from the partition's states, in chunks, as it does to evaluate new segments. There is no
periodic scan.

A customer is ticked at most once per due moment: a Tick's id is derived from the customer and the
due moment, and a due moment already ticked is not ticked again until the state registers another.
"""

from __future__ import annotations

import heapq

from engine.events import Envelope, Tick

TICK_REASON = "segments"


class SegmentTimers:
    """A min-heap of (due_ms, partition, customer key); stale entries are skipped when popped."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, bytes]] = []
        # (partition, key) -> the due moment registered last (what a popped entry must match).
        self._due: dict[tuple[int, bytes], int] = {}

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, partition: int, key: bytes, due_ms: int | None) -> None:
        """Register (or replace, or with None remove) the moment a customer is next due."""
        slot = (partition, key)
        if due_ms is None:
            self._due.pop(slot, None)
            return
        if self._due.get(slot) == due_ms:
            return
        self._due[slot] = due_ms
        heapq.heappush(self._heap, (due_ms, partition, key))

    def pop_due(self, now_ms: int, partitions: set[int]) -> list[tuple[int, bytes, int]]:
        """(partition, key, due_ms) of the customers due at ``now_ms`` in ``partitions``; each once."""
        due: list[tuple[int, bytes, int]] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            due_ms, partition, key = heapq.heappop(heap)
            slot = (partition, key)
            if self._due.get(slot) != due_ms:
                continue  # replaced or removed since
            del self._due[slot]
            if partition in partitions:
                due.append((partition, key, due_ms))
        return due

    def forget_partitions(self, keep: set[int]) -> None:
        """Drop the schedule of partitions this worker no longer has."""
        self._due = {slot: due for slot, due in self._due.items() if slot[0] in keep}
        self._heap = [entry for entry in self._heap if entry[1] in keep]
        heapq.heapify(self._heap)


def tick_envelope(customer_id: str, due_ms: int, now_ms: int) -> Envelope:
    """The Tick appended for a customer due at ``due_ms`` (its id is the same on a retry)."""
    return Envelope(
        event_id=f"tick:{customer_id}:{due_ms}",
        customer_id=customer_id,
        occurred_at_ms=due_ms,
        received_at_ms=max(now_ms, due_ms),
        source="timer",
        payload=Tick(due_at_ms=due_ms, reason=TICK_REASON),
    )
