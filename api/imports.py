"""The imports API: a CSV file posted to ``/v1/imports/{sync}`` is imported in the background.

``POST /v1/imports/{sync}`` (scope ``imports:write``; the CSV as the raw body, or the first file
of a ``multipart/form-data`` body) stores the upload under ``<data_dir>/imports/<import_id>/``,
answers 202 ``{"import_id": ...}`` and runs the import in a background task on this worker.
``GET /v1/imports/{id}`` tells its status (``running``, ``finished``, ``failed``) and counts;
``GET /v1/imports/{id}/errors.csv`` returns its error report. The sync is the one stored as a
definition (``refract apply``, ``PUT /v1/syncs/{id}``), else the file ``<data_dir>/syncs/<sync>.yaml``.

The import itself is run by an ``ImportRunner`` that the process starting the worker registers
with ``use_import_runner`` (``ops`` owns the runner; ``api`` may not import ``ops``). Without
one, ``POST`` answers 503 ``imports_unavailable``. Imports on one worker run one at a time (they
share the digest store); a finished import's status is read back from its ``result.json``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from api.auth import Authenticator
from api.errors import ApiError
from connectors.csv import Sync
from connectors.syncs.definition import SyncDefinition, find_sync
from engine.errors import RefractError
from streams.app import Worker

log = structlog.get_logger(__name__)

IMPORTS_FOLDER = "imports"
UPLOAD_FILE = "upload.csv"
RESULT_FILE = "result.json"
ERRORS_FILE = "errors.csv"
MAX_UPLOAD_BYTES = 4 * 1024**3
_CHUNK_BYTES = 1 << 20
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_ID = ID_PATTERN

Progress = Callable[[Mapping[str, Any]], None]
StoredSyncs = Callable[[], Mapping[str, SyncDefinition]]


class ImportRunner(Protocol):
    """Imports ``upload`` with ``sync`` under ``import_id``, writing its files in ``folder``.

    Returns the result's JSON form (counts, status); calls ``progress`` with partial counts as
    it goes; raises ``RefractError`` when the file is refused or the import fails.
    """

    def __call__(
        self, upload: Path, sync: Sync, *, import_id: str, folder: Path, progress: Progress
    ) -> Awaitable[Mapping[str, Any]]: ...


RunnerFactory = Callable[[Worker], ImportRunner]
_factory: RunnerFactory | None = None


def use_import_runner(factory: RunnerFactory) -> None:
    """Register how workers started by this process run imports (called before they start)."""
    global _factory
    _factory = factory


def new_import_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


class ImportsApi:
    """The views of ``/v1/imports``; ``runner`` None answers 503 to new imports.

    ``stored_syncs()`` gives the syncs stored as definitions (the worker's current ones).
    """

    def __init__(
        self,
        auth: Authenticator,
        data_dir: Path,
        runner: ImportRunner | None,
        stored_syncs: StoredSyncs = dict,
    ) -> None:
        self.auth = auth
        self.data_dir = data_dir
        self.runner = runner
        self.stored_syncs = stored_syncs
        self._running: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._one_at_a_time = asyncio.Lock()

    def install(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/imports/{sync}", self.post_import)
        router.add_get("/v1/imports/{import_id}", self.get_import)
        router.add_get("/v1/imports/{import_id}/errors.csv", self.get_errors)

    # --- views ---------------------------------------------------------------------------------

    async def post_import(self, request: web.Request) -> web.Response:
        self.auth.require(request, "imports:write")
        if self.runner is None:
            raise ApiError(503, "imports_unavailable", "this worker was started without an import runner")
        sync = self._sync(request.match_info["sync"])
        import_id = new_import_id()
        folder = self.data_dir / IMPORTS_FOLDER / import_id
        folder.mkdir(parents=True)
        upload = folder / UPLOAD_FILE
        try:
            await self._receive(request, upload)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._running[import_id] = {"import_id": import_id, "sync_id": sync.id, "status": "running"}
        task = asyncio.get_running_loop().create_task(self._run(upload, sync, import_id, folder))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("import.accepted", import_id=import_id, sync=sync.id, bytes=upload.stat().st_size)
        return web.json_response({"import_id": import_id, "status": "running"}, status=202)

    async def get_import(self, request: web.Request) -> web.Response:
        self.auth.require(request, "imports:write")
        import_id = self._import_id(request)
        running = self._running.get(import_id)
        if running is not None:
            return web.json_response(running)
        result = self._folder(import_id) / RESULT_FILE
        if not result.is_file():
            raise ApiError(404, "import_not_found", f"no import with id {import_id!r}")
        body = orjson.loads(result.read_bytes())
        body.pop("error_report", None)  # a path on the worker: the report is at errors.csv
        return web.json_response(body)

    async def get_errors(self, request: web.Request) -> web.StreamResponse:
        self.auth.require(request, "imports:write")
        import_id = self._import_id(request)
        report = self._folder(import_id) / ERRORS_FILE
        if not report.is_file():
            status = self._running.get(import_id, {}).get("status")
            if status == "running":
                raise ApiError(409, "import_running", "the error report is written as the import runs")
            raise ApiError(404, "import_not_found", f"no error report for an import {import_id!r}")
        return web.FileResponse(
            report,
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{import_id}-errors.csv"',
            },
        )

    # --- helpers -------------------------------------------------------------------------------

    def _sync(self, name: str) -> Sync:
        if not _ID.match(name):
            raise ApiError(400, "invalid_input", f"{name!r} is not a sync id", field="sync")
        sync = find_sync(self.stored_syncs(), self.data_dir, name)  # a bad file: 400 invalid_sync
        if sync is None:
            raise ApiError(404, "sync_not_found", unknown_sync_message(name))
        return sync

    def _import_id(self, request: web.Request) -> str:
        import_id = request.match_info["import_id"]
        if not _ID.match(import_id):
            raise ApiError(404, "import_not_found", f"no import with id {import_id!r}")
        return import_id

    def _folder(self, import_id: str) -> Path:
        return self.data_dir / IMPORTS_FOLDER / import_id

    async def _receive(self, request: web.Request, upload: Path) -> None:
        """Stream the CSV (raw body, or the first file part of a multipart body) to ``upload``."""
        try:
            await self._stream(request, upload)
        except (ValueError, HttpProcessingError) as exc:  # aiohttp's answers to a malformed multipart body
            raise ApiError(
                400, "invalid_input", f"the multipart body cannot be read: {exc}", "file"
            ) from None

    async def _stream(self, request: web.Request, upload: Path) -> None:
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and not (isinstance(part, BodyPartReader) and part.filename):
                part = await reader.next()
            if part is None:
                raise ApiError(400, "invalid_input", "the multipart body has no file part", field="file")
            assert isinstance(part, BodyPartReader)
            read: Callable[[int], Awaitable[bytes]] = part.read_chunk
        else:
            read = request.content.read
        size = 0
        with open(upload, "wb") as handle:
            while True:
                chunk = await read(_CHUNK_BYTES)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise ApiError(413, "body_too_large", f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
                handle.write(chunk)
        if size == 0:
            raise ApiError(400, "invalid_input", "the body is empty; send the CSV file", field="file")

    async def _run(self, upload: Path, sync: Sync, import_id: str, folder: Path) -> None:
        assert self.runner is not None
        state = self._running[import_id]

        def progress(counts: Mapping[str, Any]) -> None:
            self._running[import_id] = {**state, **counts, "status": "running"}

        try:
            async with self._one_at_a_time:
                result = await self.runner(
                    upload, sync, import_id=import_id, folder=folder, progress=progress
                )
            final = {**result}
        except RefractError as exc:
            final = {**self._running[import_id], "status": "failed", "code": exc.code, "message": exc.message}
        except Exception as exc:
            log.exception("import.crashed", import_id=import_id)
            final = {
                **self._running[import_id],
                "status": "failed",
                "code": "internal_error",
                "message": str(exc),
            }
        final.pop("error_report", None)
        if final.get("status") == "failed":
            # A refused file has no result.json of the runner's: keep the failure readable.
            (folder / RESULT_FILE).write_bytes(orjson.dumps(final, option=orjson.OPT_INDENT_2))
        self._running.pop(import_id, None)
        upload.unlink(missing_ok=True)


def unknown_sync_message(sync_id: str) -> str:
    return f"no sync {sync_id!r}: save it with 'refract apply' (a syncs: list) or PUT /v1/syncs/{sync_id}"


def install_imports(router: web.UrlDispatcher, auth: Authenticator, worker: Worker) -> ImportsApi:
    """Add the imports views; the runner comes from ``use_import_runner`` (none: 503)."""
    runner = _factory(worker) if _factory is not None else None
    imports = ImportsApi(auth, worker.settings.data_dir, runner, lambda: worker.definitions.syncs)
    imports.install(router)
    return imports
