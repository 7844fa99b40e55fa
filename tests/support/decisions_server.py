"""A test double of Refract's decisions API, for the JavaScript SDK's browser tests.

It is not Refract (no Kafka, no campaigns engine): it answers the HTTP contract the SDK is written
against — ``POST /v1/decisions``, ``/v1/interactions``, ``/v1/identify``, with CORS — from canned
answers per customer, records every request it receives, and serves the real ``/sdk/refract.js``
route and the test pages. Pages and API answer on two ports of 127.0.0.1, so the page and the API are
different origins and the browser goes through CORS as it does on a customer's site.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

import orjson
from aiohttp import web

from api.sdk_route import install_sdk

DEFAULT_ANSWER: dict[str, Any] = {
    "kind": "single",
    "open_delay_ms": 0,
    "max_items": 1,
    "default": True,
    "items": [],
}


def item(campaign_id: str, variant: str = "A", **content: str) -> dict[str, Any]:
    """One item of a placement answer, with a token derived from campaign and variant."""
    return {
        "campaign_id": campaign_id,
        "variant": variant,
        "token": f"tok-{campaign_id}-{variant}",
        "content": content,
    }


def placement(
    kind: str, *items: dict[str, Any], open_delay_ms: int = 0, max_items: int = 1
) -> dict[str, Any]:
    return {
        "kind": kind,
        "open_delay_ms": open_delay_ms,
        "max_items": max_items,
        "default": False,
        "items": list(items),
    }


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class DecisionsServer:
    """Runs in a thread of its own (the browser is driven synchronously from the test's thread)."""

    def __init__(self, public_key: str) -> None:
        self.public_key = public_key
        # customer id -> placement id -> placement answer; anything not listed gets the default
        self.answers: dict[str, dict[str, dict[str, Any]]] = {}
        self.pages: dict[str, str] = {}
        self.decision_delay_s = 0.0
        self.decision_status = 200
        self.decisions: list[dict[str, Any]] = []
        self.interactions: list[dict[str, Any]] = []
        self.identifies: list[dict[str, Any]] = []
        self.preflights: list[str] = []
        self.refused: list[str] = []  # requests with a missing or wrong key
        self._page_socket = _bound_socket()
        self._api_socket = _bound_socket()
        self.page_origin = f"http://127.0.0.1:{self._page_socket.getsockname()[1]}"
        self.api_origin = f"http://127.0.0.1:{self._api_socket.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="decisions-server", daemon=True)
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None

    # --- what the tests read ------------------------------------------------------------------

    def interactions_of(self, kind: str) -> list[dict[str, Any]]:
        return [i for i in list(self.interactions) if i["kind"] == kind]

    def impressions(self) -> list[tuple[str, str]]:
        """(placement id, campaign id) of every impression received, in order."""
        return [(i["placement_id"], i["campaign_id"]) for i in self.interactions_of("impression")]

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> DecisionsServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application()
        install_sdk(app.router)
        app.router.add_get("/pages/{name}", self._page)
        for endpoint in ("decisions", "interactions", "identify"):
            app.router.add_route("OPTIONS", f"/v1/{endpoint}", self._preflight)
        app.router.add_post("/v1/decisions", self._decisions)
        app.router.add_post("/v1/interactions", self._interactions)
        app.router.add_post("/v1/identify", self._identify)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for sock in (self._page_socket, self._api_socket):
            await web.SockSite(self._runner, sock).start()

    async def _stop(self) -> None:
        assert self._closing is not None and self._runner is not None
        self._closing.set()  # requests made to hang return now
        await self._runner.cleanup()

    # --- the contract -------------------------------------------------------------------------

    def _cors(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        return {"Access-Control-Allow-Origin": origin} if origin == self.page_origin else {}

    async def _preflight(self, request: web.Request) -> web.Response:
        self.preflights.append(request.path)
        headers = self._cors(request)
        if headers:
            headers["Access-Control-Allow-Methods"] = "POST"
            headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            headers["Access-Control-Max-Age"] = "600"
        return web.Response(status=204, headers=headers)

    def _authorized(self, request: web.Request, body: dict[str, Any]) -> bool:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ") or body.get("key")
        if presented != self.public_key:
            self.refused.append(request.path)
            return False
        return True

    async def _body(self, request: web.Request) -> dict[str, Any]:
        # interactions arrive as text/plain beacons: the body is JSON whatever the content type says
        body: dict[str, Any] = orjson.loads(await request.read())
        return body

    async def _decisions(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self.decisions.append(body)
        if self.decision_delay_s:
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.decision_delay_s)
        headers = self._cors(request)
        if not self._authorized(request, body):
            return web.json_response({"error": {"code": "unauthorized"}}, status=401, headers=headers)
        if self.decision_status != 200:
            failure = {"error": {"code": "internal_error", "message": "test double told to fail"}}
            return web.json_response(failure, status=self.decision_status, headers=headers)
        answers = self.answers.get(body.get("customer_id") or "", {})
        placements = {p: answers.get(p, DEFAULT_ANSWER) for p in body["placements"]}
        answer = {"decision_id": f"d-{len(self.decisions)}", "placements": placements}
        return web.json_response(answer, headers=headers)

    async def _interactions(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if self._authorized(request, body):
            self.interactions.extend(body["interactions"])
        return web.Response(status=202, headers=self._cors(request))

    async def _identify(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if self._authorized(request, body):
            self.identifies.append(body)
        return web.Response(status=202, headers=self._cors(request))

    async def _page(self, request: web.Request) -> web.Response:
        html = self.pages.get(request.match_info["name"])
        if html is None:
            raise web.HTTPNotFound()
        return web.Response(text=html, content_type="text/html")
