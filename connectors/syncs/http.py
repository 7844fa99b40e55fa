"""A URL source: the file downloaded (streamed to disk) with the sync's Basic or Bearer credentials.

The password or token is read from the environment variable the sync names, at each fetch; it
is sent in the Authorization header only and never appears in errors or logs (messages name the
variable, not its value).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from connectors.csv import BasicAuth, BearerAuth, UrlSource
from connectors.syncs.errors import (
    SourceCredentialsMissing,
    SourceRefusedCredentials,
    SourceUnavailable,
)

_CHUNK_BYTES = 1 << 20


async def fetch(source: UrlSource, destination: Path, *, environ: Mapping[str, str], timeout_s: float) -> int:
    """Download ``source.url`` to ``destination``; returns the number of bytes written.

    ``timeout_s`` bounds the whole download. Raises ``SourceCredentialsMissing`` when the
    credentials' variable is unset, ``SourceRefusedCredentials`` on 401/403 and
    ``SourceUnavailable`` on any other failure.
    """
    headers = _credentials(source, environ)
    where = _printable(source.url)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(source.url, headers=headers) as answer,
        ):
            if answer.status in (401, 403):
                raise SourceRefusedCredentials(_refused(source, answer.status, answer.reason))
            if answer.status != 200:
                raise SourceUnavailable(
                    f"the source {where} answered {answer.status} {answer.reason or ''}".rstrip()
                )
            size = 0
            with open(destination, "wb") as handle:
                async for chunk in answer.content.iter_chunked(_CHUNK_BYTES):
                    handle.write(chunk)
                    size += len(chunk)
            return size
    except TimeoutError:
        raise SourceUnavailable(f"the source {where} did not send the file within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise SourceUnavailable(f"the source {where} could not be read: {exc}") from None


def _credentials(source: UrlSource, environ: Mapping[str, str]) -> dict[str, str]:
    """The Authorization header of ``source``, its secret read from ``environ`` now."""
    auth = source.auth
    if isinstance(auth, BasicAuth):
        password = environ.get(auth.password_env)
        if password is None:
            raise SourceCredentialsMissing(
                f"the environment variable {auth.password_env} (the source's password) is not set"
                " on this worker"
            )
        pair = base64.b64encode(f"{auth.username}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {pair}"}
    if isinstance(auth, BearerAuth):
        token = environ.get(auth.token_env)
        if token is None:
            raise SourceCredentialsMissing(
                f"the environment variable {auth.token_env} (the source's token) is not set on this worker"
            )
        return {"Authorization": f"Bearer {token}"}
    return {}


def _refused(source: UrlSource, status: int, reason: str | None) -> str:
    answered = f"the source answered {status} {reason or ('Unauthorized' if status == 401 else 'Forbidden')}"
    auth = source.auth
    if isinstance(auth, BasicAuth):
        return f"{answered}: check {auth.password_env} (and the username {auth.username!r})"
    if isinstance(auth, BearerAuth):
        return f"{answered}: check {auth.token_env}"
    return f"{answered}: it needs credentials; add source.auth to the sync"


def _printable(url: str) -> str:
    """The URL without its query string (which may carry a signature or a key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
