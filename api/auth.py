"""API keys with scopes. Keys look like ``rfk_<id>_<secret>``; only the SHA-256 is configured.

``Authenticator.require`` is the one place a request's key is checked: its secret, its scope,
the browser origin a public key is used from, and the key's rate limit (``api.rate_limits``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from api.errors import ApiError
from api.rate_limits import RateLimiter, retry_after_s
from engine.errors import ConfigurationError
from engine.settings import ApiKeySetting
from streams import metrics

KEY_PREFIX = "rfk"


@dataclass(slots=True, frozen=True)
class NewKey:
    """A freshly minted key: show ``secret`` once, configure ``setting``."""

    secret: str
    setting: ApiKeySetting


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def mint_key(
    scopes: Iterable[str],
    key_id: str | None = None,
    *,
    public: bool = False,
    origins: Iterable[str] = (),
    rate_per_s: float | None = None,
    burst: int | None = None,
) -> NewKey:
    key_id = key_id or secrets.token_hex(4)
    if not re.fullmatch(r"[A-Za-z0-9-]{1,32}", key_id):
        raise ConfigurationError(f"key id {key_id!r} must be 1-32 letters, digits or '-'")
    secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
    setting = ApiKeySetting(
        key_id,
        hash_key(secret),
        frozenset(scopes),
        public=public,
        origins=tuple(origins),
        rate_per_s=rate_per_s,
        burst=burst,
    )
    return NewKey(secret, setting)


class Authenticator:
    """Checks keys; ``rate_per_s``/``burst`` are the default limits (0: unlimited)."""

    def __init__(
        self,
        keys: Iterable[ApiKeySetting],
        *,
        rate_per_s: float = 0.0,
        burst: int = 1,
        cors_origins: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = {key.key_id: key for key in keys}
        self._rate_per_s = rate_per_s
        self._burst = burst
        self._cors_origins = frozenset(cors_origins)
        self._limiter = RateLimiter(clock)

    def authenticate(self, presented: str | None) -> ApiKeySetting:
        if not presented:
            raise ApiError(
                401,
                "missing_api_key",
                "this endpoint needs an API key: send 'Authorization: Bearer <key>'",
            )
        parts = presented.split("_", 2)
        key = self._keys.get(parts[1]) if len(parts) == 3 and parts[0] == KEY_PREFIX else None
        # Compare digests even for unknown ids so that timing does not tell which ids exist.
        expected = key.secret_sha256 if key is not None else "0" * 64
        if not hmac.compare_digest(hash_key(presented), expected) or key is None:
            raise ApiError(401, "invalid_api_key", "the API key is not valid")
        return key

    def require(self, request: web.Request, scope: str, *, in_body: str | None = None) -> ApiKeySetting:
        """The key of the request, allowed ``scope``; ``in_body``: a key sent in the body (beacons
        cannot set headers), used when the headers carry none."""
        header = request.headers.get("Authorization", "")
        presented = header[7:].strip() if header.lower().startswith("bearer ") else None
        presented = presented or request.headers.get("X-Api-Key") or in_body
        key = self.authenticate(presented)
        self._limit(key)  # every authenticated request spends a token, refused ones too
        if scope not in key.scopes and "admin" not in key.scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                f"the API key {key.key_id!r} lacks the scope {scope!r} needed here",
            )
        origin = request.headers.get("Origin")
        allowed = origin is None or origin in key.origins or origin in self._cors_origins
        if key.public and not allowed:
            raise ApiError(
                403,
                "origin_not_allowed",
                f"the public key {key.key_id!r} may not be used from {origin!r}; add the origin to"
                " the key's origins or to cors_origins",
            )
        return key

    def _limit(self, key: ApiKeySetting) -> None:
        rate = self._rate_per_s if key.rate_per_s is None else key.rate_per_s
        burst = self._burst if key.burst is None else key.burst
        wait_s = self._limiter.take(key.key_id, rate, burst)
        if wait_s > 0:
            metrics.RATE_LIMITED.labels(key.key_id).inc()
            seconds = retry_after_s(wait_s)
            raise ApiError(
                429,
                "rate_limited",
                f"the API key {key.key_id!r} made more than {rate:g} requests per second"
                f" (burst {burst}); retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
