"""API keys with scopes. Keys look like ``rfk_<id>_<secret>``; only the SHA-256 is configured."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from api.errors import ApiError
from engine.errors import ConfigurationError
from engine.settings import ApiKeySetting

KEY_PREFIX = "rfk"


@dataclass(slots=True, frozen=True)
class NewKey:
    """A freshly minted key: show ``secret`` once, configure ``setting``."""

    secret: str
    setting: ApiKeySetting


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def mint_key(scopes: Iterable[str], key_id: str | None = None) -> NewKey:
    key_id = key_id or secrets.token_hex(4)
    if not re.fullmatch(r"[A-Za-z0-9-]{1,32}", key_id):
        raise ConfigurationError(f"key id {key_id!r} must be 1-32 letters, digits or '-'")
    secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
    return NewKey(secret, ApiKeySetting(key_id, hash_key(secret), frozenset(scopes)))


class Authenticator:
    def __init__(self, keys: Iterable[ApiKeySetting]) -> None:
        self._keys = {key.key_id: key for key in keys}

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

    def require(self, request: web.Request, scope: str) -> ApiKeySetting:
        header = request.headers.get("Authorization", "")
        presented = header[7:].strip() if header.lower().startswith("bearer ") else None
        presented = presented or request.headers.get("X-Api-Key")
        key = self.authenticate(presented)
        if scope not in key.scopes and "admin" not in key.scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                f"the API key {key.key_id!r} lacks the scope {scope!r} needed here",
            )
        return key
