"""The routes of a worker's HTTP surface, installed on faust's aiohttp application."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import aiohttp
import orjson
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import Authenticator
from api.campaigns import install_campaigns
from api.cors import CorsPolicy, allowed_origins
from api.customer_view import customer_json
from api.decisions import install_decisions
from api.errors import ApiError, error_response, errors_middleware
from api.feedback import install_feedback
from api.imports import install_imports
from api.openapi import install_openapi
from api.payloads import EnvelopeFactory, customer_id
from api.referrals import install_referrals
from api.sdk_route import install_sdk
from api.segments import install_segments
from api.syncs import install_syncs
from engine.events import CustomerErased, Envelope
from engine.state import from_document
from schemas.codec import encode_envelope
from streams import metrics
from streams.app import Worker
from streams.customer_store import CUSTOMERS_TABLE
from streams.partitions import partition_for
from streams.producer import OutRecord

log = structlog.get_logger(__name__)

FORWARDED_HEADER = "X-Refract-Forwarded"


class Api:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        settings = worker.settings
        self.auth = Authenticator(
            settings.api_keys,
            rate_per_s=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
            cors_origins=settings.cors_origins,
        )
        self.envelopes = EnvelopeFactory("api", worker.clock_ms)
        self._http: aiohttp.ClientSession | None = None

    # --- helpers ------------------------------------------------------------------------------

    async def _json(self, request: web.Request) -> Any:
        if request.content_type not in ("application/json", ""):
            raise ApiError(415, "unsupported_media_type", "send the body as application/json")
        if request.content_length is not None and request.content_length > request.client_max_size:
            raise web.HTTPRequestEntityTooLarge(request.client_max_size, request.content_length)
        raw = await request.read()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None

    async def _append(self, envelopes: Sequence[Envelope]) -> None:
        """Append events to refract.events and return once Kafka acknowledged all of them."""
        topic = self.worker.topics.events
        records = [OutRecord(topic, e.customer_id.encode("utf-8"), encode_envelope(e)) for e in envelopes]
        await self.worker.producer.send_batch(records)

    def _accepted(self, envelopes: Sequence[Envelope]) -> web.Response:
        return web.json_response(
            {"accepted": len(envelopes), "event_ids": [e.event_id for e in envelopes]}, status=202
        )

    # --- operations -------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready, reason = self.worker.is_ready()
        if not ready:
            return error_response(503, "not_ready", f"the worker is not ready yet: {reason}")
        return web.json_response({"status": "ready", "partitions": sorted(self.worker.events_partitions())})

    async def metrics(self, request: web.Request) -> web.Response:
        # ``?name[]=refract_events_processed_total``: only those series, as prometheus_client's own
        # exposition allows (cheap enough to poll often; the whole text grows with campaigns).
        names = request.query.getall("name[]", [])
        registry = metrics.REGISTRY.restricted_registry(names) if names else metrics.REGISTRY
        return web.Response(
            body=generate_latest(registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    # --- events and customers -------------------------------------------------------------

    async def post_events(self, request: web.Request) -> web.Response:
        self.auth.require(request, "events:write")
        envelopes = self.envelopes.events(await self._json(request))
        await self._append(envelopes)
        return self._accepted(envelopes)

    async def post_customers(self, request: web.Request) -> web.Response:
        self.auth.require(request, "customers:write")
        envelopes = self.envelopes.customers(await self._json(request))
        await self._append(envelopes)
        return self._accepted(envelopes)

    async def delete_customer(self, request: web.Request) -> web.Response:
        self.auth.require(request, "customers:write")
        customer = customer_id(request.match_info["customer_id"], "customer_id")
        envelope = self.envelopes.envelope(customer, CustomerErased(reason="api"))
        await self._append([envelope])
        return self._accepted([envelope])

    async def get_customer(self, request: web.Request) -> web.StreamResponse:
        self.auth.require(request, "customers:read")
        customer = customer_id(request.match_info["customer_id"], "customer_id")
        partition = partition_for(customer, self.worker.settings.partitions)
        if partition in self.worker.events_partitions():
            ready, reason = self.worker.is_ready()
            if not ready:
                raise ApiError(503, "not_ready", f"the worker is not ready yet: {reason}")
            raw = self.worker.store.read(partition, customer.encode("utf-8"))
            if raw is None:
                raise ApiError(404, "customer_not_found", f"no customer with id {customer!r}")
            state = from_document(orjson.loads(raw))
            return web.json_response(customer_json(state, with_behaviour=_includes(request, "behaviour")))
        return await self._forward(request, partition)

    async def _forward(
        self, request: web.Request, partition: int, body: bytes | None = None
    ) -> web.StreamResponse:
        """Ask the worker that owns ``partition`` (a request is forwarded at most once).

        ``body``: the request body already read (POSTs), sent on with its content type.
        """
        owner = self._owner_url(partition)
        if owner is None or request.headers.get(FORWARDED_HEADER):
            raise ApiError(
                503,
                "partition_unavailable",
                f"no worker owns partition {partition} right now (rebalancing); retry shortly",
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
        headers[FORWARDED_HEADER] = "1"
        if body is not None:
            headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        url = owner.rstrip("/") + request.rel_url.path_qs
        try:
            async with self.http().request(request.method, url, headers=headers, data=body) as answer:
                body = await answer.read()
                return web.Response(body=body, status=answer.status, content_type=answer.content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(
                503, "owner_unreachable", f"the worker owning partition {partition} did not answer: {exc}"
            ) from None

    def http(self) -> aiohttp.ClientSession:
        """The session this worker asks other workers with (made on first use)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    def _owner_url(self, partition: int) -> str | None:
        changelog = self.worker.store.changelog_topic
        try:
            hosts = self.worker.app.router.table_metadata(CUSTOMERS_TABLE)
        except KeyError:
            return None
        for url, topics in hosts.items():
            if partition in topics.get(changelog, ()):
                return str(url)
        return None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


