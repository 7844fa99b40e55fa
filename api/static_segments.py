"""``/v1/segments/{id}/members``: upload the list of a static segment, and list any segment's members.

``PUT /v1/segments/{id}/members`` (scope ``admin``) takes a CSV body with a ``customer_id`` column
(other columns are ignored) and makes it the segment's list: the customers not on the current list
are added and those no longer on it removed, each by a ``CustomerUpdate`` of the reserved attribute
appended to ``refract.events`` (see ``engine.segments.static``). The answer (200) comes once Kafka
has them; memberships change, with their ``SegmentChange``, as the workers process them.

The current list is read from the customers' states on every worker (each answers for the
partitions it owns), so an upload made before the previous one of the same segment was processed
may see an older list: upload a segment's lists one after another.

``GET /v1/segments/{id}/members`` answers ``{"members": [...]}``, the ids of the customers in the
segment (any kind), from every worker.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from api.errors import ApiError
from engine.errors import ValidationError
from engine.segments.static import add_update, list_change, remove_update, static_attribute

if TYPE_CHECKING:
    from api.segments import SegmentsApi

FORWARDED_HEADER = "X-Refract-Forwarded"
MAX_LIST_BYTES = 256 * 1024 * 1024
CUSTOMER_ID_MAX = 128
# Events appended per producer batch while applying a list.
APPEND_CHUNK = 5000


def read_member_ids(data: bytes) -> list[str]:
    """The distinct customer ids of a CSV with a ``customer_id`` column, in file order.

    Raises ValidationError naming the line of the first problem.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"the list is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|") if sample.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    header = next(rows, None)
    if header is None or "customer_id" not in [name.strip() for name in header]:
        raise ValidationError("the list needs a header line with a customer_id column")
    column = [name.strip() for name in header].index("customer_id")
    seen: dict[str, None] = {}
    for line, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        customer = row[column].strip() if column < len(row) else ""
        if not customer or len(customer) > CUSTOMER_ID_MAX or customer.startswith("\x00"):
            raise ValidationError(
                f"line {line}: customer_id must be 1 to {CUSTOMER_ID_MAX} characters, got {customer!r}",
                field="customer_id",
            )
        seen[customer] = None
    return list(seen)


