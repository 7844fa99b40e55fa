"""Serves the JavaScript SDK at ``GET /sdk/refract.js``: minified once per process, with an ETag.

The snippet's URL carries no version, so browsers may cache it only briefly (a new SDK reaches every
page within ``CACHE_MAX_AGE_S``) and revalidate cheaply with ``If-None-Match`` afterwards.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

import rjsmin
from aiohttp import web

SDK_PATH = "/sdk/refract.js"
CACHE_MAX_AGE_S = 300


@dataclass(frozen=True, slots=True)
class SdkBundle:
    """The SDK as written, as served (minified), and the served form's entity tag."""

    source: bytes
    minified: bytes
    etag: str

    @property
    def gzipped_size(self) -> int:
        return len(gzip.compress(self.minified, compresslevel=9))


def minify(source: bytes) -> bytes:
    """Strip comments and whitespace; ``/*! ... */`` comments (the licence line) are kept."""
    text: str = rjsmin.jsmin(source.decode("utf-8"), keep_bang_comments=True)
    return text.encode("utf-8")


@functools.cache
def sdk_bundle() -> SdkBundle:
    source = resources.files("api").joinpath("sdk/refract.js").read_bytes()
    minified = minify(source)
    # weak: the same entity may be sent gzipped or not, which a strong tag would have to tell apart
    etag = 'W/"' + hashlib.sha256(minified).hexdigest()[:32] + '"'
    return SdkBundle(source=source, minified=minified, etag=etag)


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


async def get_sdk(request: web.Request) -> web.StreamResponse:
    bundle = sdk_bundle()
    headers = {
        "ETag": bundle.etag,
        "Cache-Control": f"public, max-age={CACHE_MAX_AGE_S}",
        "Vary": "Accept-Encoding",
    }
    if _matches(request.headers.get("If-None-Match", ""), bundle.etag):
        return web.Response(status=304, headers=headers)
    response = web.Response(
        body=bundle.minified, content_type="application/javascript", charset="utf-8", headers=headers
    )
    response.enable_compression()  # gzip or deflate when the browser accepts it
    return response


def install_sdk(router: web.UrlDispatcher) -> None:
    """Add the public SDK route (no API key: the page's snippet loads it)."""
    router.add_get(SDK_PATH, get_sdk)
