"""The customer-facing events of ``refract.events``: one Envelope around one typed payload.

These records are what every way in (API, CSV import, SDK, webhooks, timers) produces and what
the customer processor folds. The Avro form lives in ``schemas/``; these are the typed records
the engine works with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeAlias

from engine.records import quick_init
from engine.values import AttributeValue

Channel: TypeAlias = Literal["email", "sms", "push"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "push")

PushPlatform: TypeAlias = Literal["android", "ios", "web"]
PUSH_PLATFORMS: tuple[PushPlatform, ...] = ("android", "ios", "web")

InteractionKind: TypeAlias = Literal[
    "impression", "click", "dismiss", "open", "conversion", "unsubscribe", "lead", "complaint"
]
INTERACTION_KINDS: tuple[InteractionKind, ...] = (
    "impression",
    "click",
    "dismiss",
    "open",
    "conversion",
    "unsubscribe",
    "lead",
    "complaint",
)

DeliveryStatus: TypeAlias = Literal["sent", "failed", "bounced", "rejected"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("sent", "failed", "bounced", "rejected")

BusinessValue: TypeAlias = str | int | float | bool | None

_EMPTY: Mapping[str, object] = MappingProxyType({})


def _frozen(mapping: Mapping[str, object] | None) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


@quick_init
@dataclass(slots=True, frozen=True)
class CustomerUpdate:
    """Set and unset profile attributes; with ``campaign_id`` they are that campaign's data."""

    set: Mapping[str, AttributeValue] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    campaign_id: str | None = None


@dataclass(slots=True, frozen=True)
class PushToken:
    platform: PushPlatform
    token: str


@quick_init
@dataclass(slots=True, frozen=True)
class ContactUpdate:
    """Change how the customer can be reached. ``None`` leaves a field as it is; "" clears it."""

    email: str | None = None
    phone: str | None = None
    add_push_tokens: tuple[PushToken, ...] = ()
    remove_push_tokens: tuple[PushToken, ...] = ()


@dataclass(slots=True, frozen=True)
class ConsentUpdate:
    """Opt in or out, scoped to a channel, a campaign, a category, or everything (all ``None``)."""

    opted_in: bool
    channel: Channel | None = None
    campaign_id: str | None = None
    category: str | None = None


@quick_init
@dataclass(slots=True, frozen=True)
class Interaction:
    """Something the customer did with a message or a banner."""

    kind: InteractionKind
    interaction_id: str
    campaign_id: str | None = None
    placement_id: str | None = None
    delivery_id: str | None = None
    channel: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)


@quick_init
@dataclass(slots=True, frozen=True)
class BusinessEvent:
    """A fact from a back-end system ("card_transaction", "loan_preapproved", ...)."""

    name: str
    data: Mapping[str, BusinessValue] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class ReferralClick:
    code: str
    campaign_id: str
    source: str | None = None
    visitor_id: str | None = None


@quick_init
@dataclass(slots=True, frozen=True)
class DeliveryResult:
    delivery_id: str
    status: DeliveryStatus
    channel: Channel
    campaign_id: str | None = None
    provider_message_id: str | None = None
    reason: str | None = None


@quick_init
@dataclass(slots=True, frozen=True)
class Tick:
    """Appended by a timer when something registered in the state becomes due."""

    due_at_ms: int
    reason: str


@dataclass(slots=True, frozen=True)
class CustomerErased:
    """The customer asked to be forgotten: the state is removed (a tombstone)."""

    reason: str | None = None


Payload: TypeAlias = (
    CustomerUpdate
    | ContactUpdate
    | ConsentUpdate
    | Interaction
    | BusinessEvent
    | ReferralClick
    | DeliveryResult
    | Tick
    | CustomerErased
)

# The stable names of payload types, as used in the API ("type": "...") and in metrics.
PAYLOAD_TYPE_NAMES: Mapping[type, str] = MappingProxyType(
    {
        CustomerUpdate: "customer_update",
        ContactUpdate: "contact_update",
        ConsentUpdate: "consent_update",
        Interaction: "interaction",
        BusinessEvent: "business_event",
        ReferralClick: "referral_click",
        DeliveryResult: "delivery_result",
        Tick: "tick",
        CustomerErased: "customer_erased",
    }
)


@quick_init
@dataclass(slots=True, frozen=True)
class Envelope:
    """One event about one customer, as appended to ``refract.events`` (keyed by customer id)."""

    event_id: str
    customer_id: str
    occurred_at_ms: int
    received_at_ms: int
    source: str
    payload: Payload

    @property
    def type_name(self) -> str:
        return PAYLOAD_TYPE_NAMES[type(self.payload)]
