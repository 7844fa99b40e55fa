"""The outbox record: one outbound message, rendered, addressed, with a deterministic id.

The customer processor decides a send and writes a ``Delivery`` to ``refract.deliveries``;
the channel dispatchers send it. ``content`` holds the rendered parts by name; the names each
channel uses are listed below so that producers and providers agree on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ValidationError
from engine.events import CHANNELS, Channel

EMAIL_PARTS = ("subject", "html", "text", "from", "reply_to", "unsubscribe_url")
"""``unsubscribe_url``: the one-click link for the ``List-Unsubscribe`` headers."""
SMS_PARTS = ("text", "sender")
PUSH_PARTS = ("platform", "title", "body", "deep_link", "data")
"""``platform``: android, ios or web; ``data``: a JSON object of string values, as text."""

CONTENT_PARTS: Mapping[Channel, tuple[str, ...]] = {
    "email": EMAIL_PARTS,
    "sms": SMS_PARTS,
    "push": PUSH_PARTS,
}


def delivery_id(customer_id: str, campaign_id: str, campaign_version: int, run_id: str, step_id: str) -> str:
    """The id of the send of ``step_id`` in a run: the same inputs give the same id on a replay."""
    raw = "\0".join((customer_id, campaign_id, str(campaign_version), run_id, step_id))
    return "dlv_" + hashlib.blake2b(raw.encode("utf-8"), digest_size=12).hexdigest()


@dataclass(slots=True, frozen=True)
class Delivery:
    """An outbound message to send once (the value of ``refract.deliveries``)."""

    delivery_id: str
    customer_id: str
    campaign_id: str
    campaign_version: int
    run_id: str
    step_id: str
    channel: Channel
    address: str
    content: Mapping[str, str] = field(default_factory=dict)
    created_at_ms: int = 0
    expires_at_ms: int | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValidationError(
                f"unknown channel {self.channel!r}; use one of {', '.join(CHANNELS)}", "channel"
            )
        if not self.address:
            raise ValidationError("a delivery needs an address (email, phone or push token)", "address")

    def is_expired(self, now_ms: int) -> bool:
        return self.expires_at_ms is not None and now_ms >= self.expires_at_ms

    def to_record(self) -> dict[str, Any]:
        """The Avro dict of ``schemas/Delivery.avsc``."""
        return {
            "delivery_id": self.delivery_id,
            "customer_id": self.customer_id,
            "campaign_id": self.campaign_id,
            "campaign_version": self.campaign_version,
            "run_id": self.run_id,
            "step_id": self.step_id,
            "channel": self.channel,
            "address": self.address,
            "content": dict(self.content),
            "created_at": self.created_at_ms,
            "expires_at": self.expires_at_ms,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Delivery:
        return cls(
            delivery_id=record["delivery_id"],
            customer_id=record["customer_id"],
            campaign_id=record["campaign_id"],
            campaign_version=int(record["campaign_version"]),
            run_id=record["run_id"],
            step_id=record["step_id"],
            channel=record["channel"],
            address=record["address"],
            content=dict(record.get("content") or {}),
            created_at_ms=int(record["created_at"]),
            expires_at_ms=record.get("expires_at"),
        )
