"""Segment definitions: the body saved on the topic, read back into a compiled rule."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from engine.segments import RuleSyntaxError, rule_from_text
from engine.segments.definition import check_segment_id, definition_key, segment_body, segment_from_body


def test_a_text_body_reads_into_a_named_versioned_segment() -> None:
    segment = segment_from_body("rich", 3, {"name": "Rich", "description": "d", "rule": "balance >= 10000"})
    assert (segment.segment_id, segment.version, segment.name, segment.description) == (
        "rich",
        3,
        "Rich",
        "d",
    )
    assert segment.rule == rule_from_text("balance >= 10000")
    assert segment.key == definition_key("rich") == "segment:rich"
    shown = segment.as_json()
    assert shown["rule"] == "balance >= 10000"
    assert shown["rule_json"] == {"attr": "balance", "op": ">=", "value": 10000}


def test_a_json_body_reads_into_the_same_rule_and_the_name_defaults_to_the_id() -> None:
    segment = segment_from_body("rich", 1, {"rule_json": {"attr": "balance", "op": ">=", "value": 10000}})
    assert segment.rule == rule_from_text("balance >= 10000") and segment.name == "rich"


def test_a_rule_that_cannot_be_read_says_where() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        segment_from_body("x", 1, {"rule": "balance >= and"})
    assert caught.value.message.startswith("line 1, column 12:")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"rule": "true", "rule_json": True},
        {"rule": 5},
        {"rule": "true", "colour": "red"},
        {"rule": "a", "name": 1},
    ],
)
def test_malformed_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        segment_from_body("x", 1, body)


@pytest.mark.parametrize("segment_id", ["", "-a", "a b", "a/b", "x" * 101, 5])
def test_segment_ids_are_plain(segment_id: object) -> None:
    with pytest.raises(ValidationError):
        check_segment_id(segment_id)


def test_the_saved_body_leaves_the_id_to_the_key() -> None:
    assert segment_body({"id": "a", "rule": "true"}) == {"rule": "true"}
