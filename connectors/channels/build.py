"""Making the providers the settings configure, and picking the one for a delivery."""

from __future__ import annotations

from collections.abc import Iterator

from connectors.channels.apns import ApnsProvider
from connectors.channels.base import Provider
from connectors.channels.errors import ProviderNotConfigured
from connectors.channels.fcm import FcmProvider
from connectors.channels.mailgun import MailgunProvider
from connectors.channels.sms import GatewayProvider, TwilioProvider
from connectors.channels.smtp import SmtpProvider
from engine.channel_settings import ChannelSettings
from engine.deliveries import Delivery


class Providers:
    """The configured providers: one for email, one for SMS, FCM and/or APNs for push."""

    def __init__(
        self,
        email: Provider | None = None,
        sms: Provider | None = None,
        fcm: Provider | None = None,
        apns: Provider | None = None,
    ) -> None:
        self.email = email
        self.sms = sms
        self.fcm = fcm
        self.apns = apns

    def __iter__(self) -> Iterator[Provider]:
        return iter([p for p in (self.email, self.sms, self.fcm, self.apns) if p is not None])

    def __bool__(self) -> bool:
        return any(True for _ in self)

    def for_delivery(self, delivery: Delivery) -> Provider:
        """The provider for a delivery; push goes to APNs for iOS and to FCM otherwise."""
        provider: Provider | None
        if delivery.channel == "email":
            provider, hint = self.email, "set REFRACT_SMTP_HOST or REFRACT_MAILGUN_DOMAIN"
        elif delivery.channel == "sms":
            provider, hint = self.sms, "set REFRACT_TWILIO_ACCOUNT_SID or REFRACT_SMS_GATEWAY_URL"
        elif delivery.content.get("platform") == "ios":
            provider, hint = self.apns, "set REFRACT_APNS_KEY_FILE and the other APNs settings"
        else:
            provider, hint = self.fcm, "set REFRACT_FCM_SERVICE_ACCOUNT_FILE"
        if provider is None:
            platform = (
                f" ({delivery.content.get('platform') or 'android'})" if delivery.channel == "push" else ""
            )
            raise ProviderNotConfigured(f"no provider is configured for {delivery.channel}{platform}: {hint}")
        return provider

    async def close(self) -> None:
        for provider in self:
            await provider.close()


def build_providers(settings: ChannelSettings) -> Providers:
    email: Provider | None = None
    if settings.email == "smtp" and settings.smtp is not None:
        email = SmtpProvider(settings.smtp, default_from=settings.email_from)
    elif settings.email == "mailgun" and settings.mailgun is not None:
        email = MailgunProvider(settings.mailgun, default_from=settings.email_from)
    sms: Provider | None = None
    if settings.sms == "twilio" and settings.twilio is not None:
        sms = TwilioProvider(settings.twilio)
    elif settings.sms == "gateway" and settings.sms_gateway is not None:
        sms = GatewayProvider(settings.sms_gateway)
    return Providers(
        email=email,
        sms=sms,
        fcm=FcmProvider(settings.fcm) if settings.fcm is not None else None,
        apns=ApnsProvider(settings.apns) if settings.apns is not None else None,
    )


def rate_of(settings: ChannelSettings, provider: Provider) -> float:
    """The provider's configured rate limit in messages per second (0: none)."""
    section = {
        "smtp": settings.smtp,
        "mailgun": settings.mailgun,
        "twilio": settings.twilio,
        "gateway": settings.sms_gateway,
        "fcm": settings.fcm,
        "apns": settings.apns,
    }.get(provider.name)
    return float(getattr(section, "rate_per_s", 0.0) or 0.0)
