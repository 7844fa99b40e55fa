"""Tracking and unsubscribe URLs: the open pixel, click redirects and the unsubscribe page.

These are public: the signed token in the URL is the capability (``engine.tracking``), so there is
no API key, cookie or session, and nothing to forge across sites. Opens and clicks are recorded on
a best-effort basis: a person following a link is redirected even when Kafka is unreachable (the
miss is logged). An unsubscribe is only confirmed once Kafka has it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from api.pages import expired_link_page, html_text, invalid_link_page, page, try_again_page
from api.payloads import EnvelopeFactory
from engine.errors import RefractError
from engine.events import Envelope, Payload
from engine.feedback import UNSUBSCRIBE_SCOPES, MessageContext, UnsubscribeScope, opened, unsubscribed
from engine.feedback import clicked as clicked_interaction
from engine.signing import ExpiredToken, InvalidSignature, Signer
from engine.tracking import TrackingLinks

log = structlog.get_logger(__name__)

Append = Callable[[Sequence[Envelope]], Awaitable[None]]
CampaignName = Callable[[str], str | None]

# The smallest transparent GIF (1x1, one transparent colour).
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0", "Pragma": "no-cache"}
ONE_CLICK_FIELD = "List-Unsubscribe"
CHANNEL_NAMES = {"email": "email", "sms": "text (SMS)", "push": "push notification"}


async def read_form(request: web.Request) -> Mapping[str, object] | None:
    """The fields of a form body, or None when it cannot be read as one (say, multipart without
    a boundary, or bytes that are not UTF-8): the caller refuses it instead of crashing."""
    try:
        return await request.post()
    except (ValueError, HttpProcessingError):  # aiohttp's answers to a malformed body
        return None


class TrackingRoutes:
    def __init__(
        self,
        links: TrackingLinks,
        append: Append,
        envelopes: EnvelopeFactory,
        now_ms: Callable[[], int],
        campaign_name: CampaignName = lambda campaign_id: None,
    ) -> None:
        self.links = links
        self.append = append
        self.envelopes = envelopes
        self.now_ms = now_ms
        self.campaign_name = campaign_name

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_get("/t/o/{token}.gif", self.open_pixel)
        router.add_get("/t/c/{token}", self.click)
        router.add_get("/u/{token}", self.unsubscribe_page)
        router.add_post("/u/{token}", self.unsubscribe)

    async def _record(self, customer_id: str, payloads: Sequence[Payload]) -> None:
        await self.append([self.envelopes.envelope(customer_id, payload) for payload in payloads])

    async def _record_best_effort(self, what: str, context: MessageContext, payload: Payload) -> None:
        try:
            await self._record(context.customer_id, [payload])
        except RefractError as exc:
            log.warning("tracking.not_recorded", kind=what, delivery_id=context.delivery_id, error=exc.code)

    # --- opens and clicks ---------------------------------------------------------------------

    async def open_pixel(self, request: web.Request) -> web.Response:
        try:
            context = self.links.read_open(request.match_info["token"], now_ms=self.now_ms())
        except (InvalidSignature, ExpiredToken) as exc:
            log.info("tracking.invalid_token", kind="open", error=exc.code)
            # Still an image: a mail client shows nothing broken.
            return web.Response(body=PIXEL_GIF, status=404, content_type="image/gif", headers=NO_CACHE)
        if request.method == "GET":
            await self._record_best_effort("open", context, opened(context))
        return web.Response(body=PIXEL_GIF, content_type="image/gif", headers=NO_CACHE)

    async def click(self, request: web.Request) -> web.Response:
        try:
            target = self.links.read_click(request.match_info["token"], now_ms=self.now_ms())
            location = str(URL(target.url))  # percent-encodes what a header cannot carry
        except ExpiredToken:
            return expired_link_page()
        except (InvalidSignature, ValueError) as exc:
            log.info("tracking.invalid_token", kind="click", error=getattr(exc, "code", "bad_url"))
            return invalid_link_page()
        # Link scanners often check with HEAD: only a GET is a person following the link.
        if request.method == "GET":
            payload = clicked_interaction(target.context, target.url)
            await self._record_best_effort("click", target.context, payload)
        return web.Response(
            status=302, headers={"Location": location, "Referrer-Policy": "no-referrer", **NO_CACHE}
        )

    # --- unsubscribe ----------------------------------------------------------------------------

    def _choices(self, context: MessageContext) -> dict[UnsubscribeScope, str]:
        campaign = self.campaign_name(context.campaign_id) or context.campaign_id
        choices: dict[UnsubscribeScope, str] = {"campaign": f"Messages about “{campaign}”"}
        if context.category:
            choices["category"] = f"All messages about {context.category}"
        choices["channel"] = f"All {CHANNEL_NAMES.get(context.channel, context.channel)} messages from us"
        return choices

    def _form(self, request: web.Request, context: MessageContext, selected: UnsubscribeScope) -> str:
        options = []
        for scope, label in self._choices(context).items():
            checked = " checked" if scope == selected else ""
            radio = f'<input type="radio" name="scope" value="{scope}"{checked}>'
            options.append(f"<label>{radio} {html_text(label)}</label>")
        return (
            f'<form method="post" action="{html_text(request.path)}">\n'
            "<fieldset>\n<legend>Stop receiving:</legend>\n" + "\n".join(options) + "\n</fieldset>\n"
            '<button type="submit">Unsubscribe</button>\n</form>'
        )

    async def unsubscribe_page(self, request: web.Request) -> web.Response:
        try:
            target = self.links.read_unsubscribe(request.match_info["token"], now_ms=self.now_ms())
        except (InvalidSignature, ExpiredToken):
            return invalid_link_page()
        body = (
            "<p>Choose what you no longer want to receive. Nothing changes until you press the button.</p>\n"
            + self._form(request, target.context, target.scope)
        )
        return page("Unsubscribe", body)

    async def unsubscribe(self, request: web.Request) -> web.Response:
        try:
            target = self.links.read_unsubscribe(request.match_info["token"], now_ms=self.now_ms())
        except (InvalidSignature, ExpiredToken):
            return invalid_link_page()
        form = await read_form(request)
        if form is None:
            scope: str = ""  # an unreadable body chooses nothing: the form again
        elif form.get(ONE_CLICK_FIELD) == "One-Click":  # RFC 8058, from the mail client
            scope = target.scope
        else:
            scope = str(form.get("scope") or target.scope)
        choices = self._choices(target.context)
        if scope not in UNSUBSCRIBE_SCOPES or scope not in choices:
            body = "<p>Please choose one of the options.</p>\n" + self._form(
                request, target.context, target.scope
            )
            return page("Unsubscribe", body, status=400)
        chosen: UnsubscribeScope = scope  # type: ignore[assignment]
        try:
            await self._record(target.context.customer_id, unsubscribed(target.context, chosen))
        except RefractError as exc:
            log.error(
                "tracking.unsubscribe_not_recorded", delivery_id=target.context.delivery_id, error=exc.code
            )
            return try_again_page()
        log.info("tracking.unsubscribed", delivery_id=target.context.delivery_id, scope=chosen)
        label = choices[chosen][0].lower() + choices[chosen][1:]
        return page("You are unsubscribed", f"<p>You will no longer receive {html_text(label)}.</p>")


def tracking_links(signing_secrets: Sequence[str], links_url: str) -> TrackingLinks:
    return TrackingLinks(Signer(signing_secrets), links_url)


def campaign_name_from(latest: Callable[[str, str], object | None]) -> CampaignName:
    """The ``name`` in a campaign's definition body, when there is one (else the page shows the id)."""

    def name(campaign_id: str) -> str | None:
        record = latest("campaign", campaign_id)
        body = getattr(record, "body", None)
        if record is None or getattr(record, "deleted", False) or not isinstance(body, str):
            return None
        try:
            value = orjson.loads(body).get("name")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return value if isinstance(value, str) and value else None

    return name
