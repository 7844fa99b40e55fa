"""iOS push through the Apple Push Notification service over HTTP/2 (httpx with h2: aiohttp has no HTTP/2).

Token-based auth: an ES256 JWT signed with the team's .p8 key (``kid`` the key id, ``iss`` the
team id), made again every 50 minutes (Apple accepts one for an hour and refuses fresher ones
more often than every 20). The apns-id is derived from the delivery id, so a resend carries the
same id. 410 Unregistered and 400 BadDeviceToken mean the token should leave the profile.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import orjson

from connectors.channels.base import SendReceipt, uuid_of
from connectors.channels.errors import InvalidPushToken, ProviderError
from connectors.channels.http import HttpAnswer, status_error
from engine.channel_settings import ApnsSettings
from engine.deliveries import Delivery
from engine.errors import ConfigurationError
from engine.events import Channel

TOKEN_LIFETIME_S = 50 * 60
_TOKEN_REASONS = frozenset({"Unregistered", "BadDeviceToken"})
_AUTH_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})


def apns_payload(delivery: Delivery) -> dict[str, Any]:
    content = delivery.content
    payload: dict[str, Any] = {}
    if content.get("data"):
        try:
            extra = orjson.loads(content["data"])
        except orjson.JSONDecodeError:
            extra = {}
        if isinstance(extra, dict):
            payload.update({str(k): v for k, v in extra.items() if k != "aps"})
    if content.get("title") or content.get("body"):
        payload["aps"] = {"alert": {"title": content.get("title", ""), "body": content.get("body", "")}}
    else:
        payload["aps"] = {"content-available": 1}
    if content.get("deep_link"):
        payload["deep_link"] = content["deep_link"]
    payload["delivery_id"] = delivery.delivery_id
    return payload


class ApnsProvider:
    channel: Channel = "push"
    name = "apns"

    def __init__(self, settings: ApnsSettings, *, clock: Callable[[], float] = time.time) -> None:
        try:
            self._key = settings.key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the APNs key {settings.key_file}: {exc.strerror}"
            ) from None
        self._settings = settings
        verify: ssl.SSLContext | bool = True
        if settings.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.ca_file))
        self._client = httpx.AsyncClient(
            http2=True,
            verify=verify,
            timeout=settings.timeout_s,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        )
        self._clock = clock
        self._jwt: str | None = None
        self._jwt_made_s = 0.0

    def _provider_token(self) -> str:
        now = self._clock()
        if self._jwt is None or now - self._jwt_made_s >= TOKEN_LIFETIME_S:
            self._jwt = jwt.encode(
                {"iss": self._settings.team_id, "iat": int(now)},
                self._key,
                algorithm="ES256",
                headers={"kid": self._settings.key_id},
            )
            self._jwt_made_s = now
        return self._jwt

    async def send(self, delivery: Delivery) -> SendReceipt:
        alert = bool(delivery.content.get("title") or delivery.content.get("body"))
        body = orjson.dumps(apns_payload(delivery))
        apns_id = uuid_of(delivery.delivery_id)
        headers = {
            "apns-topic": self._settings.topic,
            "apns-push-type": "alert" if alert else "background",
            "apns-priority": "10" if alert else "5",
            "apns-id": apns_id,
        }
        if delivery.expires_at_ms is not None:
            headers["apns-expiration"] = str(delivery.expires_at_ms // 1000)
        url = f"{self._settings.url}/3/device/{delivery.address}"
        for attempt in (1, 2):
            headers["authorization"] = f"bearer {self._provider_token()}"
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise ProviderError(
                    f"apns could not be reached: {type(exc).__name__}: {exc}", retriable=True
                ) from None
            if response.status_code == 200:
                return SendReceipt(response.headers.get("apns-id", apns_id))
            answer = HttpAnswer(response.status_code, response.headers, response.content)
            reason = str(answer.json().get("reason") or answer.status)
            if reason in _AUTH_REASONS and attempt == 1:
                self._jwt = None  # Apple refused the provider token: make a new one once
                continue
            raise _error_of(answer, reason)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._client.aclose()


def _error_of(answer: HttpAnswer, reason: str) -> ProviderError:
    if reason in _TOKEN_REASONS:
        return InvalidPushToken(f"apns: {reason}", provider_code=reason)
    return status_error("apns", answer, reason, reason)
