"""Segment timers: customers come due once per registered moment, in time order."""

from __future__ import annotations

from engine.events import Tick
from streams.timers import SegmentTimers, tick_envelope


def test_customers_come_due_in_time_order_and_only_once() -> None:
    timers = SegmentTimers()
    timers.schedule(0, b"b", 200)
    timers.schedule(1, b"a", 100)
    timers.schedule(0, b"c", 300)
    assert timers.pop_due(250, {0, 1}) == [(1, b"a", 100), (0, b"b", 200)]
    assert timers.pop_due(250, {0, 1}) == []
    assert timers.pop_due(300, {0, 1}) == [(0, b"c", 300)]
    assert len(timers) == 0


def test_a_new_due_moment_replaces_the_old_one_and_none_removes_it() -> None:
    timers = SegmentTimers()
    timers.schedule(0, b"a", 100)
    timers.schedule(0, b"a", 500)
    timers.schedule(0, b"b", 100)
    timers.schedule(0, b"b", None)
    assert timers.pop_due(400, {0}) == []
    assert timers.pop_due(500, {0}) == [(0, b"a", 500)]


def test_partitions_given_away_are_forgotten() -> None:
    timers = SegmentTimers()
    timers.schedule(0, b"a", 100)
    timers.schedule(1, b"b", 100)
    timers.forget_partitions({1})
    assert timers.pop_due(100, {0, 1}) == [(1, b"b", 100)]


def test_a_tick_has_an_id_derived_from_the_customer_and_the_moment() -> None:
    first = tick_envelope("ana", 1_000, 1_500)
    assert first == tick_envelope("ana", 1_000, 1_500)
    assert first.event_id == "tick:ana:1000" and first.received_at_ms == 1_500
    assert first.payload == Tick(due_at_ms=1_000, reason="segments")
    assert tick_envelope("ana", 1_000, 900).received_at_ms == 1_000
