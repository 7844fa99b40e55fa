"""A local HTTP file server in a background thread, for URL sync sources: Basic or Bearer auth.

``FileServer(username=..., password=...)`` answers ``GET /files/<name>`` with what ``put``
stored, 401 without the right credentials, 404 for an unknown name; ``fail_next(status)``
makes the next request answer that status, and ``delay_s`` holds every answer that long.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from types import TracebackType

from aiohttp import web


class FileServer:
    def __init__(
        self, *, username: str | None = None, password: str | None = None, token: str | None = None
    ) -> None:
        self.username, self.password, self.token = username, password, token
        self.files: dict[str, bytes] = {}
        self.requests = 0
        self.failures: list[int] = []
        self.delay_s = 0.0
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/files/{name}"

    def put(self, name: str, content: bytes) -> None:
        self.files[name] = content

    def fail_next(self, status: int) -> None:
        self.failures.append(status)

    def __enter__(self) -> FileServer:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the file server did not start")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/files/{name}", self._get)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        if self.token is not None:
            return given == f"Bearer {self.token}"
        if self.username is not None:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return given == f"Basic {expected}"
        return True

    async def _get(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failures:
            return web.Response(status=self.failures.pop(0))
        if not self._authorized(request):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="files"'})
        content = self.files.get(request.match_info["name"])
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="text/csv")
