"""A segment as it is saved: id, version, name, description and its rule, and its JSON body form.

Segments travel as ``Definition`` records on ``refract.definitions`` with the key
``segment:<id>`` and a JSON body ``{"name", "description", "rule"}`` (the text form) or
``{"name", "description", "rule_json"}`` (the JSON form), or ``{"kind": "static", "name",
"description"}`` for a list of customers uploaded as CSV (``engine.segments.static``). Pure:
reading a body compiles its rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ValidationError
from engine.segments import Rule, rule_from_json, rule_from_text, to_json, to_text
from engine.segments.static import RULE_KIND, STATIC_KIND, static_rule

SEGMENT_KIND = "segment"
# Ids appear in URLs, metric labels and rules (in_segment("...")): keep them plain.
SEGMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
NAME_MAX = 200
DESCRIPTION_MAX = 2000


@dataclass(slots=True, frozen=True)
class SegmentDefinition:
    segment_id: str
    version: int
    name: str
    description: str
    rule: Rule
    updated_at_ms: int = 0
    kind: str = RULE_KIND  # or STATIC_KIND: members uploaded as a list

    @property
    def is_static(self) -> bool:
        return self.kind == STATIC_KIND

    @property
    def key(self) -> str:
        return definition_key(self.segment_id)

    def as_json(self) -> dict[str, Any]:
        """How the API shows the segment (a static segment has no rule to show)."""
        shown: dict[str, Any] = {
            "id": self.segment_id,
            "kind": self.kind,
            "version": self.version,
            "name": self.name,
            "description": self.description,
        }
        if not self.is_static:
            shown["rule"] = to_text(self.rule)
            shown["rule_json"] = to_json(self.rule)
        shown["updated_at_ms"] = self.updated_at_ms
        return shown


def definition_key(segment_id: str) -> str:
    return f"{SEGMENT_KIND}:{segment_id}"


def check_segment_id(segment_id: object, field: str = "id") -> str:
    if not isinstance(segment_id, str) or not SEGMENT_ID.fullmatch(segment_id):
        raise ValidationError(
            f"{field}: a segment id is 1 to 100 letters, digits, '_', '-' or '.', starting with a"
            f" letter or digit; got {segment_id!r}",
            field=field,
        )
    return segment_id


def _text(body: Mapping[str, Any], name: str, limit: int, default: str = "") -> str:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(f"{name}: expected a text of at most {limit} characters", field=name)
    return value


def segment_from_body(
    segment_id: str, version: int, body: Mapping[str, Any], updated_at_ms: int = 0
) -> SegmentDefinition:
    """Read a segment body (as saved, or as sent to the API). Raises RuleSyntaxError or ValidationError."""
    if not isinstance(body, Mapping):
        raise ValidationError("a segment is a JSON object with name, description and rule (or rule_json)")
    unknown = set(body) - {"id", "kind", "name", "description", "rule", "rule_json"}
    if unknown:
        raise ValidationError(
            f"unknown field {sorted(unknown)[0]!r}; a segment has name, description and rule (or rule_json)",
            field=sorted(unknown)[0],
        )
    kind = body.get("kind", RULE_KIND)
    if kind not in (RULE_KIND, STATIC_KIND):
        raise ValidationError(
            f"kind: {kind!r} is not a kind of segment; use 'rule' (the default) or 'static' (a list"
            " of customers uploaded as CSV)",
            field="kind",
        )
    if kind == STATIC_KIND:
        if "rule" in body or "rule_json" in body:
            raise ValidationError(
                "a static segment has no rule: its members are the customers of the list uploaded"
                " to /v1/segments/{id}/members",
                field="rule",
            )
        return SegmentDefinition(
            segment_id=segment_id,
            version=version,
            name=_text(body, "name", NAME_MAX, default=segment_id) or segment_id,
            description=_text(body, "description", DESCRIPTION_MAX),
            rule=static_rule(segment_id),
            updated_at_ms=updated_at_ms,
            kind=STATIC_KIND,
        )
    if ("rule" in body) == ("rule_json" in body):
        raise ValidationError(
            "give the segment's rule as either rule (text) or rule_json, exactly one", field="rule"
        )
    if "rule" in body:
        if not isinstance(body["rule"], str):
            raise ValidationError("rule: expected the rule's text form, as a string", field="rule")
        rule = rule_from_text(body["rule"])
    else:
        rule = rule_from_json(body["rule_json"])
    if rule.inputs.event_fields:
        field = sorted(rule.inputs.event_fields)[0]
        raise ValidationError(
            f"event.{field}: a segment is about the customer, not one event; use event fields in a"
            ' campaign trigger\'s condition, or last(event="...").' + field + " here",
            field="rule",
        )
    return SegmentDefinition(
        segment_id=segment_id,
        version=version,
        name=_text(body, "name", NAME_MAX, default=segment_id) or segment_id,
        description=_text(body, "description", DESCRIPTION_MAX),
        rule=rule,
        updated_at_ms=updated_at_ms,
    )


def segment_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body saved on the topic: what was sent, without the id (the key carries it)."""
    return {name: value for name, value in body.items() if name != "id"}
