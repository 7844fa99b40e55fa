"""``GET /v1/syncs/{sync}/runs``: the recorded runs of a scheduled sync, newest first.

A sync is run by the worker that owns its events partition (``engine.syncs.sync_partition``),
which records each run in its data folder; a request reaching another worker is forwarded to the
owner (once), so the answer is the owner's records. Scope ``imports:write``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from api.errors import ApiError
from api.imports import ID_PATTERN, SYNCS_FOLDER
from connectors.syncs import SyncRecords
from engine.syncs import sync_partition

if TYPE_CHECKING:
    from api.server import Api

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


class SyncsApi:
    def __init__(self, api: Api) -> None:
        self.api = api

    async def get_runs(self, request: web.Request) -> web.StreamResponse:
        self.api.auth.require(request, "imports:write")
        worker = self.api.worker
        sync_id = request.match_info["sync"]
        if not ID_PATTERN.match(sync_id):
            raise ApiError(400, "invalid_input", f"{sync_id!r} is not a sync id", field="sync")
        limit = _limit(request)
        data_dir = worker.settings.data_dir
        if not (data_dir / SYNCS_FOLDER / f"{sync_id}.yaml").is_file():
            raise ApiError(404, "sync_not_found", f"no sync {sync_id!r} on this worker")
        partition = sync_partition(sync_id, worker.settings.partitions)
        if partition not in worker.events_partitions():
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
    router.add_get("/v1/syncs/{sync}/runs", syncs.get_runs)
    return syncs
