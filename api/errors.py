"""The one place that maps errors to HTTP responses: JSON {"error": {"code", "message"}}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from engine.errors import InfrastructureError, RefractError, ValidationError

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(RefractError):
    """An error answered with a given HTTP status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field
        self.headers = headers


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status, headers=headers)


def body_too_large(request: web.Request) -> web.Response:
    return error_response(
        413,
        "body_too_large",
        f"the request body is larger than the limit of {request.client_max_size} bytes; send smaller batches",
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)
    except ValidationError as exc:
        return error_response(400, exc.code, exc.message, exc.field)
    except InfrastructureError as exc:
        log.warning("http.unavailable", path=request.path, code=exc.code)
        return error_response(503, exc.code, exc.message, headers={"Retry-After": "1"})
    except RefractError as exc:
        return error_response(400, exc.code, exc.message)
    except web.HTTPRequestEntityTooLarge:
        return body_too_large(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason, headers=None)
    except Exception:
        log.exception("http.internal_error", path=request.path, method=request.method)
        return error_response(500, "internal_error", "an internal error happened; it was logged")
