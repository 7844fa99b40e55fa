"""The outbound channels' settings: which provider sends each channel, and how fast and how often.

Part of the one ``Settings`` (its ``channels`` field). A provider is enabled by configuring it;
secrets (passwords, API keys, tokens) come from the environment only and never show in a repr.
``ops.channel_config`` maps the REFRACT_* variables and the settings file onto these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ConfigurationError
from engine.events import Channel
from engine.retry import RetryPolicy

SMTP_SECURITY = ("starttls", "tls", "none")
MAILGUN_REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
APNS_ENVIRONMENTS = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}
EMAIL_PROVIDERS = ("smtp", "mailgun")
SMS_PROVIDERS = ("twilio", "gateway")
DEFAULT_GATEWAY_BODY = '{"to": "{to}", "text": "{text}", "reference": "{delivery_id}"}'


def _check_rate(name: str, rate_per_s: float) -> None:
    if rate_per_s < 0:
        raise ConfigurationError(f"{name} rate_per_s must be 0 (no limit) or positive, got {rate_per_s}")


@dataclass(slots=True, frozen=True)
class SmtpSettings:
    """An SMTP relay. ``security``: starttls (port 587), tls (implicit, port 465) or none."""

    host: str
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    pool_size: int = 4
    timeout_s: float = 30.0
    ca_file: Path | None = None  # a private CA to trust (the relay's certificate is verified)
    rate_per_s: float = 0.0

    def __post_init__(self) -> None:
        if self.security not in SMTP_SECURITY:
            raise ConfigurationError(
                f"smtp security {self.security!r} must be one of {', '.join(SMTP_SECURITY)}"
                " (REFRACT_SMTP_SECURITY)"
            )
        if self.pool_size < 1:
            raise ConfigurationError("smtp pool_size must be at least 1 (REFRACT_SMTP_POOL_SIZE)")
        if (self.username is None) != (self.password is None):
            raise ConfigurationError("set both REFRACT_SMTP_USERNAME and REFRACT_SMTP_PASSWORD, or neither")
        _check_rate("smtp", self.rate_per_s)


@dataclass(slots=True, frozen=True)
class MailgunSettings:
    """Mailgun's HTTP messages API for ``domain``; ``region`` us or eu picks the API host."""

    domain: str
    api_key: str = field(default="", repr=False)
    region: str = "us"
    base_url: str | None = None  # instead of the region's host (a test server, a proxy)
    timeout_s: float = 30.0
    rate_per_s: float = 0.0

    def __post_init__(self) -> None:
        if self.region not in MAILGUN_REGIONS:
            raise ConfigurationError(
                f"mailgun region {self.region!r} must be us or eu (REFRACT_MAILGUN_REGION)"
            )
        if not self.api_key:
            raise ConfigurationError("mailgun needs an API key: set REFRACT_MAILGUN_API_KEY")
        _check_rate("mailgun", self.rate_per_s)

    @property
    def url(self) -> str:
        return (self.base_url or MAILGUN_REGIONS[self.region]).rstrip("/")


@dataclass(slots=True, frozen=True)
class TwilioSettings:
    """Twilio's Messages API (or a service with the same shape at ``base_url``)."""

    account_sid: str
    auth_token: str = field(default="", repr=False)
    from_number: str = ""
    status_callback_url: str | None = None
    base_url: str = "https://api.twilio.com"
    timeout_s: float = 30.0
    rate_per_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.auth_token:
            raise ConfigurationError("twilio needs its auth token: set REFRACT_TWILIO_AUTH_TOKEN")
        if not self.from_number:
            raise ConfigurationError("twilio needs a sender number: set REFRACT_TWILIO_FROM_NUMBER")
        _check_rate("twilio", self.rate_per_s)


@dataclass(slots=True, frozen=True)
class SmsGatewaySettings:
    """Any HTTP SMS gateway: ``body_template`` is JSON with {to}, {text}, {sender}, {delivery_id}.

    ``message_id_field`` names the field of the gateway's JSON answer holding its message id.
    """

    url: str
    method: str = "POST"
    body_template: str = DEFAULT_GATEWAY_BODY
    authorization: str | None = field(default=None, repr=False)  # the Authorization header value
    message_id_field: str = "id"
    timeout_s: float = 30.0
    rate_per_s: float = 0.0

    def __post_init__(self) -> None:
        if self.method.upper() not in ("POST", "PUT"):
            raise ConfigurationError("sms_gateway method must be POST or PUT (REFRACT_SMS_GATEWAY_METHOD)")
        _check_rate("sms_gateway", self.rate_per_s)


