"""``/v1/segments``: save, read, list and delete segment definitions (scope ``admin``).

A saved segment is a ``Definition`` on ``refract.definitions``; every worker follows that topic
(``streams.definitions``) and evaluates the new version from the next event on. A rule that cannot
be read, or that would close an ``in_segment`` loop, is refused here, so workers never see one.
Each PUT makes a new version. The answer is sent once this worker has read the new version back,
so a GET right after a PUT sees it.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from api.errors import ApiError
from engine.errors import ValidationError
from engine.segments import check_no_cycles
from engine.segments.definition import (
    SEGMENT_KIND,
    check_segment_id,
    segment_body,
    segment_from_body,
)
from streams.definitions import DefinitionsReader, definition_record

if TYPE_CHECKING:
    from api.server import Api

# How long a write waits to be read back by this worker before answering anyway.
READ_BACK_TIMEOUT_S = 10.0


class SegmentsApi:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.worker = api.worker

    @property
    def definitions(self) -> DefinitionsReader:
        return self.worker.definitions

    def _segment_id(self, request: web.Request) -> str:
        return check_segment_id(request.match_info["segment_id"], "segment_id")

    async def list_segments(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        segments = self.definitions.segments
        return web.json_response({"segments": [segments[s].as_json() for s in sorted(segments)]})

    async def get_segment(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        segment_id = self._segment_id(request)
        segment = self.definitions.segments.get(segment_id)
        if segment is None:
            raise ApiError(404, "segment_not_found", f"no segment with id {segment_id!r}")
        answer = segment.as_json()
        # Existing customers being evaluated for new or changed segments, on this worker.
        answer["evaluating_existing_customers"] = {
            str(partition): evaluated
            for partition, evaluated in self.worker.processor.backfill_progress().items()
        }
        return web.json_response(answer)

    async def put_segment(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        segment_id = self._segment_id(request)
        body = await self.api._json(request)
        if not isinstance(body, dict):
            raise ValidationError("send the segment as a JSON object with name, description and rule")
        if "id" in body and body["id"] != segment_id:
            raise ValidationError(f"id: the body says {body['id']!r} but the path says {segment_id!r}", "id")
        latest = self.definitions.latest(SEGMENT_KIND, segment_id)
        version = (latest.version if latest is not None else 0) + 1
        segment = segment_from_body(segment_id, version, body)
        rules = {s: d.rule for s, d in self.definitions.segments.items()}
        rules[segment_id] = segment.rule
        check_no_cycles(rules)
        await self._save(segment_id, version, segment_body(body), deleted=False)
        saved = self.definitions.segments.get(segment_id)
        answer = saved.as_json() if saved is not None and saved.version == version else segment.as_json()
        created = latest is None or latest.deleted
        return web.json_response(answer, status=201 if created else 200)

    async def delete_segment(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        segment_id = self._segment_id(request)
        latest = self.definitions.latest(SEGMENT_KIND, segment_id)
        if latest is None or latest.deleted:
            raise ApiError(404, "segment_not_found", f"no segment with id {segment_id!r}")
        readers = sorted(
            s
            for s, d in self.definitions.segments.items()
            if s != segment_id and segment_id in d.rule.inputs.segments
        )
        version = latest.version + 1
        await self._save(segment_id, version, orjson.loads(latest.body), deleted=True)
        return web.json_response({"id": segment_id, "version": version, "deleted": True, "read_by": readers})

    async def _save(self, segment_id: str, version: int, body: dict[str, Any], *, deleted: bool) -> None:
        record = definition_record(
            self.worker.topics.definitions,
            SEGMENT_KIND,
            segment_id,
            version,
            body,
            deleted=deleted,
            now_ms=int(time.time() * 1000),
        )
        await self.worker.producer.send_batch([record])
        deadline = time.monotonic() + READ_BACK_TIMEOUT_S
        while time.monotonic() < deadline:
            latest = self.definitions.latest(SEGMENT_KIND, segment_id)
            if latest is not None and latest.version >= version:
                # The index is rebuilt right after the record is taken in.
                for _ in range(100):
                    current = self.definitions.segments.get(segment_id)
                    if deleted == (current is None) or (current is not None and current.version >= version):
                        return
                    await asyncio.sleep(0.01)
                return
            await asyncio.sleep(0.02)


def install_segments(router: web.UrlDispatcher, api: Api) -> SegmentsApi:
    segments = SegmentsApi(api)
    router.add_get("/v1/segments", segments.list_segments)
    router.add_get("/v1/segments/{segment_id}", segments.get_segment)
    router.add_put("/v1/segments/{segment_id}", segments.put_segment)
    router.add_delete("/v1/segments/{segment_id}", segments.delete_segment)
    return segments
