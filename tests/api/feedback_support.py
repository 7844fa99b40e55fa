"""An aiohttp test server with the feedback routes and an in-memory log instead of Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.errors import errors_middleware
from api.payloads import EnvelopeFactory
from api.tracking import TrackingRoutes
from api.webhooks import WebhookRoutes
from engine.errors import InfrastructureError
from engine.events import Envelope
from engine.feedback import MessageContext
from engine.signing import Signer
from engine.tracking import TrackingLinks
from streams.contact_directory import ContactDirectory

BASE = "https://go.bank.example"
NOW_MS = 1_760_000_000_000
LINKS = TrackingLinks(Signer(["api-test-secret-0123456789abcdef"]), BASE)
EMAIL = MessageContext("dlv_0123456789abcdef01234567", "cust-1", "loan-q4", "email", "offers")
SMS = MessageContext("dlv_sms0000000000000000000000", "cust-2", "promo", "sms")
MAILGUN_KEY = "key-mailgun-webhook-signing-key"
TWILIO_TOKEN = "twilio-auth-token-0123"


@dataclass
class FakeLog:
    """What was appended; ``failing`` makes the next appends fail as an unreachable Kafka would."""

    envelopes: list[Envelope] = field(default_factory=list)
    failing: bool = False

    async def append(self, envelopes: Sequence[Envelope]) -> None:
        if self.failing:
            raise InfrastructureError("Kafka is unreachable")
        self.envelopes.extend(envelopes)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1].removesuffix(".gif")


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


@asynccontextmanager
async def feedback_server(
    contacts: ContactDirectory | None = None,
    *,
    mailgun_key: str | None = MAILGUN_KEY,
    twilio_token: str | None = TWILIO_TOKEN,
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakeLog]]:
    log = FakeLog()
    app = web.Application(middlewares=[errors_middleware])
    now = lambda: NOW_MS  # noqa: E731
    names = {"loan-q4": 'Préstamo <b>"10%"</b>'}
    TrackingRoutes(LINKS, log.append, EnvelopeFactory("tracking", now), now, names.get).install(app.router)
    WebhookRoutes(
        LINKS,
        log.append,
        EnvelopeFactory("webhook", now),
        now,
        contacts if contacts is not None else ContactDirectory("127.0.0.1:1", "unused"),
        mailgun_webhook_key=mailgun_key,
        twilio_auth_token=twilio_token,
    ).install(app.router)
    async with TestClient(TestServer(app)) as client:
        yield client, log
