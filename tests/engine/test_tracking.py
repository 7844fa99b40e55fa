"""Instrumenting messages: which links are tracked, and that nothing else in the message changes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ValidationError
from engine.feedback import MessageContext
from engine.signing import InvalidSignature, Signer
from engine.tracking import TrackingLinks

BASE = "https://go.bank.example"
SIGNER = Signer(["tracking-test-secret-0123456789"])
LINKS = TrackingLinks(SIGNER, BASE + "/")
CONTEXT = MessageContext("dlv_0123456789abcdef01234567", "cust-1", "loan-q4", "email", "offers")
_TRACKED = re.compile(re.escape(BASE) + r"/t/c/([\w-]+\.[\w-]+\.[\w-]+)", re.ASCII)
_PIXEL = re.compile(
    r'<img src="' + re.escape(BASE) + r'/t/o/[A-Za-z0-9_.-]+\.gif" width="1" height="1" alt="">'
)


def untracked(output: str) -> str:
    """``output`` with each click URL shown as [[original URL]], and the pixel as [[pixel]]."""

    def original(match: re.Match[str]) -> str:
        try:
            click = LINKS.read_click(match.group(1), now_ms=0)
        except InvalidSignature:
            return match.group(0)  # a link that was already there, not one made here
        assert click.context == MessageContext(CONTEXT.delivery_id, "cust-1", "loan-q4", "email")
        return f"[[{click.url}]]"

    return _PIXEL.sub("[[pixel]]", _TRACKED.sub(original, output))


LINK_CASES = [
    ('<a href="https://x.com/a">A</a>', '<a href="[[https://x.com/a]]">A</a>'),
    ("<a href='https://x.com/a'>A</a>", "<a href='[[https://x.com/a]]'>A</a>"),
    ("<a href=https://x.com/a>A</a>", '<a href="[[https://x.com/a]]">A</a>'),
    (
        '<a class="b" href = "http://x.com/a" id=c>A</a>',
        '<a class="b" href = "[[http://x.com/a]]" id=c>A</a>',
    ),
    ('<A HREF="HTTPS://X.COM/Up">A</A>', '<A HREF="[[HTTPS://X.COM/Up]]">A</A>'),
    ('<a href="https://x.com/?a=1&amp;b=2&#38;c=3">A</a>', '<a href="[[https://x.com/?a=1&b=2&c=3]]">A</a>'),
    ('<a href="  https://x.com/pad  ">A</a>', '<a href="[[https://x.com/pad]]">A</a>'),
    ('<a title="a > b" href="https://x.com/gt">A</a>', '<a title="a > b" href="[[https://x.com/gt]]">A</a>'),
    (
        '<a title=\'say "hi"\' href="https://x.com/q">A</a>',
        '<a title=\'say "hi"\' href="[[https://x.com/q]]">A</a>',
    ),
    (
        '<a href="https://x.com/1" href="https://x.com/2">A</a>',
        '<a href="[[https://x.com/1]]" href="https://x.com/2">A</a>',
    ),
    (
        '<map><area shape="rect" href="https://x.com/area"></map>',
        '<map><area shape="rect" href="[[https://x.com/area]]"></map>',
    ),
    ('<a href="https://x.com/self"/>', '<a href="[[https://x.com/self]]"/>'),
    ('<a\nhref="https://x.com/nl"\n>A</a>', '<a\nhref="[[https://x.com/nl]]"\n>A</a>'),
]

UNTOUCHED = [
    '<a href="mailto:ana@example.com">mail</a>',
    '<a href="tel:+59899123456">call</a>',
    '<a href="#top">top</a>',
    '<a href="/relative/path">rel</a>',
    '<a href="javascript:alert(1)">js</a>',
    '<a href="">empty</a>',
    "<a href>no value</a>",
    '<a name="x">no href</a>',
    '<a data-href="https://x.com/data">data</a>',
    '<link rel="stylesheet" href="https://x.com/style.css">',
    '<img src="https://x.com/logo.png" alt="">',
    '<!-- <a href="https://x.com/commented">c</a> -->',
    "<script>var s = '<a href=\"https://x.com/js\">';</script>",
    '<style>a[href="https://x.com/css"] { color: red }</style>',
    f'<a href="{BASE}/t/c/already.tracked.token">tracked</a>',
    f'<a href="{BASE}/u/an.unsubscribe.token">unsubscribe</a>',
    "<p>Visit https://x.com/in-text (not a link in HTML)</p>",
]


@pytest.mark.parametrize(("document", "expected"), LINK_CASES)
def test_http_links_in_href_are_tracked_and_the_rest_of_the_tag_is_kept(document: str, expected: str) -> None:
    assert untracked(LINKS.track_html(document, CONTEXT, open_pixel=False)) == expected


@pytest.mark.parametrize("document", UNTOUCHED)
def test_other_links_and_non_link_markup_are_left_byte_for_byte(document: str) -> None:
    assert LINKS.track_html(document, CONTEXT, open_pixel=False) == document


def test_a_real_email_changes_only_in_its_links_and_gains_the_pixel_before_body_end() -> None:
    document = (
        '<!DOCTYPE html>\r\n<html lang="es"><head><meta charset="utf-8"><title>Oferta &amp; más</title>\r\n'
        "<style>td { padding: 0 } /* <a href='https://x.com/css'> */</style></head>\r\n"
        '<body style="margin:0"><table role="presentation"><tr><td>\r\n'
        '<!--[if mso]><v:roundrect href="https://x.com/vml"></v:roundrect><![endif]-->\r\n'
        '  <a href="https://bank.example/loan?utm=mail&amp;id=7" style="color:#c00">Ver oferta ñ</a>\r\n'
        '  <p>Hola Ana — &euro;10 <b>gratis</b> <a href="mailto:help@bank.example">ayuda</a></p>\r\n'
        f'  <a href="{BASE}/u/unsub.token.here">Darse de baja</a>\r\n'
        "</td></tr></table></BODY></html>\r\n"
    )
    output = LINKS.track_html(document, CONTEXT)
    expected = document.replace(
        "https://bank.example/loan?utm=mail&amp;id=7", "[[https://bank.example/loan?utm=mail&id=7]]"
    ).replace("</BODY>", "[[pixel]]</BODY>")
    assert untracked(output) == expected


def test_the_pixel_goes_at_the_end_without_a_body_and_is_added_once() -> None:
    output = LINKS.track_html("<p>Hi</p>", CONTEXT)
    assert untracked(output) == "<p>Hi</p>[[pixel]]"
    assert LINKS.track_html(output, CONTEXT) == output  # tracking twice changes nothing


def test_the_pixel_names_the_message() -> None:
    output = LINKS.track_html("<body></body>", CONTEXT)
    token = re.search(r"/t/o/([^\"]+)\.gif", output)
    assert token is not None
    assert LINKS.read_open(token.group(1), now_ms=0).delivery_id == CONTEXT.delivery_id


@given(st.text(alphabet=st.sampled_from(list("<>/=\"' &;#abhrefx:.-\n")), max_size=80))
def test_markup_without_web_links_is_never_changed(document: str) -> None:
    if "http" in document:
        return
    assert LINKS.track_html(document, CONTEXT, open_pixel=False) == document


@given(
    st.lists(st.sampled_from([*UNTOUCHED, *(case for case, _ in LINK_CASES), "text ", "<br>"]), max_size=8)
)
def test_untracking_a_tracked_document_gives_back_the_original_links(parts: list[str]) -> None:
    document = "".join(parts)
    expected = "".join(dict(LINK_CASES).get(part, part) for part in parts)
    assert untracked(LINKS.track_html(document, CONTEXT, open_pixel=False)) == expected


SMS_CASES = [
    ("Hola Ana: https://x.com/o?id=1. Responde STOP", "Hola Ana: [[https://x.com/o?id=1]]. Responde STOP"),
    ("Two: http://a.com/1, HTTPS://B.com/2!", "Two: [[http://a.com/1]], [[HTTPS://B.com/2]]!"),
    ("(see https://x.com/wiki/A_(b)) ok", "(see [[https://x.com/wiki/A_(b)]]) ok"),
    ("'https://x.com/q'", "'[[https://x.com/q]]'"),
    ("No links here, www.x.com neither", "No links here, www.x.com neither"),
    (f"Baja: {BASE}/u/tok.en.sig", f"Baja: {BASE}/u/tok.en.sig"),
    ("ñandú https://x.com/ñ", "ñandú [[https://x.com/ñ]]"),
]


@pytest.mark.parametrize(("text", "expected"), SMS_CASES)
def test_urls_in_text_are_tracked_without_their_trailing_punctuation(text: str, expected: str) -> None:
    assert untracked(LINKS.track_text(text, CONTEXT)) == expected


def test_a_tracked_sms_link_stays_short_enough_to_count() -> None:
    url = LINKS.click_url(
        MessageContext("dlv_0123456789abcdef01234567", "c-12345", "promo", "sms"), "https://b.co/x"
    )
    assert len(url) <= 150, len(url)


def test_the_unsubscribe_url_carries_the_scope_and_the_category() -> None:
    url = LINKS.unsubscribe_url(CONTEXT, "category")
    assert url.startswith(f"{BASE}/u/")
    target = LINKS.read_unsubscribe(url.rsplit("/", 1)[1], now_ms=0)
    assert (target.scope, target.context) == ("category", CONTEXT)


def test_a_category_unsubscribe_needs_a_category() -> None:
    with pytest.raises(ValidationError):
        LINKS.unsubscribe_url(MessageContext("d", "c", "k", "sms"), "category")


def test_a_click_token_cannot_be_read_as_an_unsubscribe_or_a_pixel() -> None:
    token = LINKS.click_url(CONTEXT, "https://x.com").rsplit("/", 1)[1]
    with pytest.raises(InvalidSignature):
        LINKS.read_unsubscribe(token, now_ms=0)
    with pytest.raises(InvalidSignature):
        LINKS.read_open(token, now_ms=0)


def test_a_signed_non_web_url_is_still_refused_as_a_redirect_target() -> None:
    token = SIGNER.sign("c", ["d", "c", "k", "email", "javascript:alert(1)"])
    with pytest.raises(InvalidSignature):
        LINKS.read_click(token, now_ms=0)


def test_the_sms_status_url_names_the_delivery() -> None:
    url = LINKS.sms_status_url(CONTEXT)
    assert url.startswith(f"{BASE}/webhooks/twilio/status/")
    assert LINKS.read_sms_status(url.rsplit("/", 1)[1], now_ms=0).delivery_id == CONTEXT.delivery_id
