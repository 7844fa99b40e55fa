"""SMS: Twilio's Messages API and a generic HTTP gateway with a configurable request template.

Both refuse a number that is not E.164 before calling anyone (a permanent ``rejected``).
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import orjson

from connectors.channels.base import SendReceipt
from connectors.channels.errors import InvalidAddress
from connectors.channels.http import HttpClient, status_error
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


class TwilioProvider:
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` with To, From, Body and StatusCallback."""

    channel: Channel = "sms"
    name = "twilio"

    def __init__(self, settings: TwilioSettings) -> None:
        self._settings = settings
        self._url = (
            f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        )
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(settings.account_sid, settings.auth_token)
        }
        self._http = HttpClient("twilio", settings.timeout_s)

    async def send(self, delivery: Delivery) -> SendReceipt:
        form = {
            "To": _checked_number(delivery),
            "From": delivery.content.get("sender") or self._settings.from_number,
            "Body": delivery.content.get("text", ""),
        }
        if self._settings.status_callback_url:
            form["StatusCallback"] = self._settings.status_callback_url
        answer = await self._http.request("POST", self._url, data=form, headers=self._headers)
        body = answer.json()
        if answer.status in (200, 201):
            sid = body.get("sid")
            return SendReceipt(str(sid) if sid is not None else None)
        code = body.get("code")
        error = status_error("twilio", answer, str(body.get("message") or answer.text), str(code))
        if isinstance(code, int) and code in _TWILIO_BAD_NUMBER:
            raise InvalidAddress(error.message, provider_code=str(code))
        raise error

    async def close(self) -> None:
        await self._http.close()


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
        self._http = HttpClient("sms gateway", settings.timeout_s)

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
        answer = await self._http.request(
            self._settings.method.upper(), self._settings.url, data=body, headers=self._headers
        )
        document = answer.json()
        if 200 <= answer.status < 300:
            message_id = document.get(self._settings.message_id_field)
            return SendReceipt(str(message_id) if message_id is not None else None)
        detail = str(document.get("message") or document.get("error") or answer.text)
        error = status_error("sms gateway", answer, detail)
        if answer.status in (400, 422) and "number" in detail.lower():
            raise InvalidAddress(error.message, provider_code=error.provider_code)
        raise error

    async def close(self) -> None:
        await self._http.close()


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
