"""Mailgun's event webhooks: the signature check and what each event becomes.

Mailgun posts JSON ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``;
the signature is the hex HMAC-SHA256 of timestamp + token with the domain's webhook signing key.
The dispatcher sends every message with the variables ``v:delivery_id``, ``v:customer_id`` and
``v:campaign_id`` (and ``v:category`` when the campaign has one); Mailgun hands them back under
``user-variables``, which is how an event finds its customer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from connectors.webhooks.errors import WebhookPayloadError, WebhookSignatureError
from connectors.webhooks.parsed import ParsedWebhook
from engine.events import DeliveryStatus, Payload
from engine.feedback import (
    Feedback,
    MessageContext,
    clicked,
    complained,
    delivery_result,
    opened,
    unsubscribed,
)

# Older signatures are refused: a captured request cannot be replayed later on.
MAX_AGE_S = 15 * 60
# Permanent failures where Mailgun did not try the recipient's server (suppressed, given up).
NOT_ATTEMPTED_REASONS = frozenset({"suppress-bounce", "suppress-complaint", "suppress-unsubscribe", "old"})


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    message = (timestamp + token).encode("utf-8")
    return hmac.new(signing_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_mailgun(body: Any, signing_key: str, *, now_ms: int) -> None:
    """Raise WebhookSignatureError unless ``body`` is signed with ``signing_key`` and recent."""
    signature = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(signature, dict):
        raise WebhookSignatureError("the body has no Mailgun signature object")
    timestamp, token, presented = (signature.get(k) for k in ("timestamp", "token", "signature"))
    if not all(isinstance(v, str | int) for v in (timestamp, token, presented)):
        raise WebhookSignatureError("the Mailgun signature needs timestamp, token and signature")
    expected = mailgun_signature(signing_key, str(timestamp), str(token))
    if not hmac.compare_digest(expected.encode(), str(presented).lower().encode()):
        raise WebhookSignatureError("the Mailgun signature does not match the webhook signing key")
    try:
        age_s = now_ms / 1000 - int(str(timestamp))
    except ValueError:
        raise WebhookSignatureError("the Mailgun signature timestamp is not a number") from None
    if abs(age_s) > MAX_AGE_S:
        raise WebhookSignatureError(
            f"the Mailgun signature is {age_s:.0f} s old; more than {MAX_AGE_S} s apart from now"
            " (check this machine's clock)"
        )


def _variables(event: Mapping[str, Any]) -> dict[str, str]:
    raw = event.get("user-variables") or {}
    if not isinstance(raw, dict):
        return {}
    # Mailgun strips the "v:" of the variables set when sending; accept it either way.
    return {str(k).removeprefix("v:"): str(v) for k, v in raw.items() if v is not None}


def _context(event: Mapping[str, Any]) -> MessageContext | None:
    variables = _variables(event)
    delivery, customer, campaign = (variables.get(k) for k in ("delivery_id", "customer_id", "campaign_id"))
    if not delivery or not customer or not campaign:
        return None
    return MessageContext(delivery, customer, campaign, "email", variables.get("category") or None)


def parse_mailgun(body: Any) -> ParsedWebhook:
    """The events a (verified) Mailgun webhook body reports."""
    event = body.get("event-data") if isinstance(body, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise WebhookPayloadError("the body has no Mailgun event-data with an event name", "event-data")
    name = event["event"]
    context = _context(event)
    if context is None:
        return ParsedWebhook(ignored="no delivery_id, customer_id and campaign_id in user-variables")
    occurred_at_ms = _timestamp_ms(event.get("timestamp"))
    event_id = str(event.get("id") or "")
    if name == "delivered":
        return ParsedWebhook(
            (
                delivery_result(
                    context, "sent", provider_message_id=_message_id(event), occurred_at_ms=occurred_at_ms
                ),
            )
        )
    if name == "failed":
        severity = event.get("severity")
        if severity != "permanent":
            # Mailgun retries; the outcome arrives later as delivered or a permanent failure.
            return ParsedWebhook(ignored=f"{severity or 'unknown'} failure (Mailgun retries)")
        reason = str(event.get("reason") or "")
        status: DeliveryStatus = "failed" if reason in NOT_ATTEMPTED_REASONS else "bounced"
        return ParsedWebhook(
            (
                delivery_result(
                    context,
                    status,
                    provider_message_id=_message_id(event),
                    reason=_failure_reason(event),
                    occurred_at_ms=occurred_at_ms,
                ),
            )
        )
    payloads: list[Payload]
    if name == "opened":
        payloads = [opened(context)]
    elif name == "clicked":
        url = event.get("url")
        if not isinstance(url, str) or not url:
            raise WebhookPayloadError("a clicked event needs the url", "event-data.url")
        payloads = [clicked(context, url)]
    elif name == "complained":
        payloads = [*complained(context)]
    elif name == "unsubscribed":
        # Mailgun's own unsubscribe link stops all mail from the domain: the email channel.
        payloads = [*unsubscribed(context, "channel")]
    else:
        return ParsedWebhook(ignored=f"event {name!r} is not used")
    return ParsedWebhook(
        tuple(
            Feedback(
                context.customer_id, payload, f"mailgun:{event_id}:{i}" if event_id else None, occurred_at_ms
            )
            for i, payload in enumerate(payloads)
        )
    )


def _timestamp_ms(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1000)
    return None


def _message_id(event: Mapping[str, Any]) -> str | None:
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    value = headers.get("message-id") if isinstance(headers, dict) else None
    return str(value) if value else None


def _failure_reason(event: Mapping[str, Any]) -> str:
    status = event.get("delivery-status")
    parts = [str(event.get("reason") or "")]
    if isinstance(status, dict):
        if status.get("code"):
            parts.append(str(status["code"]))
        description = status.get("description") or status.get("message")
        if description:
            parts.append(str(description)[:200])
    return " ".join(p for p in parts if p) or "permanent failure"
