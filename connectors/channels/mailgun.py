"""Email through Mailgun's HTTP messages API (``POST /v3/{domain}/messages``, basic auth ``api:<key>``).

The delivery id travels as a variable (``v:delivery_id``, echoed in Mailgun's webhooks) and a
header; the campaign id is the tag (``o:tag``) Mailgun's statistics group by.
"""

from __future__ import annotations

import httpx

from connectors.channels.base import SendReceipt
from connectors.channels.errors import InvalidAddress
from connectors.channels.http import new_client, status_error, transport_error
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
        self._auth = httpx.BasicAuth("api", settings.api_key)
        self._client = new_client(settings.timeout_s)

    async def send(self, delivery: Delivery) -> SendReceipt:
        form = form_of(delivery, self._default_from)
        try:
            response = await self._client.post(self._url, data=_multi(form), auth=self._auth)
        except httpx.HTTPError as exc:
            raise transport_error("mailgun", exc) from None
        if response.status_code == 200:
            message_id = _json(response).get("id")
            return SendReceipt(str(message_id) if message_id is not None else None)
        detail = str(_json(response).get("message") or response.text[:200])
        error = status_error("mailgun", response, detail)
        if response.status_code in (401, 403):
            error.message += " (check REFRACT_MAILGUN_API_KEY, REFRACT_MAILGUN_DOMAIN and the region)"
            error.status = "failed"
        raise error

    async def close(self) -> None:
        await self._client.aclose()


def _multi(form: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    merged: dict[str, str | list[str]] = {}
    for name, value in form:
        if name in merged:
            current = merged[name]
            merged[name] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            merged[name] = value
    return merged


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
