"""What the HTTP providers share: one httpx client each, and mapping answers to outcomes.

Timeouts and connection errors, 408, 429 and 5xx may work later (after ``Retry-After`` when the
provider sends it); any other 4xx is the provider refusing this message.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

import httpx

from connectors.channels.errors import ProviderError

_RETRIABLE_STATUS = frozenset({408, 425, 429})


def retry_after_s(headers: Mapping[str, str], now_s: float | None = None) -> float | None:
    """The ``Retry-After`` header in seconds (it may be seconds or an HTTP date), if any."""
    raw = headers.get("retry-after")
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
    provider: str, response: httpx.Response, detail: str, provider_code: str | None = None
) -> ProviderError:
    """The error for a non-success answer: retriable or a refusal (``rejected``)."""
    status = response.status_code
    return ProviderError(
        f"{provider} answered {status}: {detail}"[:500],
        retriable=is_retriable_status(status),
        status="rejected" if status < 500 else "failed",
        retry_after_s=retry_after_s(response.headers),
        provider_code=provider_code or str(status),
    )


def transport_error(provider: str, exc: httpx.HTTPError) -> ProviderError:
    return ProviderError(f"{provider} could not be reached: {type(exc).__name__}: {exc}", retriable=True)


def new_client(timeout_s: float, *, http2: bool = False, verify: object = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=timeout_s,
        http2=http2,
        verify=verify,  # type: ignore[arg-type]
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
    )
