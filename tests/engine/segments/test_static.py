"""Static segments: an uploaded list becomes events of a reserved attribute, evaluated like any rule."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from engine.events import CustomerUpdate, Envelope
from engine.fold import fold
from engine.segments import rule_from_text
from engine.segments.definition import segment_from_body
from engine.segments.membership import CompiledSegment, SegmentIndex, evaluate_all, inputs_changed_by, update
from engine.segments.static import add_update, list_change, remove_update, static_attribute
from engine.state import CustomerState

AT_MS = 1_718_020_800_000


def test_a_static_body_has_no_rule_to_show_and_reads_its_reserved_attribute() -> None:
    segment = segment_from_body("vip-list", 2, {"kind": "static", "name": "VIPs"})
    assert segment.is_static and segment.rule.inputs.attributes == {"$static:vip-list"}
    shown = segment.as_json()
    assert shown["kind"] == "static" and "rule" not in shown and "rule_json" not in shown


def test_a_static_segment_with_a_rule_or_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="a static segment has no rule"):
        segment_from_body("x", 1, {"kind": "static", "rule": "vip"})
    with pytest.raises(ValidationError, match="'list' is not a kind of segment"):
        segment_from_body("x", 1, {"kind": "list"})


def test_an_upload_adds_the_new_customers_and_removes_those_no_longer_listed() -> None:
    change = list_change(current=["b", "a", "c"], wanted=["d", "a", "c", "d"])
    assert (change.added, change.removed) == (("d",), ("b",))


def test_adding_and_removing_a_customer_enters_and_exits_the_segment_and_its_readers() -> None:
    static = segment_from_body("vip-list", 1, {"kind": "static"})
    index = SegmentIndex.build(
        [
            CompiledSegment("vip-list", 1, static.rule),
            CompiledSegment("rich-vip", 1, rule_from_text('in_segment("vip-list") and balance > 10')),
        ]
    )
    state = CustomerState("ana", attributes={"balance": 100}, segments={}, applied_offset=0)
    kinds = []
    for offset, payload in enumerate((add_update("vip-list"), remove_update("vip-list")), start=1):
        assert isinstance(payload, CustomerUpdate)
        after = fold(state, Envelope(f"e{offset}", "ana", AT_MS, AT_MS, "upload", payload), offset)
        assert after is not None
        result = update(index, state, after, inputs_changed_by(payload), AT_MS)
        kinds.append([(c.segment_id, c.kind) for c in result.changes])
        state = CustomerState(
            "ana", attributes=after.attributes, segments=result.segments, applied_offset=offset
        )
        assert dict(result.segments).keys() == evaluate_all(index, state, AT_MS).keys()
    assert kinds == [
        [("vip-list", "ENTERED"), ("rich-vip", "ENTERED")],
        [("vip-list", "EXITED"), ("rich-vip", "EXITED")],
    ]
    assert static_attribute("vip-list") not in state.attributes
