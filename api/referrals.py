"""Referral links: minting codes (``POST /v1/referrals``, admin) and following them (``GET /r/{code}``).

A code is signed (``engine.referrals``): the redirect needs no lookup but the campaign's current
definition. Following a link records a ``ReferralClick`` for the visitor (the ``refract_vid``
cookie, made here when missing), which starts the campaign's funnel (``triggers: [{referral:
true}]``), and sends the person to the campaign's landing page, or to its ``landing.redirect_url``
when it has no form. A tampered, expired or orphaned code gets a friendly page, never a trace.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from yarl import URL

from api.errors import ApiError
from api.landing import LandingRoutes
from api.pages import invalid_link_page, message_page
from api.payloads import EnvelopeFactory
from api.visitors import KnownCustomer, customer_of, keep_visitor, new_visitor_id, visitor_of
from engine.campaigns.definition import check_campaign_id
from engine.campaigns.model import Campaign
from engine.errors import RefractError, ValidationError
from engine.events import Envelope, ReferralClick
from engine.referrals import ReferralCode, ReferralCodes, check_source, click_event_id
from engine.segments.durations import duration_ms
from engine.signing import ExpiredToken, InvalidSignature, Signer
from streams.partitions import partition_for

if TYPE_CHECKING:
    from api.server import Api

log = structlog.get_logger(__name__)

Append = Callable[[Sequence[Envelope]], Awaitable[None]]
Campaigns = Callable[[], Mapping[str, Campaign]]
NO_CACHE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_BODY_FIELDS = {"campaign_id", "source", "expires_in"}
DAY_MS = 86_400_000
MAX_LIFETIME_MS = 10 * 366 * DAY_MS


@dataclass(slots=True, frozen=True)
class ReferralLink:
    code: str
    url: str
    expires_at_ms: int | None

    def json(self, campaign_id: str, source: str) -> dict[str, Any]:
        expires_at = (
            None
            if self.expires_at_ms is None
            else dt.datetime.fromtimestamp(self.expires_at_ms / 1000, dt.UTC).isoformat()
        )
        return {
            "code": self.code,
            "url": self.url,
            "campaign_id": campaign_id,
            "source": source,
            "expires_at": expires_at,
        }


def expired_referral_page() -> web.Response:
    return message_page(
        "This link has expired",
        "The offer this link led to is no longer available. Thank you for your interest.",
        status=404,
    )


def unavailable_page() -> web.Response:
    return message_page(
        "This offer is no longer available", "The page this link led to has been taken down.", status=404
    )


class ReferralRoutes:
    def __init__(
        self,
        codes: ReferralCodes,
        campaigns: Campaigns,
        append: Append,
        envelopes: EnvelopeFactory,
        now_ms: Callable[[], int],
        public_url: str,
        known: KnownCustomer = lambda customer_id: False,
    ) -> None:
        self.codes = codes
        self.campaigns = campaigns
        self.append = append
        self.envelopes = envelopes
        self.now_ms = now_ms
        self.public_url = public_url.rstrip("/")
        self.secure = self.public_url.startswith("https://")
        self.known = known

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_get("/r/{code}", self.follow)

    # --- minting ----------------------------------------------------------------------------

    def mint(self, body: object) -> tuple[ReferralLink, str, str]:
        """A link for ``{campaign_id, source, expires_in?}``; ValidationError or ApiError (404)."""
        if not isinstance(body, dict):
            raise ValidationError("body: expected a JSON object with campaign_id and source", field="body")
        unknown = sorted(set(body) - _BODY_FIELDS)
        if unknown:
            raise ValidationError(
                f"{unknown[0]}: unknown field; expected campaign_id, source, expires_in", field=unknown[0]
            )
        campaign_id = check_campaign_id(body.get("campaign_id"), "campaign_id")
        source = check_source(body.get("source"))
        expires_at_ms = None
        if body.get("expires_in") is not None:
            expires_in = body["expires_in"]
            try:
                if not isinstance(expires_in, str):
                    raise ValueError(f'expected a duration such as "30d", got {expires_in!r}')
                lifetime_ms = duration_ms(expires_in)
                if lifetime_ms > MAX_LIFETIME_MS:
                    raise ValueError(f"a link works for at most {MAX_LIFETIME_MS // DAY_MS} days")
                expires_at_ms = self.now_ms() + lifetime_ms
            except ValueError as exc:
                raise ValidationError(f"expires_in: {exc}", field="expires_in") from None
        campaign = self.campaigns().get(campaign_id)
        if campaign is None:
            raise ApiError(404, "campaign_not_found", f"no campaign with id {campaign_id!r}", "campaign_id")
        if campaign.landing is None:
            raise ValidationError(
                f"campaign_id: the campaign {campaign_id!r} has no landing section: add landing: with a"
                " form (fields) or a redirect_url, so a referral link has somewhere to go",
                field="campaign_id",
            )
        code = self.codes.mint(ReferralCode(campaign_id, source), expires_at_ms=expires_at_ms)
        return ReferralLink(code, f"{self.public_url}/r/{code}", expires_at_ms), campaign_id, source

    # --- following --------------------------------------------------------------------------

    async def follow(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info["code"]
        try:
            referral = self.codes.read(code, now_ms=self.now_ms())
        except ExpiredToken:
            return expired_referral_page()
        except InvalidSignature as exc:
            log.info("referral.invalid_code", error=exc.code)
            return invalid_link_page()
        campaign = self.campaigns().get(referral.campaign_id)
        if campaign is None or campaign.landing is None:
            log.info("referral.no_landing", campaign_id=referral.campaign_id)
            return unavailable_page()
        if campaign.landing.has_form:
            location = str(URL.build(path=f"/l/{campaign.campaign_id}", query={"r": code}))
        else:
            assert campaign.landing.redirect_url is not None
            location = str(URL(campaign.landing.redirect_url))
        visitor_id = visitor_of(request) or new_visitor_id()
        # Link checkers often look with HEAD: only a GET is a person following the link.
        if request.method == "GET":
            await self._record(request, code, referral, visitor_id)
        response = web.Response(status=302, headers={"Location": location, **NO_CACHE})
        keep_visitor(response, visitor_id, secure=self.secure)
        return response

    async def _record(self, request: web.Request, code: str, referral: ReferralCode, visitor_id: str) -> None:
        """Best effort, as a tracked click: the person goes on to the page even when Kafka is down."""
        customer = customer_of(request, visitor_id, self.known)
        now_ms = self.now_ms()
        click = ReferralClick(code, referral.campaign_id, referral.source, visitor_id)
        envelope = self.envelopes.envelope(customer, click, event_id=click_event_id(code, visitor_id, now_ms))
        try:
            await self.append([envelope])
        except RefractError as exc:
            log.warning("referral.not_recorded", campaign_id=referral.campaign_id, error=exc.code)
            return
        log.info("referral.clicked", campaign_id=referral.campaign_id, source=referral.source)


class ReferralAdmin:
    """``POST /v1/referrals`` (scope ``admin``)."""

    def __init__(self, api: Api, routes: ReferralRoutes) -> None:
        self.api = api
        self.routes = routes

    async def create(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        link, campaign_id, source = self.routes.mint(await self.api._json(request))
        return web.json_response(link.json(campaign_id, source), status=201)


def known_customer_from(api: Api) -> KnownCustomer:
    """Whether this worker holds a profile for ``customer_id``.

    Only the worker owning the customer's partition can tell; on another worker the claim counts
    as unknown and the visitor stays anonymous (a referral click is not worth a network hop).
    """
    worker = api.worker

    def known(customer_id: str) -> bool:
        partition = partition_for(customer_id, worker.settings.partitions)
        if partition not in worker.events_partitions() or not worker.is_ready()[0]:
            return False
        return worker.store.read(partition, customer_id.encode("utf-8")) is not None

    return known


def install_referrals(router: web.UrlDispatcher, api: Api) -> None:
    worker = api.worker
    settings = worker.settings
    codes = ReferralCodes(Signer(settings.signing_secrets))
    known = known_customer_from(api)
    envelopes = EnvelopeFactory("referral", worker.clock_ms)
    routes = ReferralRoutes(
        codes,
        lambda: worker.definitions.campaigns,
        api._append,
        envelopes,
        worker.clock_ms,
        settings.links_url,
        known,
    )
    routes.install(router)
    router.add_post("/v1/referrals", ReferralAdmin(api, routes).create)
    LandingRoutes(
        codes,
        lambda: worker.definitions.campaigns,
        api._append,
        envelopes,
        worker.clock_ms,
        secure=settings.links_url.startswith("https://"),
        known=known,
        clock_s=time.monotonic,
    ).install(router)
