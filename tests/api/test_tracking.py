"""The open pixel, click redirects and unsubscribe pages, served by aiohttp over an in-memory log."""

from __future__ import annotations

import re

from api.tracking import PIXEL_GIF
from engine.events import ConsentUpdate, Interaction
from engine.feedback import click_interaction_id, open_interaction_id
from engine.signing import Signer
from engine.tracking import TrackingLinks
from tests.api.feedback_support import BASE, EMAIL, LINKS, SMS, feedback_server, path_of

STACK_TRACE = re.compile(r"Traceback|File \"|Error:")


async def test_the_pixel_is_a_transparent_gif_that_is_never_cached_and_records_one_open() -> None:
    async with feedback_server() as (client, log):
        path = path_of(LINKS.open_pixel_url(EMAIL))
        first = await client.get(path)
        again = await client.get(path)
        assert (first.status, first.content_type) == (200, "image/gif")
        body = await first.read()
        assert body == PIXEL_GIF and body.startswith(b"GIF89a") and len(body) == 43
        assert "no-store" in first.headers["Cache-Control"]
        assert again.status == 200
    assert [e.customer_id for e in log.envelopes] == ["cust-1", "cust-1"]
    expected = Interaction(
        "open", open_interaction_id(EMAIL.delivery_id), "loan-q4", None, EMAIL.delivery_id, "email"
    )
    # A repeated open carries the same interaction id, so the fold counts it once.
    assert [e.payload for e in log.envelopes] == [expected, expected]
    assert {e.source for e in log.envelopes} == {"tracking"}


async def test_a_head_request_or_a_bad_pixel_token_records_nothing() -> None:
    async with feedback_server() as (client, log):
        head = await client.head(path_of(LINKS.open_pixel_url(EMAIL)))
        bad = await client.get("/t/o/xM2M.bm9wZQ.AAAAAAAAAAAAAAAAAAAAAA.gif")
        assert head.status == 200
        assert (bad.status, bad.content_type) == (404, "image/gif")
    assert log.envelopes == []


async def test_a_click_redirects_to_the_original_link_and_records_the_click() -> None:
    url = "https://bank.example/loan?utm=mail&id=7#terms"
    async with feedback_server() as (client, log):
        answer = await client.get(path_of(LINKS.click_url(EMAIL, url)), allow_redirects=False)
        assert answer.status == 302
        assert answer.headers["Location"] == url
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    (envelope,) = log.envelopes
    assert envelope.customer_id == "cust-1"
    assert envelope.payload == Interaction(
        "click",
        click_interaction_id(EMAIL.delivery_id, url),
        "loan-q4",
        None,
        EMAIL.delivery_id,
        "email",
        {"url": url},
    )


async def test_a_click_still_redirects_when_kafka_is_unreachable() -> None:
    async with feedback_server() as (client, log):
        log.failing = True
        answer = await client.get(path_of(LINKS.click_url(SMS, "https://b.co/x")), allow_redirects=False)
        assert (answer.status, answer.headers["Location"]) == (302, "https://b.co/x")


async def test_a_non_ascii_link_is_redirected_percent_encoded() -> None:
    async with feedback_server() as (client, _):
        answer = await client.get(
            path_of(LINKS.click_url(EMAIL, "https://x.com/año?q=ñ")), allow_redirects=False
        )
        assert answer.headers["Location"] == "https://x.com/a%C3%B1o?q=%C3%B1"


async def test_a_tampered_or_foreign_click_token_gets_a_friendly_page_not_a_redirect() -> None:
    genuine = path_of(LINKS.click_url(EMAIL, "https://bank.example/"))
    kid, payload, tag = genuine.removeprefix("/t/c/").split(".")
    foreign = TrackingLinks(Signer(["another-deployment-secret-000"]), BASE).click_url(
        EMAIL, "https://evil.example/"
    )
    tampered = [
        f"/t/c/{kid}.{payload[:-2]}AA.{tag}",
        f"/t/c/{kid}.{payload}.{tag[::-1]}",
        path_of(foreign),
        path_of(LINKS.unsubscribe_url(EMAIL)).replace("/u/", "/t/c/"),
        "/t/c/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/t/c/" + "A" * 3000,
    ]
    async with feedback_server() as (client, log):
        for path in tampered:
            answer = await client.get(path, allow_redirects=False)
            text = await answer.text()
            assert (answer.status, answer.content_type) == (404, "text/html"), path
            assert "Location" not in answer.headers
            assert "This link does not work" in text and "<script>" not in text
            assert not STACK_TRACE.search(text)
    assert log.envelopes == []


