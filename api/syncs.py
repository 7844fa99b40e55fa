"""``/v1/syncs``: save, read, list and delete syncs (scope ``admin``), and a sync's recorded runs.

A saved sync is a ``Definition`` (``sync:<id>``) on ``refract.definitions``, in its canonical JSON
form (``connectors.syncs.definition``); every worker follows that topic, so ``POST
/v1/imports/{id}`` and the scheduler use the new version at once. A body that does not validate is
refused with the path of the wrong field (``columns[3].type``), so workers never meet one. A PUT
whose sync is the same as the saved one saves nothing and keeps its version.

``GET /v1/syncs/{sync}/runs`` (scope ``imports:write``) lists the runs of a scheduled sync, newest
first. A sync is run by the worker that owns its events partition (``engine.syncs.sync_partition``),
which records each run in its data folder; a request reaching another worker is forwarded to the
owner (once), so the answer is the owner's records.

Syncs that are only YAML files in ``<data_dir>/syncs`` (before syncs were definitions) are still
imported with and run, but are not listed here: ``refract apply`` them to manage them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from api.definitions import save_definition
from api.errors import ApiError
from api.imports import ID_PATTERN, unknown_sync_message
from connectors.csv import to_body
from connectors.syncs import SyncRecords
from connectors.syncs.definition import SYNC_KIND, SyncDefinition, sync_body, sync_file, sync_from_body
from engine.errors import ValidationError
from engine.syncs import sync_partition

if TYPE_CHECKING:
    from api.server import Api

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


class SyncsApi:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.worker = api.worker

    def _sync_id(self, request: web.Request) -> str:
        sync_id = request.match_info["sync"]
        if not ID_PATTERN.match(sync_id):
            raise ApiError(400, "invalid_input", f"{sync_id!r} is not a sync id", field="sync")
        return sync_id

    def _stored(self) -> dict[str, SyncDefinition]:
        return dict(self.worker.definitions.syncs)

    async def list_syncs(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        stored = self._stored()
        return web.json_response({"syncs": [stored[s].as_json() for s in sorted(stored)]})

    async def get_sync(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        sync_id = self._sync_id(request)
        stored = self._stored().get(sync_id)
        if stored is None:
            raise ApiError(404, "sync_not_found", unknown_sync_message(sync_id))
        return web.json_response(stored.as_json())

    async def put_sync(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        sync_id = self._sync_id(request)
        document = await self.api._json(request)
        if not isinstance(document, dict):
            raise ValidationError("send the sync as a JSON object (the YAML form of docs/imports.md)")
        body = sync_body(document, sync_id)
        current = self._stored().get(sync_id)
        if current is not None and to_body(current.sync) == body:
            return web.json_response(current.as_json())  # the same sync: no new version
        latest = self.worker.definitions.latest(SYNC_KIND, sync_id)
        version = (latest.version if latest is not None else 0) + 1
        await self._save(sync_id, version, body, deleted=False)
        saved = self._stored().get(sync_id)
        if saved is None or saved.version != version:
            saved = sync_from_body(sync_id, version, body, self.worker.clock_ms())
        created = latest is None or latest.deleted
        return web.json_response(saved.as_json(), status=201 if created else 200)

    async def delete_sync(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        sync_id = self._sync_id(request)
        latest = self.worker.definitions.latest(SYNC_KIND, sync_id)
        if latest is None or latest.deleted:
            raise ApiError(404, "sync_not_found", unknown_sync_message(sync_id))
        version = latest.version + 1
        await self._save(sync_id, version, orjson.loads(latest.body), deleted=True)
        return web.json_response({"id": sync_id, "version": version, "deleted": True})

    async def _save(self, sync_id: str, version: int, body: dict[str, Any], *, deleted: bool) -> None:
        def compiled() -> int | None:
            current = self.worker.definitions.syncs.get(sync_id)
            return None if current is None else current.version

        await save_definition(
            self.worker, SYNC_KIND, sync_id, version, body, deleted=deleted, compiled_version=compiled
        )

    async def get_runs(self, request: web.Request) -> web.StreamResponse:
        self.api.auth.require(request, "imports:write")
        sync_id = self._sync_id(request)
        limit = _limit(request)
        data_dir = self.worker.settings.data_dir
        if sync_id not in self._stored() and not sync_file(data_dir, sync_id).is_file():
            raise ApiError(404, "sync_not_found", unknown_sync_message(sync_id))
        partition = sync_partition(sync_id, self.worker.settings.partitions)
        if partition not in self.worker.events_partitions():
            return await self.api._forward(request, partition)
        runs = SyncRecords.of(data_dir, sync_id).recent(limit)
        return web.json_response({"sync_id": sync_id, "runs": [run.to_json() for run in runs]})


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_input", f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def install_syncs(router: web.UrlDispatcher, api: Api) -> SyncsApi:
    syncs = SyncsApi(api)
    router.add_get("/v1/syncs", syncs.list_syncs)
    router.add_get("/v1/syncs/{sync}", syncs.get_sync)
    router.add_put("/v1/syncs/{sync}", syncs.put_sync)
    router.add_delete("/v1/syncs/{sync}", syncs.delete_sync)
    router.add_get("/v1/syncs/{sync}/runs", syncs.get_runs)
    return syncs
