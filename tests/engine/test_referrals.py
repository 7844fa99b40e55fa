"""Referral codes and landing-form tokens: genuine ones read back; altered, expired or misused are refused."""

from __future__ import annotations

import pytest

from engine.errors import ValidationError
from engine.feedback import MessageContext
from engine.referrals import (
    FORM_TOKEN_TTL_MS,
    ReferralCode,
    ReferralCodes,
    check_source,
    click_event_id,
    lead_id,
)
from engine.signing import ExpiredToken, InvalidSignature, Signer
from engine.tracking import TrackingLinks

SECRET = "referral-secret-0123456789abcdef"
CODES = ReferralCodes(Signer([SECRET]))
NOW_MS = 1_760_000_000_000
DAY_MS = 86_400_000
VISITOR = "v_6f1c2d3e-0000-4000-8000-00000000abcd"


def test_a_code_reads_back_its_campaign_and_source_and_is_short_and_url_safe() -> None:
    code = CODES.mint(ReferralCode("card-upsell", "facebook"))
    assert CODES.read(code, now_ms=NOW_MS) == ReferralCode("card-upsell", "facebook")
    assert len(code) < 80 and all(c.isalnum() or c in "-_." for c in code)


def test_a_code_with_an_expiry_works_until_then_and_not_after() -> None:
    code = CODES.mint(ReferralCode("card-upsell", "ads"), expires_at_ms=NOW_MS + 30 * DAY_MS)
    assert CODES.read(code, now_ms=NOW_MS + 30 * DAY_MS - 1).campaign_id == "card-upsell"
    with pytest.raises(ExpiredToken):
        CODES.read(code, now_ms=NOW_MS + 30 * DAY_MS)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_code_altered_in_any_part_is_refused(part: int) -> None:
    pieces = CODES.mint(ReferralCode("card-upsell", "facebook")).split(".")
    pieces[part] = pieces[part][:-1] + ("A" if pieces[part][-1] != "A" else "B")
    with pytest.raises(InvalidSignature):
        CODES.read(".".join(pieces), now_ms=NOW_MS)


def test_a_code_signed_with_another_secret_is_refused() -> None:
    other = ReferralCodes(Signer(["another-secret-0123456789abcdef"]))
    with pytest.raises(InvalidSignature):
        CODES.read(other.mint(ReferralCode("card-upsell", "facebook")), now_ms=NOW_MS)


def test_tokens_made_for_other_purposes_are_not_referral_codes() -> None:
    links = TrackingLinks(Signer([SECRET]), "https://go.bank.example")
    unsubscribe = links.unsubscribe_url(MessageContext("dlv_1", "c-1", "loan", "email")).rsplit("/", 1)[1]
    form_token = CODES.form_token(VISITOR, "card-upsell", now_ms=NOW_MS)
    for token in (unsubscribe, form_token):
        with pytest.raises(InvalidSignature, match="not made for"):
            CODES.read(token, now_ms=NOW_MS)
    with pytest.raises(InvalidSignature, match="not made for"):
        CODES.read_form_token(
            CODES.mint(ReferralCode("card-upsell", "x")), VISITOR, "card-upsell", now_ms=NOW_MS
        )


@pytest.mark.parametrize("source", ["", "face book", "a" * 65, "-dash", None, 7])
def test_a_source_must_be_a_short_plain_name(source: object) -> None:
    with pytest.raises(ValidationError, match="source"):
        check_source(source)


def test_a_form_token_is_accepted_for_its_visitor_and_campaign_within_its_lifetime() -> None:
    token = CODES.form_token(VISITOR, "card-upsell", now_ms=NOW_MS)
    read = CODES.read_form_token(token, VISITOR, "card-upsell", now_ms=NOW_MS + FORM_TOKEN_TTL_MS - 1)
    assert (read.visitor_id, read.campaign_id, read.issued_at_ms) == (VISITOR, "card-upsell", NOW_MS)
    with pytest.raises(ExpiredToken):
        CODES.read_form_token(token, VISITOR, "card-upsell", now_ms=NOW_MS + FORM_TOKEN_TTL_MS)


@pytest.mark.parametrize(
    ("visitor", "campaign"),
    [("v_someone-else-0000", "card-upsell"), (None, "card-upsell"), (VISITOR, "other-campaign")],
)
def test_a_form_token_is_refused_for_another_visitor_another_campaign_or_no_cookie(
    visitor: str | None, campaign: str
) -> None:
    token = CODES.form_token(VISITOR, "card-upsell", now_ms=NOW_MS)
    with pytest.raises(InvalidSignature):
        CODES.read_form_token(token, visitor, campaign, now_ms=NOW_MS)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_a_missing_or_garbage_form_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidSignature):
        CODES.read_form_token(token, VISITOR, "card-upsell", now_ms=NOW_MS)


def test_a_reload_within_the_minute_gives_the_same_click_id_and_a_later_click_another() -> None:
    minute = NOW_MS - NOW_MS % 60_000
    first = click_event_id("code", VISITOR, minute)
    assert click_event_id("code", VISITOR, minute + 59_999) == first
    assert click_event_id("code", VISITOR, minute + 60_000) != first
    assert click_event_id("code", "v_other-visitor-1", minute) != first
    assert click_event_id("other", VISITOR, minute) != first


def test_a_lead_id_depends_only_on_the_form_it_was_sent_from() -> None:
    token = CODES.form_token(VISITOR, "card-upsell", now_ms=NOW_MS)
    assert lead_id(token) == lead_id(token)
    assert lead_id(token) != lead_id(CODES.form_token(VISITOR, "card-upsell", now_ms=NOW_MS + 1))
