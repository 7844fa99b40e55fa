"""Referral links and landing pages served by aiohttp over an in-memory log: codes, cookies, CSRF,
the honeypot, the rate limit, validation and the events of a lead."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.errors import ApiError, errors_middleware
from api.landing import AddressLimiter, LandingRoutes
from api.payloads import EnvelopeFactory
from api.referrals import ReferralRoutes
from engine.campaigns.definition import campaign_from_body
from engine.campaigns.model import Campaign
from engine.errors import ValidationError
from engine.events import ConsentUpdate, ContactUpdate, CustomerUpdate, Interaction, ReferralClick
from engine.referrals import FORM_TOKEN_TTL_MS, ReferralCode, ReferralCodes, lead_id
from engine.signing import Signer
from tests.api.feedback_support import FakeLog

BASE = "https://go.bank.example"
NOW_MS = 1_760_000_000_000
CODES = ReferralCodes(Signer(["referral-api-secret-0123456789abcdef"]))
STACK_TRACE = re.compile(r"Traceback|File \"|Error:")
FORM = {
    "title": "Your card <today>",
    "intro": "Welcome, {{ referral.source | default: 'friend' }} reader!",
    "fields": [
        {"name": "first_name", "type": "text", "label": "First name", "required": True},
        {"name": "email", "type": "email", "label": "Email", "required": True},
        {"name": "plan", "type": "select", "label": "Plan", "options": ["gold", "black"]},
        {"name": "offers", "type": "checkbox", "label": "Email me offers", "consent_channel": "email"},
    ],
    "success_message": "Thanks, we will write soon.",
}
CAMPAIGNS: dict[str, Campaign] = {
    "cards": campaign_from_body(
        "cards", 1, {"name": "Cards", "triggers": [{"referral": True}], "landing": FORM}
    ),
    "outside": campaign_from_body(
        "outside",
        1,
        {"triggers": [{"referral": True}], "landing": {"redirect_url": "https://bank.example/cards?x=1"}},
    ),
    "plain": campaign_from_body("plain", 1, {"triggers": [{"referral": True}]}),
    "callback": campaign_from_body(
        "callback",
        1,
        {
            "triggers": [{"referral": True}],
            "landing": {**FORM, "redirect_url": "https://bank.example/gracias/año"},
        },
    ),
}
KNOWN = {"cust-7"}


@dataclass
class Clock:
    now_ms: int = NOW_MS
    now_s: float = 0.0


@asynccontextmanager
async def referral_server() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakeLog, Clock]]:
    log = FakeLog()
    clock = Clock()
    app = web.Application(middlewares=[errors_middleware])
    envelopes = EnvelopeFactory("referral", lambda: clock.now_ms)
    ReferralRoutes(
        CODES, lambda: CAMPAIGNS, log.append, envelopes, lambda: clock.now_ms, BASE, KNOWN.__contains__
    ).install(app.router)
    LandingRoutes(
        CODES,
        lambda: CAMPAIGNS,
        log.append,
        envelopes,
        lambda: clock.now_ms,
        secure=True,
        known=KNOWN.__contains__,
        clock_s=lambda: clock.now_s,
    ).install(app.router)
    async with TestClient(TestServer(app)) as client:
        yield client, log, clock


def code_for(campaign_id: str = "cards", source: str = "facebook", expires_at_ms: int | None = None) -> str:
    return CODES.mint(ReferralCode(campaign_id, source), expires_at_ms=expires_at_ms)


def token_in(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


# --- minting ---------------------------------------------------------------------------------


def routes() -> ReferralRoutes:
    return ReferralRoutes(
        CODES, lambda: CAMPAIGNS, FakeLog().append, EnvelopeFactory("x", lambda: NOW_MS), lambda: NOW_MS, BASE
    )


def test_minting_gives_a_code_and_its_public_url_with_the_expiry() -> None:
    link, campaign_id, source = routes().mint(
        {"campaign_id": "cards", "source": "facebook", "expires_in": "30d"}
    )
    assert link.url == f"{BASE}/r/{link.code}" and (campaign_id, source) == ("cards", "facebook")
    assert link.expires_at_ms == NOW_MS + 30 * 86_400_000
    assert CODES.read(link.code, now_ms=NOW_MS) == ReferralCode("cards", "facebook")
    assert link.json("cards", "facebook")["expires_at"].startswith("2025-11-")


def test_minting_refuses_an_unknown_campaign_and_one_without_a_landing_page() -> None:
    with pytest.raises(ApiError) as caught:
        routes().mint({"campaign_id": "nope", "source": "facebook"})
    assert (caught.value.status, caught.value.code) == (404, "campaign_not_found")
    with pytest.raises(ValidationError, match="no landing section"):
        routes().mint({"campaign_id": "plain", "source": "facebook"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"campaign_id": "cards"}, "source"),
        ({"campaign_id": "cards", "source": "face book"}, "source"),
        ({"campaign_id": "cards", "source": "x", "expires_in": "1 month"}, "expires_in"),
        ({"campaign_id": "cards", "source": "x", "expires_in": "999999w"}, "expires_in"),
        ({"campaign_id": "cards", "source": "x", "colour": "red"}, "colour"),
        ({"source": "x"}, "campaign_id"),
        (["cards"], "body"),
    ],
)
def test_minting_names_the_wrong_field(body: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        routes().mint(body)
    assert caught.value.field == field


# --- following a link ------------------------------------------------------------------------


async def test_following_a_link_records_the_click_sets_the_visitor_cookie_and_goes_to_the_landing_page() -> (
    None
):
    code = code_for()
    async with referral_server() as (client, log, _):
        answer = await client.get(f"/r/{code}", allow_redirects=False)
        assert answer.status == 302
        assert answer.headers["Location"] == f"/l/cards?r={code}"
        cookie = answer.cookies["refract_vid"]
        assert cookie["max-age"] == "31536000" and cookie["path"] == "/" and cookie["samesite"] == "Lax"
        assert cookie["secure"] and not cookie["httponly"]
        visitor = cookie.value
        assert re.fullmatch(r"v_[0-9a-f-]{36}", visitor)
    (envelope,) = log.envelopes
    assert envelope.customer_id == f"anon:{visitor}"
    assert envelope.payload == ReferralClick(code, "cards", "facebook", visitor)
    assert envelope.event_id.startswith("ref_")


async def test_a_reload_records_the_same_event_id_and_keeps_the_visitor() -> None:
    code = code_for()
    async with referral_server() as (client, log, clock):
        client.session.cookie_jar.update_cookies({"refract_vid": "v_known-visitor-01"})
        await client.get(f"/r/{code}", allow_redirects=False)
        await client.get(f"/r/{code}", allow_redirects=False)
        clock.now_ms += 120_000
        await client.get(f"/r/{code}", allow_redirects=False)
    ids = [e.event_id for e in log.envelopes]
    assert ids[0] == ids[1] != ids[2]
    assert {e.customer_id for e in log.envelopes} == {"anon:v_known-visitor-01"}


async def test_a_known_customer_cookie_makes_the_click_the_customers_and_an_unknown_one_does_not() -> None:
    async with referral_server() as (client, log, _):
        client.session.cookie_jar.update_cookies(
            {"refract_vid": "v_known-visitor-01", "refract_cid": "cust-7"}
        )
        await client.get(f"/r/{code_for()}", allow_redirects=False)
        client.session.cookie_jar.update_cookies({"refract_cid": "cust-unknown"})
        await client.get(f"/r/{code_for(source='ads')}", allow_redirects=False)
    assert [e.customer_id for e in log.envelopes] == ["cust-7", "anon:v_known-visitor-01"]


async def test_a_campaign_without_a_form_sends_the_visitor_to_its_redirect_url() -> None:
    async with referral_server() as (client, log, _):
        answer = await client.get(f"/r/{code_for('outside')}", allow_redirects=False)
        assert (answer.status, answer.headers["Location"]) == (302, "https://bank.example/cards?x=1")
    assert len(log.envelopes) == 1


async def test_a_head_request_redirects_without_recording() -> None:
    async with referral_server() as (client, log, _):
        answer = await client.head(f"/r/{code_for()}", allow_redirects=False)
        assert answer.status == 302
    assert log.envelopes == []


async def test_the_visitor_still_reaches_the_page_when_kafka_is_unreachable() -> None:
    async with referral_server() as (client, log, _):
        log.failing = True
        answer = await client.get(f"/r/{code_for()}", allow_redirects=False)
        assert answer.status == 302


@pytest.mark.parametrize(
    "code",
    [
        "garbage",
        code_for()[:-3] + "AAA",
        code_for(expires_at_ms=NOW_MS - 1),
        code_for("gone-campaign"),
        code_for("plain"),
        CODES.form_token("v_known-visitor-01", "cards", now_ms=NOW_MS),
    ],
    ids=["garbage", "tampered", "expired", "unknown campaign", "no landing", "form token"],
)
async def test_a_bad_code_gets_a_friendly_404_page_and_records_nothing(code: str) -> None:
    async with referral_server() as (client, log, _):
        answer = await client.get(f"/r/{code}", allow_redirects=False)
        page = await answer.text()
        assert (answer.status, answer.content_type) == (404, "text/html")
        assert "<h1>" in page and not STACK_TRACE.search(page)
    assert log.envelopes == []


# --- the landing page ------------------------------------------------------------------------


async def test_the_landing_page_shows_an_accessible_escaped_form_with_a_token_and_a_hidden_honeypot() -> None:
    code = code_for()
    async with referral_server() as (client, _, _clock):
        answer = await client.get(f"/l/cards?r={code}")
        page = await answer.text()
        assert answer.status == 200 and answer.headers["X-Frame-Options"] == "DENY"
        assert "<title>Your card &lt;today&gt;</title>" in page
        assert "<p>Welcome, facebook reader!</p>" in page
        assert '<label for="f-email">Email <span aria-hidden="true">*</span></label>' in page
        assert 'type="email" id="f-email" name="email" value="" autocomplete="email" required' in page
        assert f'name="r" value="{code}"' in page
        assert re.search(r'<div style="position:absolute;left:-10000px[^"]*" aria-hidden="true">', page)
        assert 'name="website" value="" tabindex="-1" autocomplete="off"' in page
        visitor = answer.cookies["refract_vid"].value
        assert CODES.read_form_token(token_in(page), visitor, "cards", now_ms=NOW_MS).visitor_id == visitor


async def test_the_landing_page_without_a_genuine_code_uses_the_intro_default_and_drops_the_code() -> None:
    async with referral_server() as (client, _, _clock):
        page = await (await client.get("/l/cards?r=forged")).text()
    assert "<p>Welcome, friend reader!</p>" in page and 'name="r"' not in page


@pytest.mark.parametrize("campaign_id", ["nope", "outside", "plain"])
async def test_a_campaign_without_a_landing_form_has_no_page(campaign_id: str) -> None:
    async with referral_server() as (client, _, _clock):
        for method in ("GET", "POST"):
            answer = await client.request(method, f"/l/{campaign_id}")
            assert (answer.status, answer.content_type) == (404, "text/html")


async def open_form(client: TestClient[web.Request, web.Application], path: str = "/l/cards") -> str:
    client.session.cookie_jar.update_cookies({"refract_vid": "v_known-visitor-01"})
    return token_in(await (await client.get(path)).text())


GOOD = {"first_name": "Ana", "email": "ana@example.com", "plan": "gold", "offers": "yes"}


async def test_a_valid_form_records_contacts_attributes_consent_and_the_lead_then_thanks() -> None:
    code = code_for()
    async with referral_server() as (client, log, _):
        token = await open_form(client, f"/l/cards?r={code}")
        answer = await client.post("/l/cards", data={**GOOD, "csrf_token": token, "r": code, "website": ""})
        page = await answer.text()
        assert answer.status == 200 and "Thanks, we will write soon." in page
    interaction = lead_id(token)
    assert [e.customer_id for e in log.envelopes] == ["anon:v_known-visitor-01"] * 4
    assert [e.event_id for e in log.envelopes] == [f"{interaction}-{i}" for i in range(4)]
    assert [e.payload for e in log.envelopes] == [
        ContactUpdate(email="ana@example.com"),
        CustomerUpdate(set={"first_name": "Ana", "plan": "gold"}),
        ConsentUpdate(opted_in=True, channel="email"),
        Interaction("lead", interaction, "cards", data={"source": "facebook", "code": code}),
    ]


async def test_sending_the_same_form_twice_repeats_the_same_ids() -> None:
    async with referral_server() as (client, log, _):
        token = await open_form(client)
        for _ in range(2):
            await client.post("/l/cards", data={**GOOD, "csrf_token": token})
    assert [e.event_id for e in log.envelopes[:4]] == [e.event_id for e in log.envelopes[4:]]


async def test_an_invalid_form_comes_back_with_messages_by_the_fields_and_the_values_kept() -> None:
    async with referral_server() as (client, log, _):
        token = await open_form(client)
        answer = await client.post(
            "/l/cards",
            data={"first_name": "<b>Ana</b>", "email": "ana@", "plan": "platinum", "csrf_token": token},
        )
        page = await answer.text()
        assert answer.status == 400
        assert 'role="alert"' in page and 'href="#f-email"' in page
        assert 'aria-invalid="true" aria-describedby="f-email-error"' in page
        assert 'id="f-email-error"' in page and "email address such as" in page
        assert 'value="&lt;b&gt;Ana&lt;/b&gt;"' in page and "<b>Ana</b>" not in page
        assert 'value="ana@"' in page
        assert "one of the options" in page
    assert log.envelopes == []


@pytest.mark.parametrize(
    "case", ["missing", "forged", "other visitor", "other campaign", "expired", "no cookie"]
)
async def test_a_bad_csrf_token_gets_a_403_page_and_records_nothing(case: str) -> None:
    async with referral_server() as (client, log, clock):
        token = await open_form(client)
        tokens = {
            "missing": "",
            "forged": token[:-3] + "AAA",
            "other visitor": CODES.form_token("v_someone-else-01", "cards", now_ms=NOW_MS),
            "other campaign": CODES.form_token("v_known-visitor-01", "outside", now_ms=NOW_MS),
        }
        if case == "expired":
            clock.now_ms += FORM_TOKEN_TTL_MS
        if case == "no cookie":
            client.session.cookie_jar.clear()
        answer = await client.post("/l/cards", data={**GOOD, "csrf_token": tokens.get(case, token)})
        page = await answer.text()
        assert (answer.status, answer.content_type) == (403, "text/html")
        assert 'href="/l/cards"' in page and not STACK_TRACE.search(page)
    assert log.envelopes == []


async def test_a_filled_honeypot_is_thanked_and_nothing_is_recorded() -> None:
    async with referral_server() as (client, log, _):
        token = await open_form(client)
        answer = await client.post(
            "/l/cards", data={**GOOD, "csrf_token": token, "website": "http://spam.example"}
        )
        assert answer.status == 200 and "Thanks, we will write soon." in await answer.text()
    assert log.envelopes == []


async def test_more_than_five_posts_a_minute_from_one_address_get_429_with_retry_after() -> None:
    async with referral_server() as (client, log, clock):
        token = await open_form(client)
        statuses = []
        for _ in range(6):
            answer = await client.post("/l/cards", data={"csrf_token": token})
            statuses.append(answer.status)
        assert statuses == [400] * 5 + [429]
        assert int(answer.headers["Retry-After"]) >= 1
        clock.now_s += 12  # one post's worth of tokens refilled
        assert (await client.post("/l/cards", data={"csrf_token": token})).status == 400
    assert log.envelopes == []


async def test_a_lead_that_cannot_be_recorded_says_try_again() -> None:
    async with referral_server() as (client, log, _):
        token = await open_form(client)
        log.failing = True
        answer = await client.post("/l/cards", data={**GOOD, "csrf_token": token})
        assert answer.status == 503


def test_the_address_limiter_forgets_the_least_recently_seen_addresses_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.landing.MAX_TRACKED_ADDRESSES", 2)
    limiter = AddressLimiter(lambda: 0.0, per_minute=1)
    assert limiter.take("a") == 0 and limiter.take("a") > 0
    limiter.take("b")
    limiter.take("c")  # "a" is forgotten: it may post again
    assert limiter.take("a") == 0


async def test_a_lead_on_a_page_with_a_redirect_url_goes_there_after_recording() -> None:
    async with referral_server() as (client, log, _):
        token = await open_form(client, "/l/callback")
        answer = await client.post("/l/callback", data={**GOOD, "csrf_token": token}, allow_redirects=False)
        assert (answer.status, answer.headers["Location"]) == (303, "https://bank.example/gracias/a%C3%B1o")
    assert [type(e.payload).__name__ for e in log.envelopes][-1] == "Interaction"
