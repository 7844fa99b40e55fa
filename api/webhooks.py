"""Provider webhooks: Mailgun events, Twilio delivery receipts and inbound STOP/START replies.

Each request is checked against the provider's signature before anything is read from it; the
parsing is in ``connectors.webhooks``. A provider gets a 2xx for anything it sent correctly, even
an event Refract has no use for, so that it does not retry it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import structlog
from aiohttp import web

from api.errors import ApiError
from api.payloads import EnvelopeFactory
from api.tracking import Append, read_form
from connectors.webhooks.errors import WebhookSignatureError
from connectors.webhooks.mailgun import parse_mailgun, verify_mailgun
from connectors.webhooks.parsed import ParsedWebhook
from connectors.webhooks.twilio import inbound_consent, parse_inbound, parse_status, verify_twilio
from engine.feedback import Feedback
from engine.signing import ExpiredToken, InvalidSignature
from engine.tracking import TrackingLinks
from streams.contact_directory import ContactDirectory

log = structlog.get_logger(__name__)

# An empty TwiML answer: Twilio sends no reply of its own (its opt-out handling still does).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
CONTACTS_WAIT_S = 10.0
# How long a reply from an unknown number waits for the directory to read what was just written.
CONTACTS_CATCH_UP_S = 2.0


def _not_configured(variable: str) -> ApiError:
    return ApiError(
        503, "webhook_not_configured", f"this webhook is not set up: set {variable} on the workers"
    )


def _twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


def redacted(address: str) -> str:
    """A stable stand-in for an address in logs: the same sender gives the same value."""
    return hashlib.sha256(address.encode("utf-8")).hexdigest()[:12]


class WebhookRoutes:
    def __init__(
        self,
        links: TrackingLinks,
        append: Append,
        envelopes: EnvelopeFactory,
        now_ms: Callable[[], int],
        contacts: ContactDirectory,
        *,
        mailgun_webhook_key: str | None,
        twilio_auth_token: str | None,
    ) -> None:
        self.links = links
        self.append = append
        self.envelopes = envelopes
        self.now_ms = now_ms
        self.contacts = contacts
        self.mailgun_webhook_key = mailgun_webhook_key
        self.twilio_auth_token = twilio_auth_token

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_post("/webhooks/mailgun", self.mailgun)
        router.add_post("/webhooks/twilio/status/{token}", self.twilio_status)
        router.add_post("/webhooks/twilio/inbound", self.twilio_inbound)

    async def _append(self, feedback: Sequence[Feedback]) -> None:
        await self.append(
            [
                self.envelopes.envelope(
                    f.customer_id, f.payload, event_id=f.event_id, occurred_at_ms=f.occurred_at_ms
                )
                for f in feedback
            ]
        )

    async def _apply(self, provider: str, parsed: ParsedWebhook) -> int:
        if parsed.feedback:
            await self._append(parsed.feedback)
        else:
            log.info("webhook.ignored", provider=provider, reason=parsed.ignored)
        return len(parsed.feedback)

    # --- Mailgun ------------------------------------------------------------------------------

    async def mailgun(self, request: web.Request) -> web.Response:
        if not self.mailgun_webhook_key:
            raise _not_configured("REFRACT_MAILGUN_WEBHOOK_KEY")
        try:
            body: Any = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise ApiError(400, "invalid_json", "the body is not Mailgun's webhook JSON") from None
        try:
            verify_mailgun(body, self.mailgun_webhook_key, now_ms=self.now_ms())
        except WebhookSignatureError as exc:
            log.warning("webhook.rejected", provider="mailgun", reason=exc.message)
            raise ApiError(401, exc.code, exc.message) from None
        accepted = await self._apply("mailgun", parse_mailgun(body))
        return web.json_response({"accepted": accepted})

    # --- Twilio -------------------------------------------------------------------------------

    async def _twilio_params(self, request: web.Request) -> list[tuple[str, str]]:
        if not self.twilio_auth_token:
            raise _not_configured("REFRACT_TWILIO_AUTH_TOKEN")
        form = await read_form(request)
        if form is None:
            raise ApiError(
                400, "invalid_input", "the body is not a form: Twilio posts application/x-www-form-urlencoded"
            )
        params = [(name, value) for name, value in form.items() if isinstance(value, str)]
        # Twilio signs the URL it was given, which is the public one, not what a proxy forwarded.
        url = self.links.base + request.raw_path
        try:
            verify_twilio(self.twilio_auth_token, url, params, request.headers.get("X-Twilio-Signature"))
        except WebhookSignatureError as exc:
            log.warning("webhook.rejected", provider="twilio", reason=exc.message)
            raise ApiError(401, exc.code, exc.message) from None
        return params

    async def twilio_status(self, request: web.Request) -> web.Response:
        params = await self._twilio_params(request)
        try:
            context = self.links.read_sms_status(request.match_info["token"], now_ms=self.now_ms())
        except (InvalidSignature, ExpiredToken) as exc:
            raise ApiError(
                404, "unknown_callback", "this status callback URL was not made by Refract"
            ) from exc
        await self._apply("twilio", parse_status(context, params))
        return web.Response(status=204)

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        inbound = parse_inbound(await self._twilio_params(request))
        if inbound.keyword is None:
            return _twiml()  # a reply that is not STOP/START: nothing for Refract to do
        customer_id = await self._customer_for_phone(inbound.sender)
        if customer_id is None:
            log.warning(
                "webhook.unknown_sender",
                provider="twilio",
                keyword=inbound.keyword,
                sender=redacted(inbound.sender),
            )
            return _twiml()
        await self._append([inbound_consent(customer_id, inbound)])
        log.info("webhook.sms_consent", keyword=inbound.keyword, customer_id=customer_id)
        return _twiml()

    async def _customer_for_phone(self, phone: str) -> str | None:
        # Right after a worker starts the directory may still be loading: a STOP must not be lost.
        deadline = time.monotonic() + CONTACTS_WAIT_S
        while not self.contacts.loaded.is_set():
            if time.monotonic() >= deadline:
                raise ApiError(503, "not_ready", "the contact directory is still loading; retry shortly")
            await asyncio.sleep(0.05)
        customer_id = self.contacts.customer_for_phone(phone)
        if customer_id is None and await self.contacts.catch_up(CONTACTS_CATCH_UP_S):
            # The number may have been added a moment ago: look again once the directory holds
            # everything written to the contacts topic before this reply came in.
            customer_id = self.contacts.customer_for_phone(phone)
        return customer_id
