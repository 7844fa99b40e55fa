"""CORS for the public endpoints only: the ones the JavaScript SDK calls from customers' pages.

``PUBLIC_PATHS`` is the one list of them. For those paths the middleware answers preflight
``OPTIONS`` requests and adds ``Access-Control-Allow-Origin`` when the request's origin is one
configured (``cors_origins``, or a public key's ``origins``). It never answers ``*`` and never
allows credentials: the SDK sends its public key in a header, not cookies. Every other path
sends no CORS header at all, so browsers keep other sites away from the rest of the API.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from api.errors import Handler, error_response
from engine.settings import Settings

PUBLIC_PATHS = frozenset({"/v1/decisions", "/v1/interactions", "/v1/identify", "/sdk/refract.js"})
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Api-Key"
PREFLIGHT_MAX_AGE_S = 600


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The configured origins and every public key's own."""
    origins = set(settings.cors_origins)
    for key in settings.api_keys:
        if key.public:
            origins.update(key.origins)
    return frozenset(origins)


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origins)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS:
            return await handler(request)
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in self.origins
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                return error_response(
                    403,
                    "origin_not_allowed",
                    f"the origin {origin!r} may not call {request.path}; add it to cors_origins"
                    " or to the public key's origins",
                    headers={"Vary": "Origin"},
                )
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": str(origin),
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        # The answer depends on the Origin header: caches must keep one copy per origin.
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = str(origin)
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        return response