class StaticSegmentsApi:
    def __init__(self, segments: SegmentsApi) -> None:
        self.segments = segments
        self.api = segments.api
        self.worker = segments.worker

    def _segment(self, request: web.Request) -> Any:
        segment_id = self.segments._segment_id(request)
        segment = self.segments.definitions.segments.get(segment_id)
        if segment is None:
            raise ApiError(404, "segment_not_found", f"no segment with id {segment_id!r}")
        return segment

    async def get_members(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        segment = self._segment(request)
        members = await self._members(request, segment.segment_id, None)
        return web.json_response({"id": segment.segment_id, "members": sorted(members)})

    async def put_members(self, request: web.Request) -> web.Response:
        self.api.auth.require(request, "admin")
        segment = self._segment(request)
        if not segment.is_static:
            raise ApiError(
                409,
                "segment_not_static",
                f"segment {segment.segment_id!r} is defined by a rule; only a static segment"
                ' (saved with "kind": "static") takes a list of members',
            )
        wanted = read_member_ids(await self._body(request))
        attribute = static_attribute(segment.segment_id)
        current = await self._members(request, segment.segment_id, attribute)
        change = list_change(current, wanted)
        upload = uuid.uuid4().hex
        envelopes = [
            self.api.envelopes.envelope(
                customer,
                add_update(segment.segment_id),
                event_id=f"static:{segment.segment_id}:{upload}:{customer}",
            )
            for customer in change.added
        ] + [
            self.api.envelopes.envelope(
                customer,
                remove_update(segment.segment_id),
                event_id=f"static:{segment.segment_id}:{upload}:{customer}",
            )
            for customer in change.removed
        ]
        for start in range(0, len(envelopes), APPEND_CHUNK):
            await self.api._append(envelopes[start : start + APPEND_CHUNK])
        return web.json_response(
            {
                "id": segment.segment_id,
                "upload_id": upload,
                "members": len(wanted),
                "added": len(change.added),
                "removed": len(change.removed),
            }
        )

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_LIST_BYTES:
            raise ApiError(413, "too_large", f"a list may be at most {MAX_LIST_BYTES // 2**20} MB")
        chunks = []
        size = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            size += len(chunk)
            if size > MAX_LIST_BYTES:
                raise ApiError(413, "too_large", f"a list may be at most {MAX_LIST_BYTES // 2**20} MB")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _members(self, request: web.Request, segment_id: str, attribute: str | None) -> set[str]:
        """Members over every worker: by ``attribute`` (a static list) or by membership."""
        ready, reason = self.worker.is_ready()
        if not ready:
            raise ApiError(503, "not_ready", f"the worker is not ready yet: {reason}")
        partitions = self.worker.events_partitions()
        found: dict[int, list[str]] = {p: self._local(p, segment_id, attribute) for p in partitions}
        if not request.headers.get(FORWARDED_HEADER):
            for answer in await asyncio.gather(
                *(self._ask(url, request, attribute) for url in self.segments._other_workers())
            ):
                for partition, ids in answer.items():
                    found.setdefault(partition, ids)
            missing = sorted(set(range(self.worker.settings.partitions)) - set(found))
            if missing:
                raise ApiError(
                    503,
                    "partition_unavailable",
                    f"no worker answered for partitions {missing} (rebalancing?); retry shortly",
                )
        return {customer for ids in found.values() for customer in ids}

    def _local(self, partition: int, segment_id: str, attribute: str | None) -> list[str]:
        store = self.worker.store
        # States of batches still being committed are newer than the store (and already counted):
        # without them the list could lag the member count it is read next to.
        pending = self.worker.processor.uncommitted(partition)
        needle = orjson.dumps(attribute if attribute is not None else segment_id) + b":"
        ids = []
        for state in pending.values():
            if state is None:
                continue
            if attribute is not None:
                if state.attributes.get(attribute) is True:
                    ids.append(state.customer_id)
            elif segment_id in state.segments:
                ids.append(state.customer_id)
        for key in store.customer_keys(partition):
            if key in pending:
                continue
            raw = store.read(partition, key)
            if raw is None or needle not in raw:
                continue
            doc = orjson.loads(raw)
            if attribute is not None:
                if doc["attributes"].get(attribute) is True:
                    ids.append(doc["id"])
            elif segment_id in (doc.get("segments") or ()):
                ids.append(doc["id"])
        return ids

    async def _ask(self, url: str, request: web.Request, attribute: str | None) -> dict[int, list[str]]:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
        headers[FORWARDED_HEADER] = "1"
        query = "?by=list" if attribute is not None else ""
        try:
            async with self.api.http().get(url + request.rel_url.path + query, headers=headers) as answer:
                if answer.status != 200:
                    return {}
                body = await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {}
        return {int(p): list(ids) for p, ids in body.get("members_by_partition", {}).items()}

    async def local_members(self, request: web.Request) -> web.Response:
        """The forwarded form of GET: this worker's partitions only, by list or by membership."""
        self.api.auth.require(request, "admin")
        segment = self._segment(request)
        attribute = static_attribute(segment.segment_id) if request.query.get("by") == "list" else None
        partitions = self.worker.events_partitions() if self.worker.is_ready()[0] else set()
        return web.json_response(
            {
                "members_by_partition": {
                    str(p): self._local(p, segment.segment_id, attribute) for p in sorted(partitions)
                }
            }
        )


def install_static_segments(router: web.UrlDispatcher, segments: SegmentsApi) -> StaticSegmentsApi:
    static = StaticSegmentsApi(segments)

    async def get_members(request: web.Request) -> web.Response:
        if request.headers.get(FORWARDED_HEADER):
            return await static.local_members(request)
        return await static.get_members(request)

    router.add_get("/v1/segments/{segment_id}/members", get_members)
    router.add_put("/v1/segments/{segment_id}/members", static.put_members)
    return static
