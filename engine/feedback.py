"""What feedback about a sent message becomes on the log: opens, clicks, unsubscribes, results.

Tracking links, unsubscribe pages and provider webhooks all report about one delivery; they turn
what they learnt into the same payloads here, with ids derived from the delivery, so the same
fact reported twice (a pixel loaded again, Mailgun's open webhook after Refract's own pixel, a
webhook retried) folds once: the fold drops an interaction id or event id it has recently seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, TypeAlias

from engine.deliveries import Delivery
from engine.errors import ValidationError
from engine.events import Channel, ConsentUpdate, DeliveryResult, DeliveryStatus, Interaction, Payload

UnsubscribeScope: TypeAlias = Literal["campaign", "category", "channel"]
UNSUBSCRIBE_SCOPES: tuple[UnsubscribeScope, ...] = ("campaign", "category", "channel")


@dataclass(slots=True, frozen=True)
class MessageContext:
    """Which message feedback is about: enough to key the event and to scope an unsubscribe."""

    delivery_id: str
    customer_id: str
    campaign_id: str
    channel: Channel
    category: str | None = None

    @classmethod
    def of(cls, delivery: Delivery, category: str | None = None) -> MessageContext:
        return cls(
            delivery.delivery_id, delivery.customer_id, delivery.campaign_id, delivery.channel, category
        )


@dataclass(slots=True, frozen=True)
class Feedback:
    """One event to append for a customer; ``event_id`` is deterministic where the source allows."""

    customer_id: str
    payload: Payload
    event_id: str | None = None
    occurred_at_ms: int | None = None


def _digest(prefix: str, *parts: str) -> str:
    raw = "\0".join(parts).encode("utf-8")
    return prefix + hashlib.blake2b(raw, digest_size=12).hexdigest()


def open_interaction_id(delivery_id: str) -> str:
    """One open per delivery, however many times or from where (pixel, provider) it is reported."""
    return _digest("opn_", delivery_id)


def click_interaction_id(delivery_id: str, url: str) -> str:
    """One click per link of a delivery; another link of the same message is another click."""
    return _digest("clk_", delivery_id, url)


def result_event_id(delivery_id: str, status: DeliveryStatus) -> str:
    """The event id of a delivery's result: a provider reporting it again folds once."""
    return _digest("res_", delivery_id, status)


def opened(context: MessageContext) -> Interaction:
    return Interaction(
        kind="open",
        interaction_id=open_interaction_id(context.delivery_id),
        campaign_id=context.campaign_id,
        delivery_id=context.delivery_id,
        channel=context.channel,
    )


def clicked(context: MessageContext, url: str) -> Interaction:
    return Interaction(
        kind="click",
        interaction_id=click_interaction_id(context.delivery_id, url),
        campaign_id=context.campaign_id,
        delivery_id=context.delivery_id,
        channel=context.channel,
        data={"url": url},
    )


def opt_out(context: MessageContext, scope: UnsubscribeScope) -> ConsentUpdate:
    """The consent change of an unsubscribe from this message's campaign, category or channel."""
    if scope == "campaign":
        return ConsentUpdate(opted_in=False, campaign_id=context.campaign_id)
    if scope == "category":
        if not context.category:
            raise ValidationError("this message has no category to unsubscribe from", "scope")
        return ConsentUpdate(opted_in=False, category=context.category)
    if scope == "channel":
        return ConsentUpdate(opted_in=False, channel=context.channel)
    raise ValidationError(f"unknown scope {scope!r}; use one of {', '.join(UNSUBSCRIBE_SCOPES)}", "scope")


def unsubscribed(context: MessageContext, scope: UnsubscribeScope) -> tuple[ConsentUpdate, Interaction]:
    """The opt-out, and the interaction that lets campaigns count unsubscribes."""
    interaction = Interaction(
        kind="unsubscribe",
        interaction_id=_digest("uns_", context.delivery_id, scope),
        campaign_id=context.campaign_id,
        delivery_id=context.delivery_id,
        channel=context.channel,
        data={"scope": scope},
    )
    return opt_out(context, scope), interaction


def complained(context: MessageContext) -> tuple[Interaction, ConsentUpdate]:
    """A spam complaint: counted, and no more messages on that channel."""
    interaction = Interaction(
        kind="complaint",
        interaction_id=_digest("cmp_", context.delivery_id),
        campaign_id=context.campaign_id,
        delivery_id=context.delivery_id,
        channel=context.channel,
    )
    return interaction, ConsentUpdate(opted_in=False, channel=context.channel)


def delivery_result(
    context: MessageContext,
    status: DeliveryStatus,
    *,
    provider_message_id: str | None = None,
    reason: str | None = None,
    occurred_at_ms: int | None = None,
) -> Feedback:
    payload = DeliveryResult(
        delivery_id=context.delivery_id,
        status=status,
        channel=context.channel,
        campaign_id=context.campaign_id,
        provider_message_id=provider_message_id,
        reason=reason,
    )
    return Feedback(
        context.customer_id, payload, result_event_id(context.delivery_id, status), occurred_at_ms
    )
