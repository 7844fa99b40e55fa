"""Talking to a running worker's API from the command line: where it is, which key, one request.

The API is ``--api`` or ``REFRACT_API_URL`` or the configured web address (``web_host:web_port``);
the key is ``--api-key`` or ``REFRACT_API_KEY`` or the dev admin key ``refract up`` keeps in the
data folder. Errors come back as RefractError with the API's own message.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import ConfigurationError, InfrastructureError, RefractError
from engine.settings import Settings
from ops.runtime import DEV_KEY_FILE

TIMEOUT_S = 60.0


class ApiRequestFailed(RefractError):
    """The API answered with an error; ``status`` is the HTTP status, ``code`` the API's code."""

    code = "api_error"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ByteSink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(slots=True, frozen=True)
class ApiEndpoint:
    url: str
    key: str

    def request(
        self, method: str, path: str, *, body: bytes | None = None, content_type: str = "application/json"
    ) -> Any:
        """The decoded JSON answer of one request. Raises ApiRequestFailed or InfrastructureError."""
        request = urllib.request.Request(self.url.rstrip("/") + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                payload = answer.read()
        except urllib.error.HTTPError as error:
            raise _api_error(error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise self._unreachable(exc) from None
        return json.loads(payload) if payload else None

    def _unreachable(self, exc: Exception) -> InfrastructureError:
        reason = getattr(exc, "reason", exc)
        return InfrastructureError(
            f"cannot reach the Refract API at {self.url} ({reason}); is a worker running?"
            " Give its address with --api or REFRACT_API_URL"
        )

    def download(self, path: str, sink: ByteSink, chunk_bytes: int = 1 << 16) -> int:
        """Copy a GET answer's body into ``sink`` as it arrives; the bytes copied.

        Raises ApiRequestFailed, or InfrastructureError when the API cannot be reached or the
        body ends before its end (the file is then not whole).
        """
        request = urllib.request.Request(self.url.rstrip("/") + path, method="GET")
        request.add_header("Authorization", f"Bearer {self.key}")
        copied = 0
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                while chunk := answer.read(chunk_bytes):
                    try:
                        sink.write(chunk)
                    except OSError as exc:
                        raise InfrastructureError(f"cannot write the answer: {exc.strerror or exc}") from None
                    copied += len(chunk)
        except urllib.error.HTTPError as error:
            raise _api_error(error.code, error.read()) from None
        except http.client.IncompleteRead:
            raise InfrastructureError(
                f"the download from {self.url} broke off after {copied:,} bytes; what was written"
                " is not whole, run it again"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise self._unreachable(exc) from None
        return copied


def _api_error(status: int, payload: bytes) -> ApiRequestFailed:
    try:
        error = json.loads(payload)["error"]
        return ApiRequestFailed(status, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return ApiRequestFailed(status, "api_error", f"the API answered {status}")


def api_endpoint(settings: Settings, url: str | None = None, key: str | None = None) -> ApiEndpoint:
    """The API to call and the key to call it with (see the module docstring for the order)."""
    url = url or os.environ.get("REFRACT_API_URL") or settings.web_url
    key = key or os.environ.get("REFRACT_API_KEY")
    if not key:
        path = settings.data_dir / DEV_KEY_FILE
        if not path.is_file():
            raise ConfigurationError(
                "no API key: give one with --api-key or REFRACT_API_KEY (an admin key;"
                " 'refract up' keeps a dev key in the data folder)"
            )
        key = path.read_text(encoding="utf-8").strip()
    return ApiEndpoint(url, key)
