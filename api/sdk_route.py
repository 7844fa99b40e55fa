"""Serves the JavaScript SDK at ``GET /sdk/refract.js``: minified and gzipped once per process, with an ETag.

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
    """The SDK as written, as served (minified, and that gzipped), and the served form's entity tag."""

    source: bytes
    minified: bytes
    gzipped: bytes
    etag: str

    @property
    def gzipped_size(self) -> int:
        return len(self.gzipped)


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
    gzipped = gzip.compress(minified, compresslevel=9, mtime=0)
    return SdkBundle(source=source, minified=minified, gzipped=gzipped, etag=etag)


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
    body = bundle.minified
    if _accepts_gzip(request.headers.get("Accept-Encoding", "")):
        body = bundle.gzipped  # compressed once per process, not per request
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, content_type="application/javascript", charset="utf-8", headers=headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def install_sdk(router: web.UrlDispatcher) -> None:
    """Add the public SDK route (no API key: the page's snippet loads it)."""
    router.add_get(SDK_PATH, get_sdk)
