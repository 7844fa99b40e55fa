"""What can go wrong sending a message, as the dispatcher needs to know it: retry, or which outcome."""

from __future__ import annotations

from engine.errors import RefractError
from engine.events import DeliveryStatus


class ChannelError(RefractError):
    """Root of the outbound channels' errors."""

    code = "channel_error"


class ProviderError(ChannelError):
    """The provider did not take the message.

    ``retriable``: the same request may succeed later (timeouts, 429, 5xx, SMTP 4xx), after at
    least ``retry_after_s`` when the provider said so. Otherwise ``status`` is the outcome to
    record: ``bounced`` (the address does not exist), ``rejected`` (the provider refused this
    message or address) or ``failed``. ``provider_code`` is the provider's own code (SMTP reply
    code, Twilio error code, FCM errorCode, APNs reason) for logs and dead letters.
    """

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        status: DeliveryStatus = "failed",
        retry_after_s: float | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status: DeliveryStatus = status
        self.retry_after_s = retry_after_s
        self.provider_code = provider_code

    @property
    def reason(self) -> str:
        """A short reason for results and dead letters: the provider's code and the message."""
        return f"{self.provider_code}: {self.message}" if self.provider_code else self.message


class InvalidAddress(ProviderError):
    """The address cannot be sent to (not an E.164 number, a malformed email): never retried."""

    code = "invalid_address"

    def __init__(
        self, message: str, *, provider_code: str | None = None, status: DeliveryStatus = "rejected"
    ):
        super().__init__(message, retriable=False, status=status, provider_code=provider_code)


class InvalidPushToken(ProviderError):
    """The push service says the token is unregistered or invalid: the profile should drop it."""

    code = "invalid_push_token"

    def __init__(self, message: str, *, provider_code: str | None = None) -> None:
        super().__init__(message, retriable=False, status="bounced", provider_code=provider_code)


class ProviderNotConfigured(ChannelError):
    """No provider is configured for a delivery's channel (or push platform)."""

    code = "provider_not_configured"
