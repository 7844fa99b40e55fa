"""The one interface every outbound provider implements, and the ids derived from a delivery id."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Protocol

from engine.deliveries import Delivery
from engine.events import Channel


@dataclass(slots=True, frozen=True)
class SendReceipt:
    """The provider accepted the message; its id for it, when it gives one."""

    provider_message_id: str | None


class Provider(Protocol):
    """Sends deliveries of one channel. ``send`` raises ``ProviderError`` when it did not send."""

    channel: Channel
    name: str

    async def send(self, delivery: Delivery) -> SendReceipt: ...

    async def close(self) -> None: ...


def email_message_id(delivery_id: str, sender: str) -> str:
    """The RFC 5322 Message-ID of a delivery: the same on every attempt, so a resend is recognisable."""
    domain = sender.rpartition("@")[2].strip("> ") or "refract.invalid"
    return f"<{delivery_id}@{domain}>"


def uuid_of(delivery_id: str) -> str:
    """A UUID derived from a delivery id (APNs wants its apns-id in this form)."""
    return str(uuid.UUID(bytes=hashlib.blake2b(delivery_id.encode("utf-8"), digest_size=16).digest()))
