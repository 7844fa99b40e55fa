"""What the HTTP providers share: a lazily made aiohttp session, one answer shape, outcome mapping.

Mailgun, Twilio, the SMS gateway and FCM speak HTTP/1.1 through aiohttp (about a tenth of
httpx's CPU per request, measured); APNs needs HTTP/2 and uses httpx (see ``apns``). Timeouts
and connection errors, 408, 425, 429 and 5xx may work later (after ``Retry-After`` when the
provider sends it); any other 4xx is the provider refusing this message.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from connectors.channels.errors import ProviderError

_RETRIABLE_STATUS = frozenset({408, 425, 429})


@dataclass(slots=True, frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; {} when it is not one."""
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def text(self) -> str:
        return self.body[:200].decode("utf-8", "replace")


class HttpClient:
    """One aiohttp session per provider, made on first use (it must be made inside the event loop)."""

    def __init__(self, provider: str, timeout_s: float) -> None:
        self._provider = provider
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300)
            )
        try:
            async with self._session.request(method, url, data=data, headers=headers) as response:
                return HttpAnswer(response.status, response.headers, await response.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(
                f"{self._provider} could not be reached: {type(exc).__name__}: {exc}", retriable=True
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def retry_after_s(headers: Mapping[str, str], now_s: float | None = None) -> float | None:
    """The ``Retry-After`` header in seconds (it may be seconds or an HTTP date), if any."""
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))


def is_retriable_status(status: int) -> bool:
    return status in _RETRIABLE_STATUS or status >= 500


def status_error(
    provider: str, answer: HttpAnswer, detail: str, provider_code: str | None = None
) -> ProviderError:
    """The error for a non-success answer: retriable or a refusal (``rejected``)."""
    status = answer.status
    return ProviderError(
        f"{provider} answered {status}: {detail}"[:500],
        retriable=is_retriable_status(status),
        status="rejected" if status < 500 else "failed",
        retry_after_s=retry_after_s(answer.headers),
        provider_code=provider_code or str(status),
    )
