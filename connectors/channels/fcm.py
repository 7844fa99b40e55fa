"""Android (and web) push through Firebase Cloud Messaging HTTP v1.

Authentication: a service-account key (JSON) signs an RS256 JWT that Google's token endpoint
exchanges for an OAuth2 access token, cached until shortly before it expires. An UNREGISTERED
token, or INVALID_ARGUMENT about the token itself, means the token should leave the profile.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import orjson

from connectors.channels.base import SendReceipt
from connectors.channels.errors import InvalidPushToken, ProviderError
from connectors.channels.http import HttpAnswer, HttpClient, status_error
from engine.channel_settings import FcmSettings
from engine.deliveries import Delivery
from engine.errors import ConfigurationError
from engine.events import Channel

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_REFRESH_MARGIN_S = 60.0


def load_service_account(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            key = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the FCM service-account key {path}: {exc}") from None
    missing = [name for name in ("client_email", "private_key", "project_id") if not key.get(name)]
    if missing:
        raise ConfigurationError(f"the FCM service-account key {path} lacks {', '.join(missing)}")
    return dict(key)


def push_body(delivery: Delivery) -> dict[str, Any]:
    """The ``message`` of a send request: notification title/body, data as strings, the deep link."""
    content = delivery.content
    data: dict[str, str] = {}
    if content.get("data"):
        try:
            raw = orjson.loads(content["data"])
        except orjson.JSONDecodeError:
            raw = {}
        if isinstance(raw, dict):
            data = {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in raw.items()}
    if content.get("deep_link"):
        data["deep_link"] = content["deep_link"]
    data["delivery_id"] = delivery.delivery_id
    message: dict[str, Any] = {"token": delivery.address, "data": data}
    if content.get("title") or content.get("body"):
        message["notification"] = {"title": content.get("title", ""), "body": content.get("body", "")}
    return {"message": message}


class FcmProvider:
    channel: Channel = "push"
    name = "fcm"

    def __init__(self, settings: FcmSettings, *, clock: Callable[[], float] = time.time) -> None:
        key = load_service_account(str(settings.service_account_file))
        self._email = key["client_email"]
        self._private_key = key["private_key"]
        self._key_id = key.get("private_key_id")
        self._token_uri = settings.token_uri or key.get("token_uri") or "https://oauth2.googleapis.com/token"
        self._url = f"{settings.base_url.rstrip('/')}/v1/projects/{key['project_id']}/messages:send"
        self._http = HttpClient("fcm", settings.timeout_s)
        self._clock = clock
        self._token: str | None = None
        self._token_expires_s = 0.0
        self._token_lock = asyncio.Lock()
        self.token_requests = 0  # how often a token was fetched (tests check the cache)

    async def _access_token(self) -> str:
        if self._token is not None and self._clock() < self._token_expires_s - _REFRESH_MARGIN_S:
            return self._token
        async with self._token_lock:
            now = self._clock()
            if self._token is not None and now < self._token_expires_s - _REFRESH_MARGIN_S:
                return self._token
            claims = {
                "iss": self._email,
                "scope": SCOPE,
                "aud": self._token_uri,
                "iat": int(now),
                "exp": int(now) + 3600,
            }
            headers = {"kid": self._key_id} if self._key_id else None
            assertion = jwt.encode(claims, self._private_key, algorithm="RS256", headers=headers)
            answer = await self._http.request(
                "POST", self._token_uri, data={"grant_type": GRANT_TYPE, "assertion": assertion}
            )
            self.token_requests += 1
            body = answer.json()
            if answer.status != 200 or "access_token" not in body:
                error = status_error(
                    "fcm token endpoint", answer, str(body.get("error_description") or body.get("error"))
                )
                error.status = "failed"
                raise error
            self._token = str(body["access_token"])
            self._token_expires_s = now + float(body.get("expires_in", 3600))
            return self._token

    async def send(self, delivery: Delivery) -> SendReceipt:
        body = orjson.dumps(push_body(delivery))
        for attempt in (1, 2):
            token = await self._access_token()
            answer = await self._http.request(
                "POST",
                self._url,
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            if answer.status == 200:
                name = answer.json().get("name")
                return SendReceipt(str(name) if name is not None else None)
            if answer.status == 401 and attempt == 1:
                self._token = None  # revoked or expired early: fetch a new one once
                continue
            raise _error_of(answer)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._http.close()


def _error_of(answer: HttpAnswer) -> ProviderError:
    error = answer.json().get("error")
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or answer.text)
    fcm_code = None
    token_field = False
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        fcm_code = detail.get("errorCode") or fcm_code
        for violation in detail.get("fieldViolations") or []:
            if isinstance(violation, dict) and violation.get("field") == "message.token":
                token_field = True
    code = str(fcm_code or error.get("status") or answer.status)
    if code == "UNREGISTERED" or (
        code == "INVALID_ARGUMENT" and (token_field or "registration token" in message.lower())
    ):
        return InvalidPushToken(f"fcm: {message}", provider_code=code)
    return status_error("fcm", answer, message, code)
