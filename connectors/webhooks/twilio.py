"""Twilio's SMS webhooks: ``X-Twilio-Signature``, delivery receipts, and STOP/START replies.

Twilio signs a request with the account's auth token: base64 of HMAC-SHA1 over the full URL it
called followed by every POST parameter, sorted by name, as name + value with no separators.
Status callbacks go to the URL the dispatcher gave as ``StatusCallback``, whose signed token says
which delivery it is about; inbound messages name only the sender's phone number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from connectors.webhooks.errors import WebhookPayloadError, WebhookSignatureError
from connectors.webhooks.parsed import ParsedWebhook
from engine.events import ConsentUpdate, DeliveryStatus
from engine.feedback import Feedback, MessageContext, delivery_result

# Twilio's documented opt-out and opt-in keywords (a message that is exactly one of them).
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "UNSTOP"})
# Final statuses only: "sent" means handed to the carrier, which the dispatcher already recorded.
STATUS_RESULTS: dict[str, DeliveryStatus] = {
    "delivered": "sent",
    "undelivered": "bounced",
    "failed": "failed",
}

Params = Sequence[tuple[str, str]]


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the scheme's default port.

    Twilio's own validators accept all three: what it signs depends on how the URL was written.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    default_port = 443 if parts.scheme == "https" else 80
    variants = [url, urlunsplit(parts._replace(netloc=prefix + host))]
    variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{parts.port or default_port}")))
    return list(dict.fromkeys(variants))


def verify_twilio(auth_token: str, url: str, params: Params, signature: str | None) -> None:
    """Raise WebhookSignatureError unless ``signature`` is Twilio's for this URL and these params."""
    if not signature:
        raise WebhookSignatureError("the request has no X-Twilio-Signature header")
    presented = signature.encode("utf-8")
    for candidate in _url_variants(url):
        if hmac.compare_digest(twilio_signature(auth_token, candidate, params).encode("ascii"), presented):
            return
    raise WebhookSignatureError("the X-Twilio-Signature does not match this URL and the auth token")


def _first(params: Params, name: str) -> str | None:
    return next((value for key, value in params if key == name), None)


def parse_status(context: MessageContext, params: Params) -> ParsedWebhook:
    """A status callback about the delivery ``context`` names."""
    status = _first(params, "MessageStatus") or _first(params, "SmsStatus")
    if not status:
        raise WebhookPayloadError("a status callback needs MessageStatus", "MessageStatus")
    result = STATUS_RESULTS.get(status)
    if result is None:
        return ParsedWebhook(ignored=f"status {status!r} is not final")
    error = _first(params, "ErrorCode")
    reason = f"twilio {status}" + (f" (error {error})" if error else "") if result != "sent" else None
    feedback = delivery_result(
        context, result, provider_message_id=_first(params, "MessageSid"), reason=reason
    )
    return ParsedWebhook((feedback,))


@dataclass(slots=True, frozen=True)
class InboundSms:
    sender: str
    message_sid: str
    keyword: Literal["stop", "start"] | None


def parse_inbound(params: Params) -> InboundSms:
    sender = _first(params, "From")
    if not sender:
        raise WebhookPayloadError("an inbound message needs From", "From")
    body = (_first(params, "Body") or "").strip().upper()
    # With Advanced Opt-Out, Twilio says what it understood (its keyword lists can be edited).
    opt_out_type = (_first(params, "OptOutType") or "").upper()
    keyword: Literal["stop", "start"] | None = None
    if opt_out_type == "STOP" or (not opt_out_type and body in STOP_KEYWORDS):
        keyword = "stop"
    elif opt_out_type == "START" or (not opt_out_type and body in START_KEYWORDS):
        keyword = "start"
    return InboundSms(sender.removeprefix("sms:"), _first(params, "MessageSid") or "", keyword)


def inbound_consent(customer_id: str, inbound: InboundSms) -> Feedback:
    """The SMS consent change a STOP or START reply makes."""
    if inbound.keyword is None:
        raise WebhookPayloadError("the message is neither a STOP nor a START reply")
    update = ConsentUpdate(opted_in=inbound.keyword == "start", channel="sms")
    event_id = f"twilio:{inbound.message_sid}" if inbound.message_sid else None
    return Feedback(customer_id, update, event_id)
