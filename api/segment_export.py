"""``GET /v1/segments/{id}/members.csv``: a segment's members with chosen attributes and contacts, as CSV.

The answer is streamed: a header ``customer_id,<attributes...>,<contacts...>``, then this worker's
members (read from its own partitions' states), then the rows of every other worker, each asked
with the forwarded header so that it answers for its own partitions only (no header line, and the
partitions it covered in ``X-Refract-Partitions``).

Completeness is checked before the first byte is sent: if a worker does not answer, or the answers
do not cover every partition exactly once (a rebalance), the answer is 503 ``members_incomplete``
and nothing is streamed. A worker that fails once its rows are flowing makes this worker close the
connection without the end of the chunked body, so a client sees a broken download, never a short
file that looks whole.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import structlog
from aiohttp import web

from api.errors import ApiError
from engine.errors import ValidationError
from engine.state import decode_value, to_document

if TYPE_CHECKING:
    from api.segments import SegmentsApi

log = structlog.get_logger(__name__)

FORWARDED_HEADER = "X-Refract-Forwarded"
PARTITIONS_HEADER = "X-Refract-Partitions"
CONTACT_COLUMNS = ("email", "phone")
# The names an attribute can have (as api.payloads checks them).
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
MAX_COLUMNS = 200
# Rows written per chunk: small enough to let the processor run between chunks.
ROWS_PER_CHUNK = 500
# How long another worker has to start answering, and how long its rows may pause.
FORWARD_OPEN_TIMEOUT_S = 30.0
FORWARD_READ_TIMEOUT_S = 120.0
LIST_SEPARATOR = ";"


@dataclass(slots=True, frozen=True)
class ExportColumns:
    attributes: tuple[str, ...]
    contacts: tuple[str, ...]

    @property
    def header(self) -> list[str]:
        return ["customer_id", *self.attributes, *self.contacts]


def _names(raw: str, parameter: str) -> tuple[str, ...]:
    names = [name.strip() for name in raw.split(",")] if raw.strip() else []
    seen: dict[str, None] = {}
    for name in names:
        if parameter == "contacts" and name not in CONTACT_COLUMNS:
            raise ValidationError(
                f"contacts: {name!r} is not a contact; choose from {', '.join(CONTACT_COLUMNS)}", parameter
            )
        if parameter == "attributes" and not _ATTRIBUTE_NAME.fullmatch(name):
            raise ValidationError(
                f"attributes: {name!r} is not an attribute name (a letter or _, then letters, digits,"
                " _ . : or -, at most 64); give names separated by commas",
                parameter,
            )
        seen[name] = None
    return tuple(seen)


def export_columns(query: Mapping[str, str]) -> ExportColumns:
    """The columns asked for by ``attributes=a,b&contacts=email``. Raises ValidationError."""
    columns = ExportColumns(
        _names(query.get("attributes", ""), "attributes"), _names(query.get("contacts", ""), "contacts")
    )
    if len(columns.header) > MAX_COLUMNS:
        raise ValidationError(f"at most {MAX_COLUMNS} columns can be exported", "attributes")
    return columns


def cell(value: Any) -> str:
    """A value as CSV text: strings as they are, numbers as text, dates ISO, lists joined with ``;``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return LIST_SEPARATOR.join(cell(item) for item in value)
    return str(value)


def member_row(document: Mapping[str, Any], columns: ExportColumns) -> list[str]:
    """One member's row from their stored state document."""
    attributes = document.get("attributes") or {}
    contacts = document.get("contacts") or {}
    row = [str(document["id"])]
    row += [cell(decode_value(attributes.get(name))) for name in columns.attributes]
    row += [cell(contacts.get(name)) for name in columns.contacts]
    return row