def _includes(request: web.Request, part: str) -> bool:
    """Whether ``?include=a,b`` names ``part`` (optional parts of an answer)."""
    return part in request.query.get("include", "").split(",")


def install(worker: Worker, web_driver: Any) -> Api:
    """Add Refract's routes and middlewares to faust's aiohttp application."""
    app: web.Application = web_driver.web_app
    api = Api(worker)
    app.middlewares.append(_metrics_middleware)
    # Outside the errors middleware, so that error answers carry CORS headers too.
    app.middlewares.append(CorsPolicy(allowed_origins(worker.settings)).middleware)
    app.middlewares.append(errors_middleware)
    router = app.router
    router.add_get("/healthz", api.healthz)
    router.add_get("/readyz", api.readyz)
    router.add_get("/metrics", api.metrics)
    router.add_post("/v1/events", api.post_events)
    router.add_post("/v1/customers", api.post_customers)
    router.add_get("/v1/customers/{customer_id}", api.get_customer)
    router.add_delete("/v1/customers/{customer_id}", api.delete_customer)
    install_imports(router, api.auth, worker)
    install_syncs(router, api)
    install_segments(router, api)
    install_campaigns(router, api)
    decisions = install_decisions(router, api)
    install_feedback(router, api)
    install_referrals(router, api)
    install_openapi(router)
    install_sdk(router)

    async def _close(_: web.Application) -> None:
        decisions.audit.flush()  # before the producer closes (ops.runtime)
        await api.close()

    app.on_cleanup.append(_close)
    return api


@web.middleware
async def _metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "none"
    _requests_counted(route, response.status).inc()
    return response


@cache
def _requests_counted(route: str, status: int) -> Any:
    # The series of a route and status, looked up once: ``labels`` takes a lock and builds a key
    # per call (~3% of a decision's CPU). Routes are canonical paths, so the cache stays small.
    return metrics.HTTP_REQUESTS.labels(route, str(status))
