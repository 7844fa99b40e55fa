"""The JSON form of a customer's state, as ``GET /v1/customers/{id}`` answers it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from engine import behaviour
from engine.state import CustomerState
from engine.values import AttributeValue


def _iso_ms(epoch_ms: int) -> str | None:
    if not epoch_ms:
        return None
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def attribute_json(value: AttributeValue) -> Any:
    """The same typed form the API accepts: {"date": ...}, {"timestamp": ...}, lists as arrays."""
    if isinstance(value, dt.datetime):
        return {"timestamp": value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _attributes(values: Mapping[str, AttributeValue]) -> dict[str, Any]:
    return {name: attribute_json(value) for name, value in sorted(values.items())}


def customer_json(state: CustomerState, *, with_behaviour: bool = False) -> dict[str, Any]:
    """The customer as the API shows them; ``with_behaviour`` adds the bounded behaviour history
    (the document of ``engine.behaviour``, what windowed rules read: ``refract segment test`` uses it).
    """
    contacts = state.contacts
    answer = {
        "customer_id": state.customer_id,
        # Reserved attributes ("$static:<segment>") are shown as the memberships they make.
        "attributes": _attributes({n: v for n, v in state.attributes.items() if not n.startswith("$")}),
        "campaign_data": {c: _attributes(v) for c, v in sorted(state.campaign_attributes.items())},
        "contacts": {
            "email": contacts.email,
            "phone": contacts.phone,
            "push_tokens": [
                {"platform": platform, "token": token}
                for platform, tokens in sorted(contacts.push_tokens.items())
                for token in tokens
            ],
        },
        "consent": dict(sorted(state.consent.items())),
        "event_counts": dict(sorted(state.event_counts.items())),
        "interaction_counts": dict(sorted(state.interaction_counts.items())),
        "delivery_counts": dict(sorted(state.delivery_counts.items())),
        "first_seen_at": _iso_ms(state.first_seen_ms),
        "last_event_at": _iso_ms(state.last_event_ms),
        "events_applied": state.events_applied,
        # Segment id -> since when the customer is in it.
        "segments": {segment: _iso_ms(at_ms) for segment, at_ms in sorted(state.segments.items())},
    }
    if with_behaviour:
        answer["behaviour"] = behaviour.to_document(state.behaviour)
    return answer