class SegmentExport:
    def __init__(self, segments: SegmentsApi) -> None:
        self.segments = segments
        self.api = segments.api
        self.worker = segments.worker

    async def members_csv(self, request: web.Request) -> web.StreamResponse:
        self.api.auth.require(request, "admin")
        segment_id = self.segments._segment_id(request)
        if segment_id not in self.segments.definitions.segments:
            raise ApiError(404, "segment_not_found", f"no segment with id {segment_id!r}")
        columns = export_columns(request.query)
        if request.headers.get(FORWARDED_HEADER):
            return await self._local_answer(request, segment_id, columns)
        ready, reason = self.worker.is_ready()
        if not ready:
            raise ApiError(503, "not_ready", f"the worker is not ready yet: {reason}")
        own = self.worker.events_partitions()
        others = await self._open_others(request)
        try:
            self._check_complete(own, others)
        except ApiError:
            for _, answer in others:
                if answer is not None:
                    answer.release()
            raise
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{segment_id}-members.csv"',
            }
        )
        await response.prepare(request)
        local_rows = forwarded_bytes = 0
        try:
            await response.write(_csv_bytes([columns.header]))
            local_rows = await self._write_local(response, own, segment_id, columns)
            for _, answer in others:
                assert answer is not None
                async with answer:
                    async for chunk in answer.content.iter_chunked(1 << 16):
                        await response.write(chunk)
                        forwarded_bytes += len(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("segment_export.broken", segment=segment_id, error=type(exc).__name__)
            # Closing without the end of the chunked body tells the client the file is not whole.
            if request.transport is not None:
                request.transport.close()
            return response
        finally:
            for _, answer in others:
                if answer is not None:
                    answer.close()
        log.info(
            "segment_export.finished",
            segment=segment_id,
            local_rows=local_rows,
            forwarded_bytes=forwarded_bytes,
        )
        await response.write_eof()
        return response

    async def _local_answer(
        self, request: web.Request, segment_id: str, columns: ExportColumns
    ) -> web.StreamResponse:
        """The forwarded form: this worker's partitions only, no header line."""
        partitions = self.worker.events_partitions() if self.worker.is_ready()[0] else set()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                PARTITIONS_HEADER: ",".join(str(p) for p in sorted(partitions)),
            }
        )
        await response.prepare(request)
        await self._write_local(response, partitions, segment_id, columns)
        await response.write_eof()
        return response

    async def _write_local(
        self, response: web.StreamResponse, partitions: set[int], segment_id: str, columns: ExportColumns
    ) -> int:
        written = 0
        for partition in sorted(partitions):
            chunk: list[list[str]] = []
            for row in self._rows(partition, segment_id, columns):
                chunk.append(row)
                if len(chunk) >= ROWS_PER_CHUNK:
                    await response.write(_csv_bytes(chunk))
                    written += len(chunk)
                    chunk = []
            if chunk:
                await response.write(_csv_bytes(chunk))
                written += len(chunk)
            await asyncio.sleep(0)
        return written

    def _rows(self, partition: int, segment_id: str, columns: ExportColumns) -> Iterator[list[str]]:
        store = self.worker.store
        # States of batches still being committed are newer than the store (and already counted).
        pending = self.worker.processor.uncommitted(partition)
        needle = orjson.dumps(segment_id) + b":"
        for key in store.customer_keys(partition):
            if key in pending:
                continue
            raw = store.read(partition, key)
            if raw is None or needle not in raw:
                continue
            document = orjson.loads(raw)
            if segment_id in (document.get("segments") or ()):
                yield member_row(document, columns)
        for state in pending.values():
            if state is not None and segment_id in state.segments:
                yield member_row(to_document(state), columns)

    async def _open_others(self, request: web.Request) -> list[tuple[str, aiohttp.ClientResponse | None]]:
        """Every other worker's answer, opened (status and headers read); None where it failed."""
        urls = self.segments._other_workers()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")}
        headers[FORWARDED_HEADER] = "1"
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=FORWARD_OPEN_TIMEOUT_S, sock_read=FORWARD_READ_TIMEOUT_S
        )

        async def open_one(url: str) -> aiohttp.ClientResponse | None:
            try:
                answer = await asyncio.wait_for(
                    self.api.http().get(url + str(request.rel_url), headers=headers, timeout=timeout),
                    FORWARD_OPEN_TIMEOUT_S,
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("segment_export.unanswered", worker=url, error=type(exc).__name__)
                return None
            if answer.status != 200 or PARTITIONS_HEADER not in answer.headers:
                log.warning("segment_export.unanswered", worker=url, status=answer.status)
                answer.release()
                return None
            return answer

        answers = await asyncio.gather(*(open_one(url) for url in urls))
        return list(zip(urls, answers, strict=True))

    def _check_complete(self, own: set[int], others: list[tuple[str, aiohttp.ClientResponse | None]]) -> None:
        covered = list(own)
        unanswered = [url for url, answer in others if answer is None]
        for _, answer in others:
            if answer is not None:
                listed = answer.headers[PARTITIONS_HEADER]
                covered += [int(p) for p in listed.split(",") if p]
        missing = sorted(set(range(self.worker.settings.partitions)) - set(covered))
        twice = sorted({p for p in covered if covered.count(p) > 1})
        if unanswered or missing or twice:
            problem = (
                f"workers {unanswered} did not answer"
                if unanswered
                else f"no worker answered for partitions {missing}"
                if missing
                else f"partitions {twice} were claimed by two workers"
            )
            raise ApiError(
                503,
                "members_incomplete",
                f"the export would not be complete: {problem} (rebalancing?); retry shortly",
                headers={"Retry-After": "5"},
            )


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8")


def install_segment_export(router: web.UrlDispatcher, segments: SegmentsApi) -> SegmentExport:
    export = SegmentExport(segments)
    router.add_get("/v1/segments/{segment_id}/members.csv", export.members_csv)
    return export
