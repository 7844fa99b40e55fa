"""The live state of one customer, and its JSON document form (what the state store holds).

The state is a pure function of the customer's event sequence (see ``engine.fold``). It is stored
as one document per customer so that one read and one write serve a whole event. Evaluating
segments over every stored customer reads a cheaper ``membership_view`` of each document and
writes the memberships back into the document itself (``with_memberships``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from engine import behaviour as behaviour_history
from engine.behaviour import EMPTY_HISTORY, BehaviourHistory
from engine.campaigns.runs import (
    CampaignRun,
    SendRecord,
    run_from_document,
    run_to_document,
    sends_from_document,
    sends_to_document,
)
from engine.errors import DecodeError
from engine.records import quick_init
from engine.values import AttributeValue

# How many recent event and interaction ids a state remembers to drop duplicates posted twice.
RECENT_IDS_KEPT = 64


@quick_init
@dataclass(slots=True, frozen=True)
class Contacts:
    email: str | None = None
    phone: str | None = None
    push_tokens: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@quick_init
@dataclass(slots=True, frozen=True)
class CustomerState:
    """Everything Refract knows about one customer right now.

    ``consent`` maps a scope ("all", "channel:email", "campaign:<id>", "category:<name>") to
    opted-in or out. ``applied_offset`` is the offset in ``refract.events`` of the last event
    folded in: an event at or below it is a replay and changes nothing.

    ``behaviour`` is the bounded history of the customer's own events (for windowed rules);
    ``segments`` maps each segment the customer is in to when they entered it (epoch ms);
    ``segment_due_ms`` maps a time-dependent segment to the next moment its result may change
    with no new event (see ``engine.segments.membership``).

    ``campaigns`` holds the latest run of each campaign the customer entered, ``sends`` the
    recent messages sent (what frequency caps count); see ``engine.campaigns.runs``.
    """

    customer_id: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    campaign_attributes: Mapping[str, Mapping[str, AttributeValue]] = field(default_factory=dict)
    contacts: Contacts = field(default_factory=Contacts)
    consent: Mapping[str, bool] = field(default_factory=dict)
    event_counts: Mapping[str, int] = field(default_factory=dict)
    interaction_counts: Mapping[str, int] = field(default_factory=dict)
    delivery_counts: Mapping[str, int] = field(default_factory=dict)
    recent_ids: tuple[str, ...] = ()
    first_seen_ms: int = 0
    last_event_ms: int = 0
    events_applied: int = 0
    applied_offset: int = -1
    behaviour: BehaviourHistory = EMPTY_HISTORY
    segments: Mapping[str, int] = field(default_factory=dict)
    segment_due_ms: Mapping[str, int] = field(default_factory=dict)
    campaigns: Mapping[str, CampaignRun] = field(default_factory=dict)
    sends: tuple[SendRecord, ...] = ()

    @property
    def segments_due_ms(self) -> int | None:
        """The earliest moment a segment of this customer may change by time alone (a timer's due)."""
        return min(self.segment_due_ms.values()) if self.segment_due_ms else None

    @property
    def campaigns_due_ms(self) -> int | None:
        """The earliest moment a campaign run of this customer resumes by time (a wait's end)."""
        due = [run.due_ms for run in self.campaigns.values() if run.due_ms is not None]
        return min(due) if due else None

    @property
    def due_ms(self) -> int | None:
        """When a timer must tick for this customer: the earliest segment or campaign due time."""
        return _due_ms(self.segment_due_ms, self.campaigns)


def _due_ms(segment_due_ms: Mapping[str, int], campaigns: Mapping[str, CampaignRun]) -> int | None:
    segments = min(segment_due_ms.values()) if segment_due_ms else None
    due = [run.due_ms for run in campaigns.values() if run.due_ms is not None] if campaigns else ()
    campaign = min(due) if due else None
    if segments is None:
        return campaign
    return segments if campaign is None else min(segments, campaign)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)


