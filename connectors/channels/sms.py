"""SMS: Twilio's Messages API and a generic HTTP gateway with a configurable request template.

Both refuse a number that is not E.164 before calling anyone (a permanent ``rejected``).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from connectors.channels.base import SendReceipt
from connectors.channels.errors import InvalidAddress
from connectors.channels.http import new_client, status_error, transport_error
from engine.channel_settings import SmsGatewaySettings, TwilioSettings
from engine.deliveries import Delivery
from engine.errors import ConfigurationError
from engine.events import Channel
from engine.sms import is_e164

# Twilio error codes that mean the number cannot receive this message (never worth a retry).
_TWILIO_BAD_NUMBER = frozenset({21211, 21214, 21217, 21219, 21401, 21407, 21408, 21610, 21612, 21614})


def _checked_number(delivery: Delivery) -> str:
    if not is_e164(delivery.address):
        raise InvalidAddress(
            f"{delivery.address!r} is not an E.164 phone number ('+' and up to 15 digits)",
            provider_code="invalid_number",
        )
    return delivery.address


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class TwilioProvider:
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` with To, From, Body and StatusCallback."""

    channel: Channel = "sms"
    name = "twilio"

    def __init__(self, settings: TwilioSettings) -> None:
        self._settings = settings
        self._url = (
            f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        )
        self._auth = httpx.BasicAuth(settings.account_sid, settings.auth_token)
        self._client = new_client(settings.timeout_s)

    async def send(self, delivery: Delivery) -> SendReceipt:
        form = {
            "To": _checked_number(delivery),
            "From": delivery.content.get("sender") or self._settings.from_number,
            "Body": delivery.content.get("text", ""),
        }
        if self._settings.status_callback_url:
            form["StatusCallback"] = self._settings.status_callback_url
        try:
            response = await self._client.post(self._url, data=form, auth=self._auth)
        except httpx.HTTPError as exc:
            raise transport_error("twilio", exc) from None
        body = _json(response)
        if response.status_code in (200, 201):
            return SendReceipt(body.get("sid"))
        code = body.get("code")
        error = status_error("twilio", response, str(body.get("message") or response.text[:200]), str(code))
        if isinstance(code, int) and code in _TWILIO_BAD_NUMBER:
            raise InvalidAddress(error.message, provider_code=str(code))
        raise error

    async def close(self) -> None:
        await self._client.aclose()


class GatewayProvider:
    """Any HTTP gateway: the JSON body is the template with {to}, {text}, {sender}, {delivery_id}.

    Values are substituted inside the template's strings after it is parsed, so a text with
    quotes or newlines stays valid JSON.
    """

    channel: Channel = "sms"
    name = "gateway"

    def __init__(self, settings: SmsGatewaySettings) -> None:
        self._settings = settings
        try:
            self._template = orjson.loads(settings.body_template)
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(f"REFRACT_SMS_GATEWAY_BODY_TEMPLATE is not JSON: {exc}") from None
        self._headers = {"Content-Type": "application/json"}
        if settings.authorization:
            self._headers["Authorization"] = settings.authorization
        self._client = new_client(settings.timeout_s)

    def body(self, delivery: Delivery) -> bytes:
        values = {
            "{to}": _checked_number(delivery),
            "{text}": delivery.content.get("text", ""),
            "{sender}": delivery.content.get("sender", ""),
            "{delivery_id}": delivery.delivery_id,
        }
        return orjson.dumps(_fill(self._template, values))

    async def send(self, delivery: Delivery) -> SendReceipt:
        body = self.body(delivery)
        try:
            response = await self._client.request(
                self._settings.method.upper(), self._settings.url, content=body, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise transport_error("sms gateway", exc) from None
        answer = _json(response)
        if 200 <= response.status_code < 300:
            message_id = answer.get(self._settings.message_id_field)
            return SendReceipt(str(message_id) if message_id is not None else None)
        detail = str(answer.get("message") or answer.get("error") or response.text[:200])
        error = status_error("sms gateway", response, detail)
        if response.status_code in (400, 422) and "number" in detail.lower():
            raise InvalidAddress(error.message, provider_code=error.provider_code)
        raise error

    async def close(self) -> None:
        await self._client.aclose()


_PLACEHOLDER = re.compile(r"\{(?:to|text|sender|delivery_id)\}")


def _fill(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        # One pass: a text that contains "{to}" is not substituted again.
        return _PLACEHOLDER.sub(lambda match: values[match.group(0)], node)
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, values) for value in node]
    return node
