"""The JavaScript SDK in real headless Chromium, against a test double of the decisions API.

The double (tests/support/decisions_server.py) speaks the HTTP contract of /v1/decisions,
/v1/interactions and /v1/identify and serves the SDK from the worker's own route, minified as in
production. Every wait is for a condition with a deadline.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.decisions_server import DecisionsServer, item, placement
from tests.support.waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
PUBLIC_KEY = "rfk_pub_test_0123456789"
DEADLINE_S = 15.0

HERO = item(
    "card-upsell",
    image_url="data:image/gif;base64,R0lGODlhAQABAAAAACw=",
    alt="A gold card",
    title="Gold card, no fee",
    text="For <b>you</b>",
    cta_label="See the offer",
    cta_url="/pages/landing?from=hero",
)
SLIDES = [
    item("savings", title="Save more"),
    item("mortgage", "B", html="<h3>Move home</h3><a href='/pages/landing?from=slide'>Rates</a>"),
    item("travel-insurance", title="Travel insured"),
    item("never-shown", title="A fourth one, over max_items"),
]
POPUP = item(
    "welcome-bonus", title="Welcome!", text="A bonus for new customers", cta_label="Claim", cta_url="/x"
)
FOOTER = item("pension", title="Plan your pension")


def campaigns(popup: bool = True) -> dict[str, dict[str, Any]]:
    answers = {
        "home-hero": placement("single", HERO),
        "offers": placement("multiple", *SLIDES, max_items=3),
        "footer-offer": placement("single", FOOTER),
    }
    if popup:
        answers["welcome-popup"] = placement("popup", POPUP, open_delay_ms=200)
    return answers


def offers_page(server: DecisionsServer, head_script: str = "", **attributes: str) -> str:
    """The test page: placeholders with the page's own defaults, one far below the fold."""
    data = " ".join(f'data-{name.replace("_", "-")}="{value}"' for name, value in attributes.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Offers</title>
<script>
  window.readyEvents = [];
  document.addEventListener('refract:ready', (e) => readyEvents.push({{
    ok: e.detail.ok,
    afterSdkLoadedMs: performance.now() - performance.getEntriesByType('resource')
      .find((r) => r.name.endsWith('/sdk/refract.js')).responseEnd,
  }}));
  {head_script}
</script></head>
<body style="margin:0">
  <button id="menu">Menu</button>
  <script>document.getElementById('menu').focus();</script>
  <div data-refract-placement="home-hero"><p class="default">Welcome to Example Bank</p></div>
  <div data-refract-placement="offers" aria-label="Our offers"><p class="default">Our products</p></div>
  <div data-refract-placement="welcome-popup"></div>
  <div style="height: 3000px"></div>
  <div id="footer" data-refract-placement="footer-offer"><p class="default">Footer default</p></div>
  <script src="{server.api_origin}/sdk/refract.js" data-key="{PUBLIC_KEY}" {data} async></script>
</body></html>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; `./refract test`"
            " does it when run as root). Never `playwright install`.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def server() -> Iterator[DecisionsServer]:
    double = DecisionsServer(PUBLIC_KEY).start()
    double.answers["c-1"] = campaigns()
    double.pages["landing"] = "<!doctype html><title>Landing</title><h1>Landing page</h1>"
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, page_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    opened = context.new_page()
    opened.set_default_timeout(DEADLINE_S * 1000)
    opened.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert page_errors == [], "the SDK threw into the host page"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def open_page(page: Page, server: DecisionsServer, head_script: str = "", **attributes: str) -> None:
    server.pages["offers"] = offers_page(server, head_script, **attributes)
    page.goto(f"{server.page_origin}/pages/offers")


def wait_ready(page: Page) -> dict[str, Any]:
    page.wait_for_function("window.readyEvents.length > 0")
    event: dict[str, Any] = page.evaluate("window.readyEvents[0]")
    return event


def visitor_cookie(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "refract_vid")


def shown_slide(page: Page) -> str:
    return page.locator(".rf-slides > [role=group]:visible").get_attribute("aria-label") or ""


def test_a_customer_with_campaigns_sees_the_banner_the_carousel_and_the_popup(
    page: Page, server: DecisionsServer
) -> None:
    open_page(page, server, customer_id="c-1", impression_delay_ms="100")

    hero = page.locator("[data-refract-placement=home-hero]")
    hero.locator(".rf-item").wait_for()
    assert hero.locator(".default").count() == 0
    assert hero.locator("img").get_attribute("alt") == "A gold card"
    assert hero.locator(".rf-title").inner_text() == "Gold card, no fee"
    assert hero.locator(".rf-text").inner_text() == "For <b>you</b>", "text fields are text, never HTML"
    assert hero.locator("a.rf-cta").get_attribute("href") == f"{server.page_origin}/pages/landing?from=hero"

    dialog = page.locator("[role=dialog]")
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    label_id = dialog.get_attribute("aria-labelledby")
    assert page.locator(f"#{label_id}").inner_text() == "Welcome!"
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")

    offers = page.locator("[data-refract-placement=offers] section.rf-carousel")
    assert offers.get_attribute("aria-roledescription") == "carousel"
    assert offers.get_attribute("aria-label") == "Our offers"
    assert offers.locator("[role=group]").count() == 3, "at most max_items slides"
    assert offers.locator(".rf-slides").get_attribute("aria-live") == "polite"
    assert offers.locator("button.rf-prev").get_attribute("aria-label") == "Previous offer"
    assert offers.locator("button.rf-next").get_attribute("aria-label") == "Next offer"
    assert shown_slide(page) == "1 of 3"
    offers.locator("button.rf-next").click()
    assert shown_slide(page) == "2 of 3"
    assert offers.locator("h3").inner_text() == "Move home", "the server's html field is rendered"
    page.keyboard.press("ArrowRight")  # focus is on the next button, inside the carousel
    assert shown_slide(page) == "3 of 3"
    page.keyboard.press("ArrowRight")
    assert shown_slide(page) == "1 of 3", "the carousel wraps around"

    assert page.locator("#footer .rf-title").inner_text() == "Plan your pension"

    (request,) = server.decisions
    assert request["customer_id"] == "c-1"
    assert request["page"] == "/pages/offers"
    assert request["placements"] == ["home-hero", "offers", "welcome-popup", "footer-offer"]
    assert request["visitor_id"] == visitor_cookie(page)
    assert "/v1/decisions" in server.preflights, "the page and the API are different origins"
    assert server.refused == []
    (dismiss,) = wait_for(
        lambda: server.interactions_of("dismiss"), timeout_s=DEADLINE_S, message="a dismiss"
    )
    assert dismiss["campaign_id"] == "welcome-bonus"


def test_a_control_group_customer_keeps_the_pages_own_default_content(
    page: Page, server: DecisionsServer
) -> None:
    server.answers["c-control"] = {}  # control group: the double answers default for every placement
    open_page(page, server, customer_id="c-control")

    assert wait_ready(page)["ok"] is True
    assert [d["customer_id"] for d in server.decisions] == ["c-control"]
    assert page.locator(".rf-item").count() == 0
    assert (
        page.locator("[data-refract-placement=home-hero] .default").inner_text() == "Welcome to Example Bank"
    )
    assert page.locator("[data-refract-placement=offers] .default").inner_text() == "Our products"
    assert page.locator("#footer .default").inner_text() == "Footer default"
    assert page.locator("[role=dialog]").count() == 0


def test_impressions_are_counted_only_for_content_that_was_visible(
    page: Page, server: DecisionsServer
) -> None:
    server.answers["c-1"] = campaigns(popup=False)
    open_page(page, server, customer_id="c-1")  # the default rule: half visible for a full second

    wait_for(lambda: len(server.impressions()) >= 2, timeout_s=DEADLINE_S, message="the first impressions")
    # the footer, below the fold, would have been counted in the same batch as the hero
    assert sorted(server.impressions()) == [("home-hero", "card-upsell"), ("offers", "savings")]

    page.locator("#footer").scroll_into_view_if_needed()
    wait_for(
        lambda: ("footer-offer", "pension") in server.impressions(),
        timeout_s=DEADLINE_S,
        message="the footer's impression once scrolled into view",
    )
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("button.rf-next").click()
    wait_for(
        lambda: ("offers", "mortgage") in server.impressions(),
        timeout_s=DEADLINE_S,
        message="the second slide's impression once shown",
    )
    impressions = server.impressions()
    assert impressions.count(("home-hero", "card-upsell")) == 1, "once per item per page view"
    assert ("offers", "travel-insurance") not in impressions, "a slide never shown is not counted"
    hero = next(i for i in server.interactions_of("impression") if i["placement_id"] == "home-hero")
    assert hero["token"] == "tok-card-upsell-A"
    assert hero["customer_id"] == "c-1"
    assert hero["visitor_id"] == visitor_cookie(page)


def test_a_click_on_the_call_to_action_is_recorded_and_the_browser_follows_the_link(
    page: Page, server: DecisionsServer
) -> None:
    server.answers["c-1"] = campaigns(popup=False)
    open_page(page, server, customer_id="c-1")

    page.locator("[data-refract-placement=home-hero] a.rf-cta").click()
    page.wait_for_url(
        f"{server.page_origin}/pages/landing?from=hero",
    )
    assert page.locator("h1").inner_text() == "Landing page"
    (click,) = wait_for(lambda: server.interactions_of("click"), timeout_s=DEADLINE_S, message="the click")
    assert click["campaign_id"] == "card-upsell"
    assert click["placement_id"] == "home-hero"
    assert click["token"] == "tok-card-upsell-A"


def test_escape_closes_the_popup_reports_a_dismiss_and_gives_focus_back(
    page: Page, server: DecisionsServer
) -> None:
    open_page(page, server, customer_id="c-1")  # the page focuses its menu button before the SDK loads

    dialog = page.locator("[role=dialog]")
    dialog.wait_for()
    assert page.evaluate("document.querySelector('[role=dialog]').contains(document.activeElement)")
    for _ in range(3):  # Tab cycles inside the dialog: the close button and the call to action
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('[role=dialog]').contains(document.activeElement)")

    page.keyboard.press("Escape")
    dialog.wait_for(
        state="detached",
    )
    assert page.evaluate("document.activeElement.id") == "menu", "focus returns where it was"
    (dismiss,) = wait_for(
        lambda: server.interactions_of("dismiss"), timeout_s=DEADLINE_S, message="a dismiss"
    )
    assert dismiss["campaign_id"] == "welcome-bonus"
    assert dismiss["placement_id"] == "welcome-popup"


@pytest.mark.parametrize("failure", ["hangs", "refuses connections", "answers 500"])
def test_with_the_api_down_the_page_keeps_its_defaults_within_the_timeout(
    page: Page, server: DecisionsServer, page_errors: list[str], failure: str
) -> None:
    timeout_ms = 700
    attributes = {"customer_id": "c-1", "timeout_ms": str(timeout_ms)}
    if failure == "hangs":
        server.decision_delay_s = 30
    elif failure == "refuses connections":
        attributes["base_url"] = f"http://127.0.0.1:{closed_port()}"
    else:
        server.decision_status = 500
    open_page(page, server, **attributes)

    ready = wait_ready(page)
    assert ready["ok"] is False
    assert ready["afterSdkLoadedMs"] < timeout_ms + 1500, "the SDK gives up at its timeout"
    if failure == "hangs":
        assert ready["afterSdkLoadedMs"] >= timeout_ms
    assert (
        page.locator("[data-refract-placement=home-hero] .default").inner_text() == "Welcome to Example Bank"
    )
    assert page.locator("#footer .default").inner_text() == "Footer default"
    assert page.locator(".rf-item").count() == 0
    assert page.evaluate("typeof window.refract.identify") == "function"
    assert page_errors == []


def test_identify_links_the_visitor_once_and_later_decisions_carry_the_customer_id(
    page: Page, server: DecisionsServer
) -> None:
    open_page(page, server)  # an anonymous visitor
    wait_ready(page)
    visitor = visitor_cookie(page)
    assert server.decisions[0]["customer_id"] is None
    assert page.locator(".rf-item").count() == 0

    page.evaluate("async () => { await refract.identify('c-1'); await refract.identify('c-1'); }")
    assert server.identifies == [{"visitor_id": visitor, "customer_id": "c-1"}], "identify calls once"

    page.evaluate("refract.refresh()")
    page.locator("[data-refract-placement=home-hero] .rf-item").wait_for()
    page.reload()
    wait_for(lambda: len(server.decisions) == 3, timeout_s=DEADLINE_S, message="the reloaded page's decision")
    assert [(d["customer_id"], d["visitor_id"]) for d in server.decisions[1:]] == [("c-1", visitor)] * 2
    assert server.identifies == [{"visitor_id": visitor, "customer_id": "c-1"}]


def test_calls_queued_by_the_page_before_the_sdk_arrived_run_once_it_has(
    page: Page, server: DecisionsServer
) -> None:
    open_page(page, server, head_script="window.refract = [['identify', 'c-7'], ['refresh']];")
    visitor = wait_for(lambda: server.identifies, timeout_s=DEADLINE_S, message="the queued identify")[0]
    assert visitor["customer_id"] == "c-7"
    wait_for(lambda: len(server.decisions) == 2, timeout_s=DEADLINE_S, message="the queued refresh")
    assert server.decisions[1]["customer_id"] == "c-7"


def test_a_closed_popup_stays_closed_when_the_page_asks_again(page: Page, server: DecisionsServer) -> None:
    server.answers["c-1"]["welcome-popup"] = placement("popup", POPUP, open_delay_ms=0)
    open_page(page, server, customer_id="c-1")
    page.locator("[role=dialog]").wait_for()
    page.keyboard.press("Escape")
    page.locator("[role=dialog]").wait_for(state="detached")
    # timers of equal delay run in the order they were set: the pop-up's first, had it been set
    dialogs_after_refresh = """async () => {
        await refract.refresh();
        await new Promise((resolve) => setTimeout(resolve, 0));
        return document.querySelectorAll('[role=dialog]').length;
    }"""
    assert page.evaluate(dialogs_after_refresh) == 0
    assert len(server.decisions) == 2


def test_the_visitor_id_is_a_first_party_cookie_for_a_year_with_a_storage_copy(
    page: Page, server: DecisionsServer
) -> None:
    open_page(page, server)
    wait_ready(page)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "refract_vid"]
    assert cookie["value"].startswith("v_")
    assert cookie["sameSite"] == "Lax"
    assert cookie["domain"] == "127.0.0.1", "set on the page's own site"
    assert cookie["expires"] - page.evaluate("Date.now() / 1000") > 364 * 86400
    assert page.evaluate("localStorage.getItem('refract_vid')") == cookie["value"]

    page.context.clear_cookies()  # the storage copy keeps the visitor when cookies are cleared
    page.reload()
    wait_for(lambda: len(server.decisions) == 2, timeout_s=DEADLINE_S, message="the second page view")
    assert server.decisions[1]["visitor_id"] == cookie["value"]
    assert server.refused == []
