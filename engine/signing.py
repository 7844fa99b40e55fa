"""Compact signed tokens: the capabilities inside tracking, unsubscribe and callback URLs.

A token is ``<key id>.<payload>.<tag>``, all base64url without padding. The payload is the UTF-8
of ``purpose``, ``expires_at_ms`` and the fields joined by the unit separator (U+001F; an empty
field reads back as None): more compact than JSON, which matters in an SMS. The tag is
HMAC-SHA256 over ``<key id>.<payload>``,
truncated to 128 bits (RFC 2104 allows truncation to half the digest; it keeps SMS links short).
The purpose is inside what is signed, so a token minted for one use (an open pixel) is refused
for another (an unsubscribe). Secrets rotate: sign with the first, verify with any; the key id
(derived from the secret) says which one signed, so verification tries one secret, not all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import TypeAlias

from engine.errors import ConfigurationError, RefractError, ValidationError

TAG_BYTES = 16
KEY_ID_BYTES = 3
MIN_SECRET_LENGTH = 16
SEPARATOR = "\x1f"

Field: TypeAlias = str | None


class InvalidSignature(RefractError):
    """The token was not made by Refract with a configured secret, or was altered."""

    code = "invalid_signature"


class ExpiredToken(RefractError):
    """The token is genuine but past its expiry."""

    code = "expired_token"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # urlsafe_b64decode accepts '+' and '/' too: only the base64url alphabet is genuine here.
    if not text or not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        raise InvalidSignature("the token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSignature("the token is not base64url") from None


def key_id(secret: str) -> str:
    """The public id of a secret: four characters that name it without revealing it."""
    digest = hashlib.sha256(b"refract-signing-key-id\0" + secret.encode("utf-8")).digest()
    return _b64encode(digest[:KEY_ID_BYTES])


class Signer:
    """Signs and verifies tokens with a list of secrets (the first signs)."""

    __slots__ = ("_by_id", "_signing")

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ConfigurationError(
                "no signing secret: set REFRACT_SIGNING_SECRET to a long random value"
                " (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        for secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                raise ConfigurationError(
                    f"a signing secret must be at least {MIN_SECRET_LENGTH} characters;"
                    " set REFRACT_SIGNING_SECRET to a long random value"
                )
        self._signing = (key_id(secrets[0]), _keyed(secrets[0]))
        by_id: dict[str, list[hmac.HMAC]] = {}
        for secret in secrets:
            by_id.setdefault(key_id(secret), []).append(_keyed(secret))
        self._by_id = {kid: tuple(keys) for kid, keys in by_id.items()}

    def sign(self, purpose: str, fields: Sequence[Field], *, expires_at_ms: int | None = None) -> str:
        kid, secret = self._signing
        values = [purpose, "" if expires_at_ms is None else str(expires_at_ms), *(f or "" for f in fields)]
        if any(SEPARATOR in value for value in values):
            raise ValidationError("a signed field cannot hold the unit separator (U+001F)")
        payload = _b64encode(SEPARATOR.join(values).encode("utf-8"))
        signed = f"{kid}.{payload}"
        return f"{signed}.{_b64encode(_tag(secret, signed))}"

    def verify(self, token: str, purpose: str, *, now_ms: int) -> tuple[Field, ...]:
        """The fields of a genuine, unexpired token made for ``purpose``.

        Raises InvalidSignature (forged, altered, unknown key, other purpose) or ExpiredToken.
        """
        kid, _, rest = token.partition(".")
        payload, _, tag_text = rest.partition(".")
        secrets = self._by_id.get(kid, ())
        tag = _b64decode(tag_text) if secrets else b""
        signed = f"{kid}.{payload}"
        if not any(hmac.compare_digest(_tag(secret, signed), tag) for secret in secrets):
            raise InvalidSignature("the token's signature does not match any configured secret")
        try:
            values = _b64decode(payload).decode("utf-8").split(SEPARATOR)
        except UnicodeDecodeError:
            raise InvalidSignature("the token's payload is not readable") from None
        if len(values) < 2 or values[0] != purpose or not (values[1] == "" or values[1].isdigit()):
            raise InvalidSignature(f"the token was not made for {purpose!r}")
        if values[1] and now_ms >= int(values[1]):
            raise ExpiredToken("the link has expired")
        return tuple(value or None for value in values[2:])


def _keyed(secret: str) -> hmac.HMAC:
    # HMAC keyed once: a copy per token skips hashing the key again (and OpenSSL 3's per-call
    # algorithm look-up), ~30% of a token's cost; decisions sign one token per banner shown.
    return hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)


def _tag(keyed: hmac.HMAC, signed: str) -> bytes:
    mac = keyed.copy()
    mac.update(signed.encode("utf-8"))
    return mac.digest()[:TAG_BYTES]


def parse_secrets(raw: str) -> tuple[str, ...]:
    """``REFRACT_SIGNING_SECRET``: comma-separated, the newest (signing) one first."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())
