"""The JavaScript SDK in headless Chromium against a real worker: decisions, impressions, clicks.

The page is served from its own loopback origin (so the browser does real CORS with the worker);
the SDK comes from the worker's /sdk/refract.js with a public key; campaigns, segments and
placements are saved through the admin API, and what the SDK reports is read back from the
worker's funnel.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from api.auth import mint_key
from engine.campaigns.definition import campaign_from_body
from engine.campaigns.eligibility import in_control_group
from tests.support.waiting import wait_for
from tests.support.workers import ADMIN, READER, WorkerFactory, WorkerProcess, api_keys_variable

pytestmark = pytest.mark.kafka

CHROMIUM = Path("/usr/bin/chromium")
CAMPAIGN = {
    "name": "Gold card",
    "segments": ["rich"],
    "control_group": 30,
    "inbound": {
        "home-hero": {
            "title": "{{ customer.first_name | default: 'Hello' }}, meet the gold card",
            "cta_label": "See the offer",
            "cta_url": "/landing",
        }
    },
}


class Pages:
    """A loopback site serving the test page and the landing page."""

    def __init__(self) -> None:
        self.html: dict[str, str] = {}
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.html.get(self.path.split("?")[0], "<!doctype html><title>404</title>").encode()
                self.send_response(200 if self.path.split("?")[0] in pages.html else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def pages() -> Iterator[Pages]:
    site = Pages()
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (./refract test does it as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


def page_html(worker: WorkerProcess, key: str, customer: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Home</title></head>
<body>
  <div data-refract-placement="home-hero"><p class="default">Welcome to Example Bank</p></div>
  <script src="{worker.api.url}/sdk/refract.js" data-key="{key}" data-customer-id="{customer}"
          data-impression-delay-ms="100" async></script>
</body></html>"""


def test_a_real_worker_shows_the_banner_to_a_targeted_customer_and_the_default_to_control(
    workers: WorkerFactory, pages: Pages, browser: Browser
) -> None:
    public = mint_key(
        {"decisions:read", "interactions:write"}, key_id="sitepub", public=True, origins=[pages.origin]
    )
    worker = workers.start(REFRACT_API_KEYS=api_keys_variable(ADMIN.setting, READER.setting, public.setting))
    api = worker.api
    assert api.request("PUT", "/v1/segments/rich", {"rule": "balance >= 10000"}).status == 201
    assert api.request("PUT", "/v1/placements/home-hero", {"kind": "single"}).status == 201
    assert api.request("PUT", "/v1/campaigns/gold", CAMPAIGN).status == 201
    campaign = campaign_from_body("gold", 1, CAMPAIGN)
    names = [f"web{n}" for n in range(60)]
    treated = next(n for n in names if not in_control_group(n, campaign))
    control = next(n for n in names if in_control_group(n, campaign))
    customers = [
        {"customer_id": n, "attributes": {"balance": 50_000, "first_name": "Ana"}} for n in (treated, control)
    ]
    assert api.post("/v1/customers", {"customers": customers}).status == 202
    wait_for(
        lambda: all(api.get(f"/v1/customers/{n}").status == 200 for n in (treated, control)),
        message="both customers folded",
    )
    pages.html["/landing"] = "<!doctype html><title>Landing</title><h1>Landing page</h1>"

    context = browser.new_context(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    pages.html["/treated"] = page_html(worker, public.secret, treated)
    page.goto(f"{pages.origin}/treated")
    banner = page.locator("[data-refract-placement=home-hero]")
    banner.get_by_text("Ana, meet the gold card").wait_for(timeout=20_000)
    assert banner.locator(".default").count() == 0

    funnel = wait_for(
        lambda: (f := api.get("/v1/campaigns/gold/funnel").body) and f["total"]["reached"] == 1 and f,
        message="the visible banner's impression in the funnel",
    )
    assert funnel["arms"]["default"]["entered"] == 1
    page.get_by_text("See the offer").click()
    page.wait_for_url(f"{pages.origin}/landing")
    wait_for(
        lambda: api.get("/v1/campaigns/gold/funnel").body["total"]["lead"] == 1,
        message="the click in the funnel",
    )

    pages.html["/control"] = page_html(worker, public.secret, control)
    page.goto(f"{pages.origin}/control")
    page.wait_for_function("document.querySelector('[data-refract-placement=home-hero]') !== null")
    wait_for(
        lambda: (api.get("/v1/campaigns/gold/funnel").body["arms"].get("control") or {}).get("entered") == 1,
        message="the control customer entered in the control arm",
    )
    assert (
        page.locator("[data-refract-placement=home-hero] .default").inner_text() == "Welcome to Example Bank"
    )
    assert errors == []
    context.close()