def epoch_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch, exactly (no float rounding far from 1970)."""
    return (value - _EPOCH) // _MILLISECOND


def from_epoch_ms(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=value)


def evolve(state: CustomerState, changes: Mapping[str, Any]) -> CustomerState:
    """``state`` with ``changes`` applied: dataclasses.replace, ~8x cheaper on the hot path."""
    get = changes.get
    return CustomerState(
        customer_id=state.customer_id,
        attributes=get("attributes", state.attributes),
        campaign_attributes=get("campaign_attributes", state.campaign_attributes),
        contacts=get("contacts", state.contacts),
        consent=get("consent", state.consent),
        event_counts=get("event_counts", state.event_counts),
        interaction_counts=get("interaction_counts", state.interaction_counts),
        delivery_counts=get("delivery_counts", state.delivery_counts),
        recent_ids=get("recent_ids", state.recent_ids),
        first_seen_ms=get("first_seen_ms", state.first_seen_ms),
        last_event_ms=get("last_event_ms", state.last_event_ms),
        events_applied=get("events_applied", state.events_applied),
        applied_offset=get("applied_offset", state.applied_offset),
        behaviour=get("behaviour", state.behaviour),
        segments=get("segments", state.segments),
        segment_due_ms=get("segment_due_ms", state.segment_due_ms),
        campaigns=get("campaigns", state.campaigns),
        sends=get("sends", state.sends),
    )


# --- document form ---------------------------------------------------------------------------
# Attribute values that JSON cannot tell apart are tagged: {"$d": "2024-02-29"} for a date,
# {"$ts": <epoch ms>} for a timestamp. Lists are JSON arrays of strings.


def encode_value(value: AttributeValue) -> Any:
    if isinstance(value, dt.datetime):
        return {"$ts": epoch_ms(value)}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    return value


def decode_value(raw: Any) -> AttributeValue:
    if isinstance(raw, dict):
        if "$ts" in raw:
            return from_epoch_ms(raw["$ts"])
        if "$d" in raw:
            return dt.date.fromisoformat(raw["$d"])
        raise DecodeError(f"unknown tagged attribute value {raw!r}")
    if isinstance(raw, list):
        return tuple(raw)
    value: AttributeValue = raw
    return value


def _encode_attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, Any]:
    return {name: encode_value(value) for name, value in attributes.items()}


def _decode_attributes(raw: Mapping[str, Any]) -> dict[str, AttributeValue]:
    # Only tagged values and lists need converting; most values are plain JSON scalars.
    return {
        name: decode_value(value) if type(value) in (dict, list) else value for name, value in raw.items()
    }


def to_document(state: CustomerState) -> dict[str, Any]:
    """The JSON-compatible document stored for ``state``.

    The behaviour history and segment fields are left out while empty (most customers of an
    installation without segments), and documents without them read back as empty.
    """
    contacts = state.contacts
    doc: dict[str, Any] = {
        "v": 1,
        "id": state.customer_id,
        "attributes": _encode_attributes(state.attributes),
        "campaign_attributes": {
            campaign: _encode_attributes(values) for campaign, values in state.campaign_attributes.items()
        },
        "contacts": {
            "email": contacts.email,
            "phone": contacts.phone,
            "push_tokens": {p: list(t) for p, t in contacts.push_tokens.items()},
        },
        "consent": dict(state.consent),
        "event_counts": dict(state.event_counts),
        "interaction_counts": dict(state.interaction_counts),
        "delivery_counts": dict(state.delivery_counts),
        "recent_ids": list(state.recent_ids),
        "first_seen_ms": state.first_seen_ms,
        "last_event_ms": state.last_event_ms,
        "events_applied": state.events_applied,
        "applied_offset": state.applied_offset,
    }
    if state.behaviour.events:
        doc["behaviour"] = behaviour_history.to_document(state.behaviour)
    if state.segments:
        doc["segments"] = dict(state.segments)
    if state.segment_due_ms:
        doc["segment_due_ms"] = dict(state.segment_due_ms)
    if state.campaigns:
        doc["campaigns"] = {campaign: run_to_document(run) for campaign, run in state.campaigns.items()}
    if state.sends:
        doc["sends"] = sends_to_document(state.sends)
    return doc


def from_document(doc: Mapping[str, Any]) -> CustomerState:
    """The state a document written by ``to_document`` describes."""
    try:
        contacts = doc["contacts"]
        return CustomerState(
            customer_id=doc["id"],
            attributes=_decode_attributes(doc["attributes"]),
            campaign_attributes={
                campaign: _decode_attributes(values)
                for campaign, values in doc["campaign_attributes"].items()
            },
            contacts=Contacts(
                email=contacts["email"],
                phone=contacts["phone"],
                push_tokens={p: tuple(t) for p, t in contacts["push_tokens"].items()},
            ),
            consent=doc["consent"],
            event_counts=doc["event_counts"],
            interaction_counts=doc["interaction_counts"],
            delivery_counts=doc["delivery_counts"],
            recent_ids=tuple(doc["recent_ids"]),
            first_seen_ms=doc["first_seen_ms"],
            last_event_ms=doc["last_event_ms"],
            events_applied=doc["events_applied"],
            applied_offset=doc["applied_offset"],
            behaviour=(
                behaviour_history.from_document(doc["behaviour"]) if "behaviour" in doc else EMPTY_HISTORY
            ),
            segments=doc.get("segments") or {},
            segment_due_ms=doc.get("segment_due_ms") or {},
            campaigns={
                campaign: run_from_document(run) for campaign, run in (doc.get("campaigns") or {}).items()
            },
            sends=sends_from_document(doc.get("sends") or []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"customer state document is malformed: {exc!r}") from exc


@dataclass(slots=True)
class MembershipView:
    """What segment rules and due times read of a stored customer; see ``membership_view``.

    Not frozen, unlike ``CustomerState``: a backfill builds one per stored customer, and a frozen
    dataclass sets each field through ``object.__setattr__`` (several times slower).
    """

    customer_id: str
    attributes: Mapping[str, AttributeValue]
    campaign_attributes: Mapping[str, Mapping[str, AttributeValue]]
    behaviour: BehaviourHistory
    segments: Mapping[str, int]
    segment_due_ms: Mapping[str, int]
    campaigns: Mapping[str, CampaignRun]

    @property
    def due_ms(self) -> int | None:
        """When a timer must tick for this customer, as ``CustomerState.due_ms``."""
        return _due_ms(self.segment_due_ms, self.campaigns)

    def with_memberships(
        self, segments: Mapping[str, int], segment_due_ms: Mapping[str, int]
    ) -> MembershipView:
        return MembershipView(
            self.customer_id,
            self.attributes,
            self.campaign_attributes,
            self.behaviour,
            segments,
            segment_due_ms,
            self.campaigns,
        )

    def as_state(self) -> CustomerState:
        """The view as a state (contacts, consent, counters and sends empty), for functions that
        read only what the view holds (``membership.update``). Never to be written back."""
        return CustomerState(
            customer_id=self.customer_id,
            attributes=self.attributes,
            campaign_attributes=self.campaign_attributes,
            behaviour=self.behaviour,
            segments=self.segments,
            segment_due_ms=self.segment_due_ms,
            campaigns=self.campaigns,
        )


def membership_view(doc: Mapping[str, Any]) -> MembershipView:
    """What segment rules and due times read of the state ``doc`` describes.

    For evaluating segments over every stored customer (a backfill) at a fraction of
    ``from_document``'s cost: attribute values are decoded when a rule reads them, behaviour
    histories by name, as ever; contacts, consent, counters and sends not at all. So a view is
    never written back: ``with_memberships`` puts the new memberships into the document instead.
    """
    try:
        campaign_attributes = doc["campaign_attributes"]
        campaigns = doc.get("campaigns")
        return MembershipView(
            doc["id"],
            _AttributesOnRead(doc["attributes"]),
            (
                {campaign: _AttributesOnRead(values) for campaign, values in campaign_attributes.items()}
                if campaign_attributes
                else _NOTHING
            ),
            behaviour_history.from_document(doc["behaviour"]) if "behaviour" in doc else EMPTY_HISTORY,
            doc.get("segments") or _NOTHING,
            doc.get("segment_due_ms") or _NOTHING,
            # Their due times are when the customer's timer must tick.
            {campaign: run_from_document(run) for campaign, run in campaigns.items()}
            if campaigns
            else _NOTHING,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"customer state document is malformed: {exc!r}") from exc


def with_memberships(
    doc: Mapping[str, Any], segments: Mapping[str, int], segment_due_ms: Mapping[str, int]
) -> dict[str, Any]:
    """``doc`` with its memberships and segment due times replaced, laid out as ``to_document`` would.

    For a document written by ``to_document``, the JSON is byte for byte the one of the state it
    describes with these memberships.
    """
    patched: dict[str, Any] = {}
    placed = False
    for name, value in doc.items():
        if name in _MEMBERSHIP_FIELDS:
            continue
        if not placed and name in _FIELDS_AFTER_MEMBERSHIPS:
            _place_memberships(patched, segments, segment_due_ms)
            placed = True
        patched[name] = value
    if not placed:
        _place_memberships(patched, segments, segment_due_ms)
    return patched


_NOTHING: Mapping[str, Any] = MappingProxyType({})
_MEMBERSHIP_FIELDS = frozenset(("segments", "segment_due_ms"))
_FIELDS_AFTER_MEMBERSHIPS = frozenset(("campaigns", "sends"))


def _place_memberships(
    doc: dict[str, Any], segments: Mapping[str, int], segment_due_ms: Mapping[str, int]
) -> None:
    # Left out while empty, as to_document does.
    if segments:
        doc["segments"] = dict(segments)
    if segment_due_ms:
        doc["segment_due_ms"] = dict(segment_due_ms)


_ABSENT: Any = object()


class _AttributesOnRead(Mapping[str, AttributeValue]):
    """Attribute values kept in document form, each decoded when read: a rule reads a few of many."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        if not isinstance(raw, dict):
            raise TypeError(f"attributes are a {type(raw).__name__}, not an object")
        self._raw = raw

    def __getitem__(self, name: str) -> AttributeValue:
        raw = self._raw[name]
        return decode_value(raw) if type(raw) in (dict, list) else raw  # type: ignore[no-any-return]

    def get(self, name: str, default: Any = None) -> Any:
        raw = self._raw.get(name, _ABSENT)
        if raw is _ABSENT:
            return default
        return decode_value(raw) if type(raw) in (dict, list) else raw

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})
