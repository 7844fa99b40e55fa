"""Static segments: a list of customer ids uploaded as CSV, kept as events like everything else.

Membership of a static segment is a reserved profile attribute, ``$static:<segment id>``, true
for the customers on the list. Uploading a list appends a ``CustomerUpdate`` per customer added
(set it) or removed (unset it) to ``refract.events``, so the list is replayable from the log, and
the segment's rule is just that attribute: the processor evaluates it like any rule, emits
``SegmentChange`` when it changes, and ``in_segment("<id>")`` reads it. ``$`` is not allowed in
attribute names sent through the API or CSV imports, so only uploads set these attributes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.events import CustomerUpdate
from engine.segments.compiler import Rule, compile_rule
from engine.segments.nodes import Attribute, Truth

STATIC_KIND = "static"
RULE_KIND = "rule"
STATIC_ATTRIBUTE_PREFIX = "$static:"


def static_attribute(segment_id: str) -> str:
    """The reserved attribute that says a customer is on a static segment's list."""
    return f"{STATIC_ATTRIBUTE_PREFIX}{segment_id}"


def is_reserved_attribute(name: str) -> bool:
    return name.startswith("$")


def static_rule(segment_id: str) -> Rule:
    """The rule of a static segment: its reserved attribute is true."""
    return compile_rule(Truth(Attribute(static_attribute(segment_id))))


@dataclass(slots=True, frozen=True)
class ListChange:
    """What an upload changes: the customers to add to and to remove from a static segment."""

    added: tuple[str, ...]
    removed: tuple[str, ...]


def list_change(current: Iterable[str], wanted: Iterable[str]) -> ListChange:
    """The change that turns the ``current`` members into the ``wanted`` list (sorted, for stable ids)."""
    current_set, wanted_set = set(current), set(wanted)
    return ListChange(tuple(sorted(wanted_set - current_set)), tuple(sorted(current_set - wanted_set)))


def add_update(segment_id: str) -> CustomerUpdate:
    return CustomerUpdate(set={static_attribute(segment_id): True})


def remove_update(segment_id: str) -> CustomerUpdate:
    return CustomerUpdate(unset=(static_attribute(segment_id),))
