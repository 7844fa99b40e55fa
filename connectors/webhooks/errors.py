"""Errors of provider webhooks: a request not signed by the provider, a body that is not theirs."""

from __future__ import annotations

from engine.errors import RefractError, ValidationError


class WebhookSignatureError(RefractError):
    """The request does not carry the provider's valid signature (or it is too old to trust)."""

    code = "invalid_webhook_signature"


class WebhookPayloadError(ValidationError):
    """The body is not what the provider documents."""

    code = "invalid_webhook_payload"
