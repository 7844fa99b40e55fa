"""Email through Mailgun's HTTP messages API (``POST /v3/{domain}/messages``, basic auth ``api:<key>``).

The delivery id travels as a variable (``v:delivery_id``, echoed in Mailgun's webhooks) and a
header; the campaign id is the tag (``o:tag``) Mailgun's statistics group by.
"""

from __future__ import annotations

import aiohttp

from connectors.channels.base import SendReceipt
from connectors.channels.errors import InvalidAddress
from connectors.channels.http import HttpClient, status_error
from engine.channel_settings import MailgunSettings
from engine.deliveries import Delivery
from engine.events import Channel


def form_of(delivery: Delivery, default_from: str | None) -> list[tuple[str, str]]:
    """The form fields of the messages API for a delivery."""
    content = delivery.content
    sender = content.get("from") or default_from
    if not sender:
        raise InvalidAddress(
            "the email has no sender: give the content a 'from' or set REFRACT_EMAIL_FROM",
            provider_code="no_sender",
        )
    fields = [
        ("from", sender),
        ("to", delivery.address),
        ("subject", content.get("subject", "")),
        ("o:tag", delivery.campaign_id),
        ("v:delivery_id", delivery.delivery_id),
        ("v:customer_id", delivery.customer_id),
        ("h:X-Refract-Delivery-Id", delivery.delivery_id),
    ]
    if content.get("text") is not None:
        fields.append(("text", content["text"]))
    if content.get("html") is not None:
        fields.append(("html", content["html"]))
    if content.get("reply_to"):
        fields.append(("h:Reply-To", content["reply_to"]))
    if content.get("unsubscribe_url"):
        fields.append(("h:List-Unsubscribe", f"<{content['unsubscribe_url']}>"))
        fields.append(("h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return fields


class MailgunProvider:
    channel: Channel = "email"
    name = "mailgun"

    def __init__(self, settings: MailgunSettings, *, default_from: str | None = None) -> None:
        self._settings = settings
        self._default_from = default_from
        self._url = f"{settings.url}/v3/{settings.domain}/messages"
        self._headers = {"Authorization": aiohttp.encode_basic_auth("api", settings.api_key)}
        self._http = HttpClient("mailgun", settings.timeout_s)

    async def send(self, delivery: Delivery) -> SendReceipt:
        form = aiohttp.FormData(form_of(delivery, self._default_from))
        answer = await self._http.request("POST", self._url, data=form, headers=self._headers)
        body = answer.json()
        if answer.status == 200:
            message_id = body.get("id")
            return SendReceipt(str(message_id) if message_id is not None else None)
        error = status_error("mailgun", answer, str(body.get("message") or answer.text))
        if answer.status in (401, 403):
            error.message += " (check REFRACT_MAILGUN_API_KEY, REFRACT_MAILGUN_DOMAIN and the region)"
            error.status = "failed"
        raise error

    async def close(self) -> None:
        await self._http.close()
