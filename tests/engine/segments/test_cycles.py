"""Segments may use other segments, but never in a loop; evaluation follows dependencies."""

from __future__ import annotations

import pytest

from engine.segments import SegmentCycleError, check_no_cycles, evaluation_order, rule_from_text


def test_segments_without_loops_pass_and_are_ordered_after_what_they_read() -> None:
    definitions = {
        "vip": rule_from_text("balance > 100000"),
        "gold": rule_from_text('in_segment("vip") and age > 30'),
        "offer": rule_from_text('in_segment("gold") or in_segment("vip") or in_segment("gone")'),
    }
    check_no_cycles(definitions)
    order = evaluation_order(definitions)
    assert order.index("vip") < order.index("gold") < order.index("offer")
    assert set(order) == set(definitions)


def test_a_loop_is_refused_with_its_members_named_in_order() -> None:
    definitions = {
        "a": rule_from_text('in_segment("b")'),
        "b": rule_from_text('in_segment("c") and x == 1'),
        "c": rule_from_text('in_segment("a")'),
        "d": rule_from_text('in_segment("a")'),
    }
    with pytest.raises(SegmentCycleError) as caught:
        check_no_cycles(definitions)
    assert caught.value.cycle == ("a", "b", "c")
    assert "a → b → c → a" in caught.value.message
    assert caught.value.code == "segment_cycle"


def test_a_segment_that_reads_itself_is_a_loop() -> None:
    with pytest.raises(SegmentCycleError, match="vip → vip"):
        check_no_cycles({"vip": rule_from_text('in_segment("vip") or balance > 5')})
