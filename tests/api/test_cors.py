"""CORS: only the public paths answer browsers, and only for the origins configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.auth import mint_key
from api.cors import CorsPolicy, allowed_origins
from api.errors import errors_middleware
from engine.settings import Settings

SHOP = "https://shop.example"
Client = TestClient[web.Request, web.Application]


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def refuse(request: web.Request) -> web.Response:
    raise web.HTTPTooManyRequests()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = web.Application(middlewares=[CorsPolicy({SHOP}).middleware, errors_middleware])
    app.router.add_post("/v1/decisions", ok)
    app.router.add_post("/v1/interactions", refuse)
    app.router.add_post("/v1/events", ok)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_a_preflight_from_a_configured_origin_is_allowed_for_a_public_path(client: Client) -> None:
    answer = await client.options("/v1/decisions", headers=preflight(SHOP))
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in answer.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in answer.headers


async def test_a_preflight_from_another_origin_is_refused_without_cors_headers(client: Client) -> None:
    answer = await client.options("/v1/decisions", headers=preflight("https://evil.example"))
    assert answer.status == 403
    assert (await answer.json())["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_a_public_answer_names_the_allowed_origin_never_a_wildcard(client: Client) -> None:
    answer = await client.post("/v1/decisions", json={}, headers={"Origin": SHOP})
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP
    assert answer.headers["Vary"] == "Origin"
    other = await client.post("/v1/decisions", json={}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_error_answers_of_public_paths_carry_cors_headers_so_the_sdk_can_read_them(
    client: Client,
) -> None:
    answer = await client.post("/v1/interactions", json={}, headers={"Origin": SHOP})
    assert answer.status == 429
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]


async def test_other_endpoints_send_no_cors_headers_even_to_a_configured_origin(client: Client) -> None:
    answer = await client.post("/v1/events", json={}, headers={"Origin": SHOP})
    assert answer.status == 200
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
    preflight_answer = await client.options("/v1/events", headers=preflight(SHOP))
    assert preflight_answer.status == 405
    assert "Access-Control-Allow-Origin" not in preflight_answer.headers


def test_allowed_origins_are_the_configured_ones_and_public_keys_own() -> None:
    public = mint_key({"decisions:read"}, public=True, origins=["https://app.example"]).setting
    settings = Settings(cors_origins=(SHOP,), api_keys=(public, mint_key({"admin"}).setting))
    assert allowed_origins(settings) == {SHOP, "https://app.example"}
