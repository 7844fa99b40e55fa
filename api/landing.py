"""Landing pages: ``GET /l/{campaign_id}`` shows a campaign's form, ``POST`` records the lead.

The form comes from the campaign's ``landing:`` section (``engine.campaigns.landing``), is rendered
here with every value escaped, and is checked again on the server. Three guards stand in front of
the log:

- **CSRF**: the form holds a signed token naming the visitor it was shown to (the ``refract_vid``
  cookie) and the campaign; a POST is accepted only when the token is genuine, recent, and names
  the visitor of the cookie that came with it (a signed double submit: another site can neither read
  the cookie nor sign a token for it, and a ``SameSite=Lax`` cookie is not sent with its posts).
- **Rate limit** per client address: a token bucket (``POSTS_PER_MINUTE``, in this process), 429.
- **Honeypot**: a field people do not see (hidden from screen readers too); a bot that fills it is
  told "thank you" and nothing is recorded.

A valid lead appends, to the visitor's customer, its contacts, its other fields as attributes, an
opt-in per checked consent box and a ``lead`` interaction, with ids derived from the form's token:
submitting the same form twice records it once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from liquid.exceptions import LiquidError
from yarl import URL

from api.pages import html_text, message_page, page, try_again_page
from api.payloads import EnvelopeFactory
from api.rate_limits import TokenBucket, retry_after_s
from api.visitors import KnownCustomer, customer_of, keep_visitor, new_visitor_id, visitor_of
from engine.campaigns.landing import (
    HONEYPOT_FIELD,
    FormCheck,
    FormField,
    LandingPage,
    check_submission,
    intro_variables,
    lead_payloads,
)
from engine.campaigns.model import Campaign
from engine.errors import RefractError
from engine.events import Envelope
from engine.referrals import ReferralCode, ReferralCodes, lead_id
from engine.signing import ExpiredToken, InvalidSignature

log = structlog.get_logger(__name__)

Append = Callable[[Sequence[Envelope]], Awaitable[None]]
Campaigns = Callable[[], Mapping[str, Campaign]]
POSTS_PER_MINUTE = 5
MAX_TRACKED_ADDRESSES = 50_000
TOKEN_FIELD = "csrf_token"
CODE_FIELD = "r"
_ERROR_STYLE = "color:#b00020;margin:.2rem 0 .8rem"
# Off-screen rather than display:none, which some bots detect; aria-hidden keeps it from screen readers.
_HONEYPOT_STYLE = "position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden"
_INPUT_STYLE = "font-size:1rem;padding:.4rem;width:100%;max-width:24rem;box-sizing:border-box"
_INPUT_TYPES = {"text": "text", "email": "email", "phone": "tel"}
_AUTOCOMPLETE = {"email": "email", "phone": "tel"}


class AddressLimiter:
    """One token bucket per client address; the least recently seen are forgotten past a bound."""

    def __init__(self, clock_s: Callable[[], float], per_minute: int = POSTS_PER_MINUTE) -> None:
        self.clock_s = clock_s
        self.per_minute = per_minute
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, address: str) -> float:
        """0 when ``address`` may post now, else the seconds until it may."""
        now_s = self.clock_s()
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(
                self.per_minute / 60.0, float(self.per_minute), float(self.per_minute), now_s
            )
        self._buckets[address] = bucket
        if len(self._buckets) > MAX_TRACKED_ADDRESSES:
            self._buckets.popitem(last=False)
        return bucket.take(now_s)


def _field_id(name: str) -> str:
    return f"f-{name}"


def _error(item: FormField, errors: Mapping[str, str]) -> tuple[str, str]:
    """(the attributes an input with an error carries, the message paragraph)."""
    message = errors.get(item.name)
    if message is None:
        return "", ""
    error_id = f"{_field_id(item.name)}-error"
    attributes = f' aria-invalid="true" aria-describedby="{error_id}"'
    return attributes, f'<p id="{error_id}" style="{_ERROR_STYLE}">{html_text(message)}</p>'


def _input(item: FormField, value: str, errors: Mapping[str, str]) -> str:
    field_id = _field_id(item.name)
    invalid, message = _error(item, errors)
    required = ' required aria-required="true"' if item.required else ""
    marker = ' <span aria-hidden="true">*</span>' if item.required else ""
    name = html_text(item.name)
    if item.type == "checkbox":
        checked = " checked" if value.lower() in ("on", "yes", "true", "1") else ""
        return (
            f'<label for="{field_id}"><input type="checkbox" id="{field_id}" name="{name}" value="yes"'
            f"{checked}{required}{invalid}> {html_text(item.label)}{marker}</label>\n{message}"
        )
    label = f'<label for="{field_id}">{html_text(item.label)}{marker}</label>\n'
    if item.type == "select":
        options = ['<option value="">Choose…</option>']
        for option in item.options:
            selected = " selected" if option == value else ""
            options.append(f'<option value="{html_text(option)}"{selected}>{html_text(option)}</option>')
        return (
            f'{label}<select id="{field_id}" name="{name}" style="{_INPUT_STYLE}"{required}{invalid}>'
            + "".join(options)
            + f"</select>\n{message}"
        )
    autocomplete = _AUTOCOMPLETE.get(item.type)
    extra = f' autocomplete="{autocomplete}"' if autocomplete else ""
    return (
        f'{label}<input type="{_INPUT_TYPES[item.type]}" id="{field_id}" name="{name}"'
        f' value="{html_text(value)}"{extra}{required}{invalid} style="{_INPUT_STYLE}">\n{message}'
    )


def render_form(
    landing: LandingPage,
    action: str,
    token: str,
    code: str | None,
    intro: str | None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """The body of a landing page: intro, error summary, the form (every value escaped)."""
    values = values or {}
    errors = errors or {}
    parts: list[str] = []
    if intro:
        parts.extend(
            f"<p>{html_text(paragraph.strip())}</p>" for paragraph in intro.split("\n\n") if paragraph.strip()
        )
    if errors:
        items = "".join(
            f'<li><a href="#{_field_id(item.name)}">{html_text(item.label)}:'
            f" {html_text(errors[item.name])}</a></li>"
            for item in landing.fields
            if item.name in errors
        )
        parts.append(
            f'<div role="alert" style="{_ERROR_STYLE}"><p>Please correct the fields below.</p>'
            f"<ul>{items}</ul></div>"
        )
    form = [f'<form method="post" action="{html_text(action)}" novalidate>']
    form.append(f'<input type="hidden" name="{TOKEN_FIELD}" value="{html_text(token)}">')
    if code:
        form.append(f'<input type="hidden" name="{CODE_FIELD}" value="{html_text(code)}">')
    form.append(
        f'<div style="{_HONEYPOT_STYLE}" aria-hidden="true"><label for="f-{HONEYPOT_FIELD}">Leave this'
        f' field empty</label><input type="text" id="f-{HONEYPOT_FIELD}" name="{HONEYPOT_FIELD}" value=""'
        ' tabindex="-1" autocomplete="off"></div>'
    )
    form.extend(_input(item, values.get(item.name, ""), errors) for item in landing.fields)
    if any(item.required for item in landing.fields):
        form.append('<p><span aria-hidden="true">*</span> required</p>')
    form.append(f'<button type="submit">{html_text(landing.submit_label)}</button>\n</form>')
    parts.append("\n".join(form))
    return "\n".join(parts)


def _form_values(posted: Mapping[str, object]) -> dict[str, str]:
    """The posted text fields (the first of each name); files and bytes are ignored."""
    values: dict[str, str] = {}
    for name, value in posted.items():
        if isinstance(value, str) and name not in values:
            values[name] = value
    return values


def _client_address(request: web.Request) -> str:
    # The peer address: X-Forwarded-For is for a proxy to set, and anyone can send it.
    return request.remote or "unknown"


class LandingRoutes:
    def __init__(
        self,
        codes: ReferralCodes,
        campaigns: Campaigns,
        append: Append,
        envelopes: EnvelopeFactory,
        now_ms: Callable[[], int],
        *,
        secure: bool,
        known: KnownCustomer,
        clock_s: Callable[[], float],
    ) -> None:
        self.codes = codes
        self.campaigns = campaigns
        self.append = append
        self.envelopes = envelopes
        self.now_ms = now_ms
        self.secure = secure
        self.known = known
        self.limiter = AddressLimiter(clock_s)

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_get("/l/{campaign_id}", self.show)
        router.add_post("/l/{campaign_id}", self.submit)

    def _landing(self, request: web.Request) -> tuple[Campaign, LandingPage] | None:
        campaign = self.campaigns().get(request.match_info["campaign_id"])
        if campaign is None or campaign.landing is None or not campaign.landing.has_form:
            return None
        return campaign, campaign.landing

    def _referral(self, code: str | None, campaign_id: str) -> ReferralCode | None:
        """The referral that led here, when the code is genuine and for this campaign (else none)."""
        if not code:
            return None
        try:
            referral = self.codes.read(code, now_ms=self.now_ms())
        except (InvalidSignature, ExpiredToken):
            return None
        return referral if referral.campaign_id == campaign_id else None

    def _intro(
        self, campaign: Campaign, landing: LandingPage, referral: ReferralCode | None, code: str | None
    ) -> str | None:
        if landing.intro is None:
            return None
        variables = intro_variables(
            campaign.campaign_id,
            campaign.name,
            referral.source if referral else None,
            code if referral else None,
        )
        try:
            return str(landing.intro.render(**variables))
        except (LiquidError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # A broken intro (a variable it lacks) must not take the form down: it is left out.
            log.warning("landing.intro_failed", campaign_id=campaign.campaign_id, error=type(exc).__name__)
            return None

    def _page(
        self,
        campaign: Campaign,
        landing: LandingPage,
        visitor_id: str,
        code: str | None,
        *,
        token: str | None = None,
        check: FormCheck | None = None,
        status: int = 200,
    ) -> web.Response:
        referral = self._referral(code, campaign.campaign_id)
        token = token or self.codes.form_token(visitor_id, campaign.campaign_id, now_ms=self.now_ms())
        body = render_form(
            landing,
            f"/l/{campaign.campaign_id}",
            token,
            code if referral else None,
            self._intro(campaign, landing, referral, code),
            check.values if check else None,
            check.errors if check else None,
        )
        response = page(landing.title, body, status=status)
        keep_visitor(response, visitor_id, secure=self.secure)
        return response

    async def show(self, request: web.Request) -> web.Response:
        found = self._landing(request)
        if found is None:
            return _not_found_page()
        campaign, landing = found
        visitor_id = visitor_of(request) or new_visitor_id()
        return self._page(campaign, landing, visitor_id, request.query.get(CODE_FIELD))

    async def submit(self, request: web.Request) -> web.Response:
        found = self._landing(request)
        if found is None:
            return _not_found_page()
        campaign, landing = found
        wait_s = self.limiter.take(_client_address(request))
        if wait_s > 0:
            log.info("landing.rate_limited", campaign_id=campaign.campaign_id)
            response = message_page(
                "Too many attempts", "Please wait a minute before sending the form again.", status=429
            )
            response.headers["Retry-After"] = str(retry_after_s(wait_s))
            return response
        try:
            form = _form_values(await request.post())
        except (ValueError, HttpProcessingError):  # aiohttp's answers to a malformed body
            return message_page("This form could not be read", "Please send it again.", status=400)
        visitor_id = visitor_of(request)
        token = form.get(TOKEN_FIELD, "")
        code = form.get(CODE_FIELD) or None
        try:
            self.codes.read_form_token(token, visitor_id, campaign.campaign_id, now_ms=self.now_ms())
        except (InvalidSignature, ExpiredToken) as exc:
            log.info("landing.bad_form_token", campaign_id=campaign.campaign_id, error=exc.code)
            return _stale_form_page(campaign.campaign_id, code)
        assert visitor_id is not None  # the token named the cookie's visitor
        if form.get(HONEYPOT_FIELD):
            log.info("landing.honeypot", campaign_id=campaign.campaign_id)
            return _success(landing)
        check = check_submission(landing, form)
        if check.lead is None:
            return self._page(campaign, landing, visitor_id, code, token=token, check=check, status=400)
        referral = self._referral(code, campaign.campaign_id)
        data = {"source": referral.source, "code": code} if referral is not None and code else {}
        interaction_id = lead_id(token)
        customer = customer_of(request, visitor_id, self.known)
        payloads = lead_payloads(check.lead, campaign.campaign_id, interaction_id, data)
        envelopes = [
            self.envelopes.envelope(customer, payload, event_id=f"{interaction_id}-{i}")
            for i, payload in enumerate(payloads)
        ]
        try:
            await self.append(envelopes)
        except RefractError as exc:
            log.error("landing.lead_not_recorded", campaign_id=campaign.campaign_id, error=exc.code)
            return try_again_page()
        log.info("landing.lead", campaign_id=campaign.campaign_id, events=len(envelopes))
        return _success(landing)


def _success(landing: LandingPage) -> web.Response:
    if landing.redirect_url is not None:
        return web.Response(
            status=303, headers={"Location": str(URL(landing.redirect_url)), "Cache-Control": "no-store"}
        )
    return page(landing.title, f'<p role="status">{html_text(landing.success_message)}</p>')


def _not_found_page() -> web.Response:
    return message_page(
        "This page is not available", "The offer you are looking for has ended or does not exist.", status=404
    )


def _stale_form_page(campaign_id: str, code: str | None) -> web.Response:
    again = str(URL.build(path=f"/l/{campaign_id}", query={CODE_FIELD: code} if code else {}))
    body = (
        "<p>This form has expired or was not sent from our page, so nothing was recorded.</p>\n"
        f'<p><a href="{html_text(again)}">Open the form again</a> and send it from there.</p>'
    )
    return page("Please send the form again", body, status=403)