async def test_an_expired_click_link_says_so() -> None:
    expired = LINKS.click_url(EMAIL, "https://bank.example/", expires_at_ms=1)
    async with feedback_server() as (client, _):
        answer = await client.get(path_of(expired), allow_redirects=False)
        assert answer.status == 410 and "expired" in await answer.text()


async def test_the_unsubscribe_page_offers_the_scopes_escaped_and_changes_nothing() -> None:
    async with feedback_server() as (client, log):
        path = path_of(LINKS.unsubscribe_url(EMAIL, "category"))
        answer = await client.get(path)
        text = await answer.text()
        assert (answer.status, answer.content_type, answer.charset) == (200, "text/html", "utf-8")
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert f'<form method="post" action="{path}">' in text
        assert "Préstamo &lt;b&gt;&quot;10%&quot;&lt;/b&gt;" in text and "<b>" not in text
        assert re.findall(r'value="(\w+)"( checked)?', text) == [
            ("campaign", ""),
            ("category", " checked"),
            ("channel", ""),
        ]
        assert '<html lang="en">' in text and "<legend>" in text and "<label>" in text
    assert log.envelopes == []


async def test_without_a_category_the_page_offers_campaign_and_channel_only() -> None:
    async with feedback_server() as (client, _):
        text = await (await client.get(path_of(LINKS.unsubscribe_url(SMS)))).text()
    assert re.findall(r'name="scope" value="(\w+)"', text) == ["campaign", "channel"]
    assert "text (SMS) messages" in text and "“promo”" in text


async def test_posting_a_scope_records_the_opt_out_and_confirms_it() -> None:
    async with feedback_server() as (client, log):
        answer = await client.post(path_of(LINKS.unsubscribe_url(EMAIL)), data={"scope": "channel"})
        text = await answer.text()
        assert answer.status == 200
        assert "You are unsubscribed" in text and "all email messages from us" in text
    consent, interaction = (e.payload for e in log.envelopes)
    assert consent == ConsentUpdate(opted_in=False, channel="email")
    assert isinstance(interaction, Interaction) and interaction.kind == "unsubscribe"
    assert interaction.data == {"scope": "channel"}
    assert {e.customer_id for e in log.envelopes} == {"cust-1"}


async def test_one_click_unsubscribe_uses_the_links_own_scope() -> None:
    async with feedback_server() as (client, log):
        path = path_of(LINKS.unsubscribe_url(EMAIL, "category"))
        form = await client.post(path, data={"List-Unsubscribe": "One-Click"})
        multipart = await client.post(path, data={"List-Unsubscribe": "One-Click", "x": ("f.txt", b"1")})
        assert (form.status, multipart.status) == (200, 200)
    assert [e.payload for e in log.envelopes][::2] == [ConsentUpdate(opted_in=False, category="offers")] * 2


async def test_a_scope_the_message_cannot_have_is_refused_with_the_form_again() -> None:
    async with feedback_server() as (client, log):
        path = path_of(LINKS.unsubscribe_url(SMS))
        for scope in ("category", "everything", "<script>"):
            answer = await client.post(path, data={"scope": scope})
            text = await answer.text()
            assert answer.status == 400 and "Please choose" in text and "<script>" not in text
    assert log.envelopes == []


async def test_an_unsubscribe_body_that_cannot_be_read_changes_nothing_and_shows_the_form_again() -> None:
    async with feedback_server() as (client, log):
        path = path_of(LINKS.unsubscribe_url(EMAIL))
        answer = await client.post(
            path, data=b"scope=channel", headers={"Content-Type": "multipart/form-data"}
        )
        assert answer.status == 400 and "Please choose" in await answer.text()
    assert log.envelopes == []


async def test_an_unsubscribe_kafka_did_not_take_is_not_confirmed() -> None:
    async with feedback_server() as (client, log):
        log.failing = True
        answer = await client.post(path_of(LINKS.unsubscribe_url(EMAIL)), data={"scope": "campaign"})
        assert answer.status == 503 and "try again" in await answer.text()


async def test_a_bad_unsubscribe_token_gets_the_friendly_page() -> None:
    async with feedback_server() as (client, log):
        for method in ("GET", "POST"):
            answer = await client.request(
                method, path_of(LINKS.click_url(EMAIL, "https://x.com")).replace("/t/c/", "/u/")
            )
            assert answer.status == 404 and "This link does not work" in await answer.text()
    assert log.envelopes == []
