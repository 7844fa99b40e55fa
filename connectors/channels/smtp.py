"""Email over SMTP with aiosmtplib: a small pool of authenticated connections (STARTTLS or TLS).

A message is multipart/alternative (text and HTML) with a Message-ID derived from the delivery
id, and the one-click unsubscribe headers (RFC 8058) when the content has an ``unsubscribe_url``.
Replies map to outcomes: 4xx (421 busy, 451, 452) may work later; 5xx do not (550/551/553 on a
recipient: the mailbox does not exist, a bounce).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
from io import BytesIO

import aiosmtplib
import structlog

from connectors.channels.base import SendReceipt, email_message_id
from connectors.channels.errors import InvalidAddress, ProviderError
from engine.channel_settings import SmtpSettings
from engine.deliveries import Delivery
from engine.events import Channel

log = structlog.get_logger(__name__)

# Recipient refusals that mean the mailbox does not exist (a hard bounce), not a policy refusal.
_BOUNCE_CODES = frozenset({550, 551, 553})


@dataclass(slots=True, frozen=True)
class Envelope:
    """A message ready for SMTP: the envelope sender, the recipient, the bytes, the Message-ID."""

    sender: str
    recipient: str
    data: bytes
    message_id: str


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _address(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8")


def build_message(delivery: Delivery, default_from: str | None) -> Envelope:
    """The MIME message of an email delivery (text and HTML parts as the content has them).

    Built with the compat32 classes and flattened once: the modern ``EmailMessage`` header
    machinery costs several times more per message, which shows at thousands per second.
    """
    content = delivery.content
    sender = content.get("from") or default_from
    if not sender:
        raise InvalidAddress(
            "the email has no sender: give the content a 'from' or set REFRACT_EMAIL_FROM",
            provider_code="no_sender",
        )
    if "@" not in delivery.address or any(c in delivery.address for c in " <>,\r\n"):
        raise InvalidAddress(f"{delivery.address!r} is not an email address", provider_code="invalid_address")
    text, html = content.get("text"), content.get("html")
    message: Message
    if text is not None and html is not None:
        message = MIMEMultipart("alternative")
        message.attach(MIMEText(text, "plain", "utf-8"))
        message.attach(MIMEText(html, "html", "utf-8"))
        # The generator's own random boundary costs a regular expression compiled per message;
        # "=_" never occurs in the base64 parts, and the delivery id makes it unique.
        boundary = "=_refract_" + hashlib.blake2b(delivery.delivery_id.encode(), digest_size=12).hexdigest()
        if boundary not in text and boundary not in html:
            message.set_boundary(boundary)
    elif html is not None:
        message = MIMEText(html, "html", "utf-8")
    else:
        message = MIMEText(text or "", "plain", "utf-8")
    message_id = email_message_id(delivery.delivery_id, parseaddr(sender)[1])
    message["From"] = _address(sender)
    message["To"] = delivery.address
    message["Subject"] = _header(content.get("subject", ""))
    message["Date"] = formatdate(delivery.created_at_ms / 1000 if delivery.created_at_ms else None)
    message["Message-ID"] = message_id
    message["X-Refract-Delivery-Id"] = delivery.delivery_id
    if content.get("reply_to"):
        message["Reply-To"] = _address(content["reply_to"])
    if content.get("unsubscribe_url"):
        message["List-Unsubscribe"] = f"<{content['unsubscribe_url']}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, maxheaderlen=78).flatten(message, linesep="\r\n")
    return Envelope(parseaddr(sender)[1], delivery.address, buffer.getvalue(), message_id)


def _error_of(exc: Exception) -> ProviderError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusal = exc.recipients[0] if exc.recipients else None
        if refusal is None:
            return ProviderError("the server refused the recipient", retriable=False, status="rejected")
        return _reply_error(refusal.code, refusal.message, recipient=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _reply_error(exc.code, exc.message, recipient=False)
    # Timeouts, refused or dropped connections: the relay may be back soon.
    return ProviderError(f"SMTP connection failed: {type(exc).__name__}: {exc}", retriable=True)


def _reply_error(code: int, text: str, *, recipient: bool) -> ProviderError:
    message = f"SMTP {code} {text}".strip()
    if 400 <= code < 500:
        return ProviderError(message, retriable=True, provider_code=str(code))
    if recipient and code in _BOUNCE_CODES:
        return ProviderError(message, retriable=False, status="bounced", provider_code=str(code))
    return ProviderError(message, retriable=False, status="rejected", provider_code=str(code))


class SmtpProvider:
    """Sends through one relay over up to ``pool_size`` connections kept open between messages."""

    channel: Channel = "email"
    name = "smtp"

    def __init__(self, settings: SmtpSettings, *, default_from: str | None = None) -> None:
        self._settings = settings
        self._default_from = default_from
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._tls_context: ssl.SSLContext | None = None
        if settings.security != "none":
            self._tls_context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            timeout=settings.timeout_s,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            tls_context=self._tls_context,
        )
        await client.connect()
        return client

    async def send(self, delivery: Delivery) -> SendReceipt:
        envelope = build_message(delivery, self._default_from)
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                await client.sendmail(envelope.sender, [envelope.recipient], envelope.data)
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                if client is not None:
                    client.close()
                raise _error_of(exc) from None
            self._idle.append(client)
        return SendReceipt(envelope.message_id)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
