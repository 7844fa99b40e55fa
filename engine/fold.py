"""The fold: how one event changes one customer's state. Pure: state and event in, state out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.behaviour import record_event
from engine.events import (
    BusinessEvent,
    ConsentUpdate,
    ContactUpdate,
    CustomerErased,
    CustomerUpdate,
    DeliveryResult,
    Envelope,
    Interaction,
    ReferralClick,
    Tick,
)
from engine.state import RECENT_IDS_KEPT, Contacts, CustomerState, evolve
from engine.values import AttributeValue

# A customer keeps at most this many push tokens per platform (the newest win).
PUSH_TOKENS_KEPT = 10


def consent_scope(update: ConsentUpdate) -> str:
    """The key under which a consent update is stored in ``CustomerState.consent``."""
    if update.campaign_id:
        return f"campaign:{update.campaign_id}"
    if update.category:
        return f"category:{update.category}"
    if update.channel:
        return f"channel:{update.channel}"
    return "all"


def fold(state: CustomerState | None, envelope: Envelope, offset: int) -> CustomerState | None:
    """Apply ``envelope`` (read at ``offset`` of ``refract.events``) to ``state``.

    Returns the new state, ``None`` when the customer is erased, and ``state`` itself (the same
    object) when the event changes nothing: a replay of an applied offset, or a duplicate event id.
    """
    if state is not None and offset <= state.applied_offset:
        return state
    payload = envelope.payload
    if isinstance(payload, CustomerErased):
        return None
    if state is None:
        state = CustomerState(customer_id=envelope.customer_id, first_seen_ms=envelope.occurred_at_ms)

    dedupe_id = payload.interaction_id if isinstance(payload, Interaction) else envelope.event_id
    if dedupe_id in state.recent_ids:
        return evolve(state, {"applied_offset": offset})

    changes = _changes(state, payload)
    if isinstance(payload, BusinessEvent | Interaction | ReferralClick):
        # Never in the future of the moment it reached Refract: a client's clock may run ahead.
        occurred_at_ms = min(envelope.occurred_at_ms, envelope.received_at_ms)
        changes["behaviour"] = record_event(state.behaviour, payload, occurred_at_ms)
    changes["recent_ids"] = (*state.recent_ids[-(RECENT_IDS_KEPT - 1) :], dedupe_id)
    changes["last_event_ms"] = max(state.last_event_ms, envelope.occurred_at_ms)
    changes["events_applied"] = state.events_applied + 1
    changes["applied_offset"] = offset
    return evolve(state, changes)


def _changes(state: CustomerState, payload: object) -> dict[str, Any]:
    """The fields of ``state`` that ``payload`` changes, with their new values."""
    if isinstance(payload, CustomerUpdate):
        if payload.campaign_id is None:
            return {"attributes": _updated(state.attributes, payload.set, payload.unset)}
        scoped = dict(state.campaign_attributes)
        values = _updated(scoped.get(payload.campaign_id, {}), payload.set, payload.unset)
        if values:
            scoped[payload.campaign_id] = values
        else:
            scoped.pop(payload.campaign_id, None)
        return {"campaign_attributes": scoped}
    if isinstance(payload, ContactUpdate):
        return {"contacts": _contacts(state.contacts, payload)}
    if isinstance(payload, ConsentUpdate):
        return {"consent": {**state.consent, consent_scope(payload): payload.opted_in}}
    if isinstance(payload, Interaction):
        keys: list[str] = [payload.kind]
        if payload.campaign_id:
            keys.append(f"{payload.kind}:{payload.campaign_id}")
        return {"interaction_counts": _counted(state.interaction_counts, keys)}
    if isinstance(payload, BusinessEvent):
        return {"event_counts": _counted(state.event_counts, [payload.name])}
    if isinstance(payload, ReferralClick):
        keys = ["referral_click", f"referral_click:{payload.campaign_id}"]
        return {"interaction_counts": _counted(state.interaction_counts, keys)}
    if isinstance(payload, DeliveryResult):
        return {"delivery_counts": _counted(state.delivery_counts, [f"{payload.status}:{payload.channel}"])}
    if isinstance(payload, Tick):
        return {}
    raise TypeError(f"fold does not know payload {type(payload).__name__}")


def _updated(
    current: Mapping[str, AttributeValue],
    values: Mapping[str, AttributeValue],
    unset: tuple[str, ...],
) -> dict[str, AttributeValue]:
    result = {**current, **values}
    for name in unset:
        result.pop(name, None)
    return result


def _counted(counts: Mapping[str, int], keys: list[str]) -> dict[str, int]:
    result = dict(counts)
    for key in keys:
        result[key] = result.get(key, 0) + 1
    return result


def _contacts(contacts: Contacts, update: ContactUpdate) -> Contacts:
    tokens = {platform: list(values) for platform, values in contacts.push_tokens.items()}
    for token in update.remove_push_tokens:
        if token.token in tokens.get(token.platform, ()):
            tokens[token.platform].remove(token.token)
    for token in update.add_push_tokens:
        kept = [t for t in tokens.get(token.platform, []) if t != token.token]
        kept.append(token.token)
        tokens[token.platform] = kept[-PUSH_TOKENS_KEPT:]
    email = contacts.email if update.email is None else (update.email or None)
    phone = contacts.phone if update.phone is None else (update.phone or None)
    return Contacts(
        email=email,
        phone=phone,
        push_tokens={p: tuple(t) for p, t in tokens.items() if t},
    )
