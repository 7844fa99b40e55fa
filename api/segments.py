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

import aiohttp
import orjson
from aiohttp import web

from api.errors import ApiError
from api.segment_export import install_segment_export
from api.static_segments import install_static_segments
from engine.errors import ValidationError
from engine.segments import check_no_cycles
from engine.segments.definition import (
    SEGMENT_KIND,
    check_segment_id,
    segment_body,
    segment_from_body,
)
from streams.customer_store import CUSTOMERS_TABLE
from streams.definitions import DefinitionsReader, definition_record

if TYPE_CHECKING:
    from api.server import Api

FORWARDED_HEADER = "X-Refract-Forwarded"
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
        answer.update(await self._members(request, segment_id))
        # Existing customers being evaluated for new or changed segments, on this worker.
        answer["evaluating_existing_customers"] = {
            str(partition): evaluated
            for partition, evaluated in self.worker.processor.backfill_progress().items()
        }
        return web.json_response(answer)

    async def _members(self, request: web.Request, segment_id: str) -> dict[str, Any]:
        """``members`` over every worker, ``members_by_partition``, and any partition no one answered for.

        Each worker knows the counts of the partitions it owns (``streams.segment_counts``); a
        request forwarded from another worker answers with its own partitions only.
        """
        by_partition: dict[int, int] = {}
        if self.worker.is_ready()[0]:
            counts = self.worker.processor.segment_counts
            for partition in self.worker.events_partitions():
                by_partition[partition] = counts.counts(partition).get(segment_id, 0)
        if not request.headers.get(FORWARDED_HEADER):
            for answer in await asyncio.gather(
                *(self._ask(url, request) for url in self._other_workers()), return_exceptions=False
            ):
                for partition, members in answer.items():
                    by_partition.setdefault(partition, members)
        result: dict[str, Any] = {
            "members": sum(by_partition.values()),
            "members_by_partition": {str(p): by_partition[p] for p in sorted(by_partition)},
        }
        missing = sorted(set(range(self.worker.settings.partitions)) - set(by_partition))
        if missing and not request.headers.get(FORWARDED_HEADER):
            result["members_missing_partitions"] = missing  # a worker did not answer: a lower bound
        return result

    def _other_workers(self) -> list[str]:
        own = str(self.worker.app.conf.canonical_url).rstrip("/")
        try:
            hosts = self.worker.app.router.table_metadata(CUSTOMERS_TABLE)
        except KeyError:
            return []
        return [str(url).rstrip("/") for url in hosts if str(url).rstrip("/") != own]

    async def _ask(self, url: str, request: web.Request) -> dict[int, int]:
        """The members per partition another worker owns; nothing when it does not answer."""
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
        headers[FORWARDED_HEADER] = "1"
        try:
            async with self.api.http().get(url + request.rel_url.path, headers=headers) as answer:
                if answer.status != 200:
                    return {}
                body = await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {}
        return {int(p): int(n) for p, n in body.get("members_by_partition", {}).items()}

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
    install_static_segments(router, segments)
    install_segment_export(router, segments)
    return segments
