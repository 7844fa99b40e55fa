"""Installs the routes that bring feedback about sent messages back: tracking and webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from api.payloads import EnvelopeFactory
from api.tracking import TrackingRoutes, campaign_name_from, tracking_links
from api.webhooks import WebhookRoutes

if TYPE_CHECKING:
    from api.server import Api


def install_feedback(router: web.UrlDispatcher, api: Api) -> None:
    worker = api.worker
    settings = worker.settings
    links = tracking_links(settings.signing_secrets, settings.links_url)
    now_ms = worker.clock_ms  # the worker's one clock (a clock file in tests and demos)
    TrackingRoutes(
        links,
        api._append,
        EnvelopeFactory("tracking", now_ms),
        now_ms,
        campaign_name_from(worker.definitions.latest),
    ).install(router)
    WebhookRoutes(
        links,
        api._append,
        EnvelopeFactory("webhook", now_ms),
        now_ms,
        worker.contacts,
        mailgun_webhook_key=settings.mailgun_webhook_key,
        twilio_auth_token=settings.twilio_auth_token,
    ).install(router)