@dataclass(slots=True, frozen=True)
class FcmSettings:
    """Firebase Cloud Messaging HTTP v1, authenticated by a service-account key file (JSON)."""

    service_account_file: Path
    base_url: str = "https://fcm.googleapis.com"
    token_uri: str | None = None  # default: the key file's token_uri
    timeout_s: float = 30.0
    rate_per_s: float = 0.0

    def __post_init__(self) -> None:
        _check_rate("fcm", self.rate_per_s)


@dataclass(slots=True, frozen=True)
class ApnsSettings:
    """Apple Push Notification service with token-based auth (a .p8 key, its key id, the team id)."""

    key_file: Path
    key_id: str = ""
    team_id: str = ""
    topic: str = ""  # the app's bundle id
    environment: str = "production"
    base_url: str | None = None  # instead of the environment's host
    ca_file: Path | None = None
    timeout_s: float = 30.0
    rate_per_s: float = 0.0

    def __post_init__(self) -> None:
        if self.environment not in APNS_ENVIRONMENTS:
            raise ConfigurationError(
                "apns environment must be production or sandbox (REFRACT_APNS_ENVIRONMENT)"
            )
        for name in ("key_id", "team_id", "topic"):
            if not getattr(self, name):
                raise ConfigurationError(f"apns needs {name}: set REFRACT_APNS_{name.upper()}")
        _check_rate("apns", self.rate_per_s)

    @property
    def url(self) -> str:
        return (self.base_url or APNS_ENVIRONMENTS[self.environment]).rstrip("/")


@dataclass(slots=True, frozen=True)
class ChannelSettings:
    """Providers per channel, and the dispatchers' concurrency, retries and backlog."""

    email_provider: str | None = None  # smtp or mailgun; default: the one configured
    sms_provider: str | None = None  # twilio or gateway; default: the one configured
    email_from: str | None = None  # the From of emails whose content names none
    smtp: SmtpSettings | None = None
    mailgun: MailgunSettings | None = None
    twilio: TwilioSettings | None = None
    sms_gateway: SmsGatewaySettings | None = None
    fcm: FcmSettings | None = None
    apns: ApnsSettings | None = None
    email_concurrency: int = 16
    sms_concurrency: int = 16
    push_concurrency: int = 32
    max_pending: int = 5000  # deliveries taken from Kafka and not finished (sending or waiting to retry)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        for name in ("email_concurrency", "sms_concurrency", "push_concurrency", "max_pending"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        self._pick("email", self.email_provider, {"smtp": self.smtp, "mailgun": self.mailgun})
        self._pick("sms", self.sms_provider, {"twilio": self.twilio, "gateway": self.sms_gateway})

    @staticmethod
    def _pick(channel: str, chosen: str | None, configured: dict[str, object]) -> str | None:
        present = [name for name, section in configured.items() if section is not None]
        if chosen is None:
            if len(present) > 1:
                raise ConfigurationError(
                    f"both {' and '.join(present)} are configured for {channel}:"
                    f" choose one with REFRACT_{channel.upper()}_PROVIDER"
                )
            return present[0] if present else None
        if chosen not in configured:
            raise ConfigurationError(
                f"{channel}_provider {chosen!r} must be one of {', '.join(configured)}"
                f" (REFRACT_{channel.upper()}_PROVIDER)"
            )
        if configured[chosen] is None:
            raise ConfigurationError(f"{channel}_provider is {chosen} but {chosen} is not configured")
        return chosen

    @property
    def email(self) -> str | None:
        """The email provider in use, if any."""
        return self._pick("email", self.email_provider, {"smtp": self.smtp, "mailgun": self.mailgun})

    @property
    def sms(self) -> str | None:
        return self._pick("sms", self.sms_provider, {"twilio": self.twilio, "gateway": self.sms_gateway})

    def enabled_channels(self) -> tuple[Channel, ...]:
        channels: list[Channel] = []
        if self.email:
            channels.append("email")
        if self.sms:
            channels.append("sms")
        if self.fcm is not None or self.apns is not None:
            channels.append("push")
        return tuple(channels)

    def concurrency(self, channel: Channel) -> int:
        limits: dict[Channel, int] = {
            "email": self.email_concurrency,
            "sms": self.sms_concurrency,
            "push": self.push_concurrency,
        }
        return limits[channel]
