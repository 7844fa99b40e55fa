"""``refract segment test``: why one customer is in or out of a rule, clause by clause.

The customer's profile comes from a running worker (``GET /v1/customers/{id}?include=behaviour``)
or from a file holding that same JSON. The rule is a text, or a saved segment. The explanation
itself is ``engine.segments.explain``; this module reads the profile and prints the tree.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping
from typing import Any

from api.payloads import attribute_value
from engine import behaviour
from engine.errors import ValidationError
from engine.segments import (
    EvaluationContext,
    Explanation,
    Rule,
    RuleSyntaxError,
    rule_from_json,
    rule_from_text,
)
from engine.segments.printer import literal_text
from engine.state import epoch_ms
from engine.values import AttributeValue
from ops.api_client import ApiEndpoint

_LABELS = {"and": "all of:", "or": "any of:", "not": "not:"}


def fetch_profile(api: ApiEndpoint, customer_id: str) -> dict[str, Any]:
    """The customer's profile with its behaviour history, as the worker owning them has it."""
    path = f"/v1/customers/{urllib.parse.quote(customer_id, safe='')}?include=behaviour"
    profile: dict[str, Any] = api.request("GET", path)
    return profile


def fetch_segment_rule(api: ApiEndpoint, segment_id: str) -> Rule:
    """The rule of a saved segment (its JSON form, so nothing is lost in printing)."""
    segment = api.request("GET", f"/v1/segments/{urllib.parse.quote(segment_id, safe='')}")
    return rule_from_json(segment["rule_json"])


def _attributes(raw: Any, where: str) -> dict[str, AttributeValue]:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: expected an object of attributes")
    return {
        name: attribute_value(value, f"{where}.{name}") for name, value in raw.items() if value is not None
    }


def profile_context(
    profile: Mapping[str, Any], now_ms: int, default_timezone: str = "UTC"
) -> EvaluationContext:
    """The evaluation context of a profile in the form ``GET /v1/customers/{id}`` answers.

    Without a ``behaviour`` section (a profile fetched without ``include=behaviour``) the
    customer's own events count as none.
    """
    if not isinstance(profile, Mapping) or "attributes" not in profile:
        raise ValidationError(
            "the profile must be the JSON of GET /v1/customers/{id} (an object with 'attributes')"
        )
    campaigns = profile.get("campaign_data") or {}
    if not isinstance(campaigns, Mapping):
        raise ValidationError("campaign_data: expected an object of campaign -> attributes")
    history = behaviour.EMPTY_HISTORY
    if profile.get("behaviour"):
        history = behaviour.from_document(profile["behaviour"])
    return EvaluationContext.for_customer(
        _attributes(profile["attributes"], "attributes"),
        now_ms,
        campaign_attributes={
            campaign: _attributes(values, f"campaign_data.{campaign}")
            for campaign, values in campaigns.items()
        },
        behaviour=history,
        segments=frozenset(profile.get("segments") or ()),
        default_timezone=default_timezone,
    )


def read_rule(source: str) -> Rule:
    """A rule from its text form. A RuleSyntaxError's message gains the line with a caret under the place."""
    try:
        return rule_from_text(source)
    except RuleSyntaxError as exc:
        if exc.line is None or exc.column is None:
            raise
        lines = source.splitlines() or [""]
        line = lines[exc.line - 1] if exc.line <= len(lines) else ""
        raise RuleSyntaxError(
            f"{exc.reason}\n  {line}\n  {' ' * (exc.column - 1)}^", exc.line, exc.column
        ) from None


def _value(value: Any) -> str:
    if isinstance(value, str | int | float | bool | dt.date | tuple) or value is None:
        if isinstance(value, tuple) and not all(
            isinstance(item, str | int | float | bool | dt.date) for item in value
        ):
            return repr(value)
        return literal_text(value) if value is not None else "missing"
    return repr(value)


def format_explanation(explanation: Explanation) -> list[str]:
    """One line per clause, indented by nesting: result, clause, and the values it read."""
    lines = []
    for depth, item in explanation.walk():
        result = "true " if item.result else "false"
        clause = _LABELS.get(item.kind, item.clause)
        seen = ", ".join(f"{value.operand} = {_value(value.value)}" for value in item.seen)
        lines.append(f"{'  ' * depth}{result}  {clause}" + (f"    [{seen}]" if seen else ""))
    return lines


def moment_ms(text: str) -> int:
    """An ISO 8601 moment with a zone (``2026-05-01T10:00:00Z``) in epoch milliseconds."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"--at: {text!r} is not an ISO 8601 moment such as 2026-05-01T10:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise ValidationError(f"--at: {text!r} has no time zone (add 'Z' or an offset)")
    return epoch_ms(moment)


def report(customer_id: str, rule: Rule, explanation: Explanation, now_ms: int) -> list[str]:
    at = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")
    verdict = "IN" if explanation.result else "OUT"
    words = "is in" if explanation.result else "is not in"
    return [
        f"rule: {rule.text}",
        f"customer {customer_id} at {at.replace('+00:00', 'Z')}",
        "",
        *format_explanation(explanation),
        "",
        f"{verdict}: {customer_id} {words} the segment",
    ]
