"""GET /sdk/refract.js: the SDK minified, small, cacheable and revalidated by its ETag."""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.sdk_route import SDK_PATH, install_sdk, sdk_bundle
from ops.sdk_size import TARGET_GZIPPED_BYTES
from ops.sdk_size import main as sdk_size

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = web.Application()
    install_sdk(app.router)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_the_sdk_is_served_minified_as_javascript_with_cache_headers(client: Client) -> None:
    response = await client.get(SDK_PATH, headers={"Accept-Encoding": "identity"})
    assert response.status == 200
    assert response.content_type == "application/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["ETag"] == sdk_bundle().etag
    body = await response.read()
    assert body == sdk_bundle().minified
    assert body.startswith(b"/*! Refract SDK"), "the licence comment stays"
    assert b"\n  " not in body, "indentation is gone"


async def test_a_matching_if_none_match_gets_304_without_a_body(client: Client) -> None:
    etag = sdk_bundle().etag
    for presented in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        response = await client.get(SDK_PATH, headers={"If-None-Match": presented})
        assert response.status == 304, presented
        assert await response.read() == b""
    stale = await client.get(SDK_PATH, headers={"If-None-Match": '"an-older-sdk"'})
    assert stale.status == 200


async def test_the_sdk_is_gzipped_for_browsers_that_accept_it(client: Client) -> None:
    response = await client.get(SDK_PATH, headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await response.read()) == sdk_bundle().minified
    for refusing in ("identity", "gzip;q=0, deflate"):
        plain = await client.get(SDK_PATH, headers={"Accept-Encoding": refusing}, auto_decompress=False)
        assert "Content-Encoding" not in plain.headers
        assert await plain.read() == sdk_bundle().minified


def test_the_minified_and_gzipped_sdk_is_under_8_kb() -> None:
    bundle = sdk_bundle()
    assert len(bundle.minified) < 0.8 * len(bundle.source)
    assert bundle.gzipped_size < TARGET_GZIPPED_BYTES


def test_refract_sdk_size_prints_the_three_sizes() -> None:
    out = io.StringIO()
    assert sdk_size(out) == 0
    text = out.getvalue()
    assert re.search(rf"raw +{len(sdk_bundle().source)} B", text)
    assert re.search(rf"minified +{len(sdk_bundle().minified)} B", text)
    assert re.search(rf"gzipped +{sdk_bundle().gzipped_size} B", text)
