"""Running one import: a CSV file, read with a sync, appended to ``<ns>.events`` in acked batches.

The file is streamed (never loaded whole). Rows become envelopes, produced in batches of
``BATCH_ROWS`` rows; every ``DRAIN_ROWS`` rows (and at the end) the import waits until Kafka
acknowledged all it produced. A row counts as imported, and its digest is stored, only then.
A file the reader refuses (encoding, header, not CSV) raises ``FileRefused`` before anything is
produced; a file that breaks down mid-way (``CsvFormatError``) or a Kafka failure
ends the import as ``failed``, with the acknowledged batches recorded, and re-raises.

Re-imports check each row as early as the reader allows. For a file on disk (every kind but
``products``, whose rows fold per customer), the runner reads the raw records itself and compares
a pre-digest of the raw cells with the stored one before converting anything; only a row whose
text changed is converted (with the reader's compiled ``RowPlan``, the same code ``CsvReader``
runs) and then compared by its converted values. Converting and encoding is most of an import's
CPU time; for a large file it runs in a pool of processes (``conversion``) while this one reads,
checks digests and produces, and the results are applied in file order.

Each import writes ``<data_dir>/imports/<import_id>/errors.csv`` (the error report) and
``result.json`` (the counts).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import itertools
import multiprocessing
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Literal, TextIO

import orjson
import structlog

from connectors.csv import (
    CsvFormatError,
    CsvReader,
    ErrorReport,
    RowError,
    RowResult,
    Sync,
    envelope_for,
    to_body,
)
from connectors.csv.native import CsvRecords, row_encoder
from connectors.csv.plan import RowPlan
from engine.errors import RefractError
from engine.topics import TopicNames
from ops.imports.conversion import (
    Converter,
    Outcome,
    Pending,
    bound_digest,
    convert_in_process,
    start_process,
)
from ops.imports.digests import DIGEST_BYTES, NO_DIGEST, DigestStore, LastFile, digest_key
from ops.imports.key_index import KeyIndex, identity_fields, index_key
from schemas.codec import encode_envelope
from streams.producer import BulkProducer

log = structlog.get_logger(__name__)

BATCH_ROWS = 4000
"""Rows per produced batch (and per part the compiled encoder hands back): the unit in which rows
are queued to the producer and their digests kept until the next drain."""
DRAIN_ROWS = 50_000
"""Rows produced between two waits for Kafka's acknowledgements: the producer reports no record
it wrote (only failures), so what is acknowledged is learnt by draining it. A crash or a failure
loses the record of at most this many rows (a redo appends their events again)."""
CHUNK_ROWS = 1000
"""Changed rows converted together (in a pool's process when there is one)."""
TEXT_BLOCK = 1 << 20
"""Bytes of a UTF-8 file (characters of a Latin-1 one) read at a time for the compiled reader."""
ENCODED_AHEAD = 3
"""Blocks the compiled encoder may be ahead of the rows being produced: during a drain (tens of
milliseconds of waiting, then the digests' writes) it goes on with the next ones."""
POOL_MIN_BYTES = 16 * 1024 * 1024
"""Files smaller than this are converted in the importing process (a pool takes ~1 s to start)."""
FILE_BLOCK_BYTES = 1 << 20
"""Bytes read at a time to digest a whole file."""
ERRORS_FILE = "errors.csv"
RESULT_FILE = "result.json"

Status = Literal["finished", "failed"]


def new_import_id() -> str:
    """A fresh import id: UTC time (sortable, readable) and a random suffix."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def imports_folder(data_dir: Path) -> Path:
    """``<data_dir>/imports``: the digests, the key index and one folder per import."""
    return data_dir / "imports"


@dataclass(slots=True, frozen=True)
class ImportProgress:
    """Where a running import is; ``total_bytes`` is None for a stream of unknown size."""

    rows_read: int
    imported: int
    unchanged: int
    invalid: int
    events: int
    elapsed_s: float
    bytes_read: int
    total_bytes: int | None


@dataclass(slots=True, frozen=True)
class ImportResult:
    """The outcome of an import, also written as ``result.json`` in the import's folder.

    ``imported`` rows had their events acknowledged by Kafka (in a dry run: would have been
    appended); ``unchanged`` rows had the digest of the previous import and appended nothing;
    ``invalid`` rows are in the error report (``errors`` counts its lines, one per bad cell).
    """

    import_id: str
    sync_id: str
    status: Status
    dry_run: bool
    rows_read: int
    imported: int
    unchanged: int
    invalid: int
    errors: int
    events: int
    duration_s: float
    started_at_ms: int
    error_report: Path
    message: str | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.duration_s if self.duration_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["error_report"] = str(self.error_report)
        body["duration_s"] = round(self.duration_s, 3)
        return body


async def run_import(
    source: Path | BinaryIO,
    sync: Sync,
    *,
    producer: BulkProducer | None,
    topics: TopicNames,
    import_id: str,
    digests: DigestStore,
    keys: KeyIndex,
    folder: Path,
    dry_run: bool = False,
    progress: Callable[[ImportProgress], None] | None = None,
    now_ms: int | None = None,
    processes: int = 1,
) -> ImportResult:
    """Import ``source`` (a path, or a binary stream the caller keeps) with ``sync``.

    ``folder`` is where the import's files go (``<imports_folder>/<import_id>``). ``producer``
    may be None only for a dry run, which validates and counts but produces and stores nothing.
    With ``processes`` > 1, changed rows of a file of ``POOL_MIN_BYTES`` or more are converted
    and encoded in that many processes. Raises ``FileRefused`` before producing anything when
    the file cannot be imported at all.
    """
    if producer is None and not dry_run:
        raise ValueError("a producer is needed unless dry_run")
    started = time.perf_counter()
    started_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with ExitStack() as stack:
        stream: BinaryIO = stack.enter_context(open(source, "rb")) if isinstance(source, Path) else source
        reader = CsvReader(stream, sync)  # raises FileRefused: nothing produced yet
        folder.mkdir(parents=True, exist_ok=True)
        total_bytes = source.stat().st_size if isinstance(source, Path) else None
        report_file = stack.enter_context(open(folder / ERRORS_FILE, "w", encoding="utf-8", newline=""))
        run = _Run(
            sync=sync,
            producer=None if dry_run else producer,
            topic=topics.events,
            import_id=import_id,
            digests=digests,
            keys=keys,
            report=ErrorReport(report_file),
            now_ms=started_ms,
            started=started,
            progress=progress,
            total_bytes=total_bytes,
        )
        log.info("import.started", import_id=import_id, sync=sync.id, dry_run=dry_run)
        message: str | None = None
        status: Status = "finished"
        # The very file the sync's last import read (same bytes, same mapping) changes nothing:
        # its counts and error report are that import's. Other files make the sync forget it.
        # The file's hash is computed in a thread while the import runs (hashlib lets go of the
        # GIL), unless the size and mapping say it may be the last file: then it is needed now.
        this_file: LastFile | None = None
        file_hash: asyncio.Future[str] | None = None
        if (
            isinstance(source, Path)
            and not dry_run
            and sync.kind != "products"
            and not sync.key.needs_resolution  # the key index may have changed since
        ):
            stat = source.stat()
            mapping = _raw_digest_key(sync, reader.columns).hex()
            this_file = LastFile(
                "", stat.st_size, mapping, import_id, rows_read=0, valid=0, invalid=0, errors=0
            )
            file_hash = asyncio.get_running_loop().run_in_executor(None, _file_hash, source)
            before = (stat.st_size, stat.st_mtime_ns)
        last_file = digests.last_file(sync.id) if this_file is not None else None
        if (
            this_file is not None
            and file_hash is not None
            and last_file is not None
            and (last_file.size, last_file.mapping) == (this_file.size, this_file.mapping)
        ):
            this_file = replace(this_file, file=await file_hash)
        try:
            if (
                this_file is not None
                and last_file is not None
                and run.same_file(this_file, last_file, folder)
            ):
                this_file = None
            elif isinstance(source, Path) and sync.kind != "products":
                if this_file is not None and last_file is not None:
                    digests.set_last_file(sync.id, None)
                raw_stream = stack.enter_context(open(source, encoding=reader.encoding, newline=""))

                def start_pool() -> ProcessPoolExecutor | None:
                    if processes <= 1 or (total_bytes or 0) < POOL_MIN_BYTES:
                        return None
                    return stack.enter_context(
                        ProcessPoolExecutor(
                            processes,
                            mp_context=multiprocessing.get_context("spawn"),
                            initializer=start_process,
                            initargs=(sync, reader.columns, import_id, started_ms, run.indexes),
                        )
                    )

                await run.raw_rows(reader, raw_stream, start_pool, processes)
            else:
                await run.reader_rows(reader)
            await run.finish()
            if this_file is not None and file_hash is not None and isinstance(source, Path):
                after = source.stat()  # a file changed while it was read is not remembered
                if (after.st_size, after.st_mtime_ns) == before:
                    digests.set_last_file(
                        sync.id,
                        replace(
                            this_file,
                            file=await file_hash,
                            rows_read=run.rows_read,
                            valid=run.imported + run.unchanged,
                            invalid=run.report.invalid_rows,
                            errors=run.report.errors,
                        ),
                    )
        except BaseException as exc:
            status = "failed"
            message = exc.message if isinstance(exc, RefractError) else f"{type(exc).__name__}: {exc}"
            await run.abandon()
            raise
        finally:
            report_file.flush()
            result = ImportResult(
                import_id=import_id,
                sync_id=sync.id,
                status=status,
                dry_run=dry_run,
                rows_read=run.rows_read,
                imported=run.imported,
                unchanged=run.unchanged,
                invalid=run.report.invalid_rows,
                errors=run.report.errors,
                events=run.events,
                duration_s=time.perf_counter() - started,
                started_at_ms=started_ms,
                error_report=folder / ERRORS_FILE,
                message=message,
            )
            (folder / RESULT_FILE).write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2))
            log.info(
                "import.ended",
                import_id=import_id,
                sync=sync.id,
                status=status,
                rows=result.rows_read,
                imported=result.imported,
                unchanged=result.unchanged,
                invalid=result.invalid,
                events=result.events,
                duration_s=round(result.duration_s, 3),
            )
    return result


@dataclass(slots=True)
class _Batch:
    """Rows on their way to Kafka, and what to store once Kafka acknowledged them.

    Keys and values are kept in parallel lists, not as pairs: an import makes millions of them,
    and tuples are tracked by Python's collector (bytes are not).
    """

    keys: list[bytes] = field(default_factory=list)  # records to the topic (until queued)
    values: list[bytes] = field(default_factory=list)
    events: int = 0  # records queued
    digest_keys: list[bytes] = field(default_factory=list)  # to the digest store
    digests: list[bytes] = field(default_factory=list)
    index_keys: list[bytes] = field(default_factory=list)  # to the key index
    index_customers: list[bytes] = field(default_factory=list)
    rows: int = 0

    def add_record(self, key: bytes, value: bytes) -> None:
        self.keys.append(key)
        self.values.append(value)

    def add_digest(self, key: bytes, digest: bytes) -> None:
        self.digest_keys.append(key)
        self.digests.append(digest)

    def add_index_key(self, key: bytes, customer: bytes) -> None:
        self.index_keys.append(key)
        self.index_customers.append(customer)


class _Run:
    """The state of one import while it runs: counters, the open batch, the batches queued."""

    def __init__(
        self,
        *,
        sync: Sync,
        producer: BulkProducer | None,
        topic: str,
        import_id: str,
        digests: DigestStore,
        keys: KeyIndex,
        report: ErrorReport,
        now_ms: int,
        started: float,
        progress: Callable[[ImportProgress], None] | None,
        total_bytes: int | None,
    ) -> None:
        self.sync = sync
        self.producer = producer
        self.topic = topic
        self.import_id = import_id
        self.digests = digests
        self.keys = keys
        self.report = report
        self.now_ms = now_ms
        self.started = started
        self.progress = progress
        self.total_bytes = total_bytes
        self.bytes_read = 0
        self.rows_read = 0
        self.imported = 0
        self.unchanged = 0
        self.events = 0
        self.batch = _Batch()
        self.unacked: list[_Batch] = []  # queued since the last drain
        self.unacked_rows = 0
        # Identity fields are indexed from syncs keyed by customer id only: a row keyed by email
        # already went through the index.
        self.indexes = not sync.key.needs_resolution and sync.kind in ("attributes", "contacts")

    # --- the ways of reading rows ------------------------------------------------------------

    def same_file(self, this: LastFile, last: LastFile, folder: Path) -> bool:
        """Take ``last``'s outcome when ``this`` file is the one it read (and its report is
        still there): every row unchanged, its invalid rows reported again. False otherwise."""
        report = folder.parent / last.import_id / ERRORS_FILE
        if (this.file, this.size, this.mapping) != (
            last.file,
            last.size,
            last.mapping,
        ) or not report.is_file():
            return False
        with open(report, encoding="utf-8", newline="") as previous:
            self.report.copy_from(previous, invalid_rows=last.invalid, errors=last.errors)
        self.rows_read = last.rows_read
        self.unchanged = last.valid
        self.bytes_read = self.total_bytes or 0
        log.info("import.same_file", import_id=self.import_id, sync=self.sync.id, last_import=last.import_id)
        return True

    async def raw_rows(
        self,
        reader: CsvReader,
        text: Any,
        start_pool: Callable[[], ProcessPoolExecutor | None],
        processes: int,
    ) -> None:
        """Rows of a file on disk: raw records pre-digested, converted only when they changed.

        With the compiled encoder (``connectors.csv.native``), it does all of this for chunks of
        records and hands back the rows it cannot take, one at a time, to the Python path. Without
        it, changed rows are converted in chunks, in the pool ``start_pool`` gives (up to two chunks per
        process in flight), and applied in file order.
        """
        sync = self.sync
        columns = reader.columns
        plan = RowPlan(sync, {name: columns.index(name) for name in sync.file_columns}, len(columns))
        raw_key = _raw_digest_key(sync, columns)
        encoder = row_encoder(
            plan, import_id=self.import_id, now_ms=self.now_ms, index=self.indexes, raw_key=raw_key
        )
        # The pool of converting processes is started only for the Python path.
        pool = start_pool() if encoder is None else None
        pre_digest = _PreDigest(sync, plan, raw_key, self.digests, self.keys)
        # A sync's first import has no digests to compare with: the encoder looks nothing up.
        get_stored = self.digests.get_raw if self.digests.has_sync(sync.id) else None
        converter = Converter(sync, columns, self.import_id, self.now_ms, index=self.indexes)
        loop = asyncio.get_running_loop()
        in_flight: deque[tuple[asyncio.Future[list[Outcome]], list[tuple[bytes, bytes]]]] = deque()
        most_in_flight = 2 * processes
        chunk: list[Pending] = []
        raws: list[tuple[bytes, bytes]] = []  # (digest key, raw pre-digest) of each row in chunk

        async def convert() -> None:
            nonlocal chunk, raws
            if pool is None:
                await self._apply(converter.convert(chunk), raws)
            else:
                in_flight.append((loop.run_in_executor(pool, convert_in_process, chunk), raws))
                while len(in_flight) > most_in_flight:
                    future, done_raws = in_flight.popleft()
                    await self._apply(await future, done_raws)
            chunk, raws = [], []
            self.bytes_read = text.buffer.tell()

        reading: tuple[Any, int] = (None, 0)  # the csv module's reader, and its first line - 1
        handed_over = False  # whether the compiled reader handed the rest to the csv module

        async def take(parts: list[tuple[Any, ...] | None]) -> None:
            """Add what the encoder made of a block to the batch, in file order; a row it handed
            back goes through Python."""
            nonlocal handed_over
            for part in parts:
                if part is None:  # the compiled reader handed the rest over to the csv module
                    handed_over = True
                    continue
                if len(part) == 2:  # (line, cells): converted here, or reported with its errors
                    self.rows_read += 1
                    pending = pre_digest(*part)
                    if pending is None:
                        self.unchanged += 1
                    else:
                        await self._apply(converter.convert([pending[0]]), [pending[1]])
                    continue
                (keys, values), (digest_keys, digests), (index_keys, customers), unchanged, rows, read = part
                batch = self.batch
                batch.keys.extend(keys)
                batch.values.extend(values)
                batch.digest_keys.extend(digest_keys)
                batch.digests.extend(digests)
                if index_keys:
                    batch.index_keys.extend(index_keys)
                    batch.index_customers.extend(customers)
                batch.rows += rows
                self.unchanged += unchanged
                self.rows_read += read
                if self.batch.rows >= BATCH_ROWS:
                    await self._send()

        async def python_rows(records: Any, previous: int) -> None:
            """Rows as the csv module reads them (after line ``previous``), converted by Python."""
            nonlocal reading
            reading = (records, previous - records.line_num)
            for record in records:
                line = previous + 1
                previous = records.line_num
                if not record:
                    continue
                self.rows_read += 1
                pending = pre_digest(line, record)
                if pending is None:
                    self.unchanged += 1
                    continue
                chunk.append(pending[0])
                raws.append(pending[1])
                if len(chunk) >= CHUNK_ROWS:
                    await convert()

        try:
            if encoder is not None:
                # The compiled reader splits the text as the csv module would; what it cannot
                # take (a quoted field open at the end, a field over the size limit) and what
                # follows are read by the csv module. Blocks are encoded in a thread (mostly
                # without the GIL), in order, up to ENCODED_AHEAD blocks ahead of this one, which
                # produces and records them: the encoder goes on while this one drains.
                parsed = CsvRecords(sync.delimiter, 1, sync.header is None)
                blocks = _TextBlocks(text, reader.encoding)
                with ThreadPoolExecutor(1, thread_name_prefix="import-encoder") as encoding:
                    encoded: deque[asyncio.Future[list[tuple[Any, ...] | None]]] = deque()
                    while not handed_over:  # once it is, the csv module reads on from the file
                        block, last = blocks.read()
                        encode = partial(encoder.encode_block, parsed, block, last, get_stored)
                        encoded.append(loop.run_in_executor(encoding, encode, BATCH_ROWS))
                        if len(encoded) > ENCODED_AHEAD:
                            await take(await encoded.popleft())
                        self.bytes_read = text.buffer.tell()
                        if last:
                            break
                    while encoded:
                        await take(await encoded.popleft())
                rest = parsed.python_from()
                if rest is not None:
                    # The reader kept the text it was given from that record on (a few blocks
                    # at most); the file goes on from where the blocks read end.
                    line, remaining = rest
                    text = blocks.rest()
                    remaining += text.readline()  # the csv module reads whole lines
                    lines = itertools.chain(io.StringIO(remaining, newline=""), text)
                    await python_rows(csv.reader(lines, delimiter=sync.delimiter), line - 1)
            else:
                records = csv.reader(text, delimiter=sync.delimiter)
                reading = (records, 0)
                previous = 0
                if sync.header is None:
                    for record in records:  # the header, checked by the reader; skip blank lines
                        previous = records.line_num
                        if record:
                            break
                await python_rows(records, previous)
        except csv.Error as exc:
            reader_of_rest, base = reading
            line = base + reader_of_rest.line_num
            raise CsvFormatError(f"line {line}: {exc}; check the quoting", line=line) from None
        except BaseException:
            # Rows already converted are applied (and, once acked, recorded) even after an error.
            while in_flight:
                future, done_raws = in_flight.popleft()
                try:
                    await self._apply(await future, done_raws)
                except Exception:  # the first failure is the one reported
                    continue
            raise
        if chunk:
            await convert()
        while in_flight:
            future, done_raws = in_flight.popleft()
            await self._apply(await future, done_raws)
        self.bytes_read = self.total_bytes or 0

    async def _apply(self, outcomes: list[Outcome], raws: list[tuple[bytes, bytes]]) -> None:
        """Add converted rows to the batch (errors to the report), sending full batches.

        ``raws`` are the (digest key, raw pre-digest) of the rows; a valid row has both.
        """
        batch = self.batch
        for outcome, (store_key, raw) in zip(outcomes, raws, strict=True):
            if isinstance(outcome, list):
                for error in outcome:
                    self.report.add(error)
                continue
            batch.add_digest(store_key, raw + outcome.row_digest)
            if outcome.values is None:
                # Same values in other words (e.g. "034" for 34): remember the new text.
                self.unchanged += 1
                continue
            customer = outcome.customer.encode()
            for event in outcome.values:
                batch.add_record(customer, event)
            for name, text in outcome.identities:
                batch.add_index_key(index_key(name, text), customer)
            batch.rows += 1
            if batch.rows >= BATCH_ROWS:
                await self._send()
                batch = self.batch

    async def reader_rows(self, reader: CsvReader) -> None:
        """Rows as the reader yields them (products, and streams that cannot be read twice)."""
        sync = self.sync
        resolve = sync.key.needs_resolution
        for row in _counted(reader, self):
            if isinstance(row, RowError):
                self.report.add(row)
                continue
            customer = self.keys.lookup(sync.key.field, row.customer_key) if resolve else row.customer_key
            if customer is None:
                self.report.add(
                    RowError(
                        row.line,
                        sync.key.column,
                        row.customer_key,
                        f"no customer has {sync.key.field} {row.customer_key}",
                    )
                )
                continue
            row_digest = bound_digest(row.digest, customer) if resolve else row.digest
            store_key = digest_key(sync.id, row.customer_key)
            stored = self.digests.get_raw(store_key)
            if stored is not None and stored[DIGEST_BYTES:] == row_digest:
                self.unchanged += 1
                continue
            self._add(row, customer, store_key, NO_DIGEST + row_digest)
            if self.batch.rows >= BATCH_ROWS:
                self.bytes_read = reader.bytes_read
                await self._send()
        self.bytes_read = reader.bytes_read

    # --- batches -----------------------------------------------------------------------------

    def _add(self, row: RowResult, customer: str, store_key: bytes, stored: bytes) -> None:
        batch = self.batch
        key = customer.encode()
        for envelope in envelope_for(row, self.sync.id, self.import_id, self.now_ms, customer_id=customer):
            batch.add_record(key, encode_envelope(envelope))
        batch.add_digest(store_key, stored)
        if self.indexes:
            for payload in row.events:
                for name, value in identity_fields(payload):
                    batch.add_index_key(index_key(name, value), customer.encode())
        batch.rows += 1

    async def _send(self) -> None:
        batch, self.batch = self.batch, _Batch()
        batch.events = len(batch.keys)
        if self.producer is None:  # a dry run: count what would be appended
            self._commit(batch, store=False)
        else:
            self.producer.queue(self.topic, batch.keys, batch.values)
            batch.keys, batch.values = [], []
            self.unacked.append(batch)
            self.unacked_rows += batch.rows
            if self.unacked_rows >= DRAIN_ROWS:
                await self._drain()
        self._report_progress()

    async def _drain(self) -> None:
        """Wait for Kafka to acknowledge every batch queued, then record them. If it refused a
        record, none of them is recorded (``ProduceFailed``): a redo appends them again."""
        assert self.producer is not None
        batches, self.unacked, self.unacked_rows = self.unacked, [], 0
        await self.producer.drain()
        for batch in batches:
            self._commit(batch)

    def _commit(self, batch: _Batch, *, store: bool = True) -> None:
        """Record an acknowledged batch: its digests, its identity fields, its counts."""
        if store and batch.digests:
            self.digests.put_many(batch.digest_keys, batch.digests)
        if store and batch.index_keys:
            self.keys.record_keys(batch.index_keys, batch.index_customers)
        self.imported += batch.rows
        self.events += batch.events

    async def finish(self) -> None:
        if self.batch.rows or self.batch.digests:
            await self._send()
        if self.unacked:
            await self._drain()
        self._report_progress()

    async def abandon(self) -> None:
        """After a failure: record the batches Kafka did acknowledge, so a redo skips them."""
        if self.unacked:
            with suppress(Exception):  # the first failure is the one reported
                await self._drain()

    def _report_progress(self) -> None:
        if self.progress is not None:
            self.progress(
                ImportProgress(
                    rows_read=self.rows_read,
                    imported=self.imported,
                    unchanged=self.unchanged,
                    invalid=self.report.invalid_rows,
                    events=self.events,
                    elapsed_s=time.perf_counter() - self.started,
                    bytes_read=self.bytes_read,
                    total_bytes=self.total_bytes,
                )
            )


def _counted(reader: CsvReader, run: _Run) -> Iterator[RowResult | RowError]:
    for row in reader:
        run.rows_read = reader.rows_read
        yield row


class _PreDigest:
    """A raw record's row to convert, with its (digest key, raw pre-digest), or None when the
    stored pre-digest says its text did not change."""

    def __init__(
        self, sync: Sync, plan: RowPlan, raw_key: bytes, digests: DigestStore, keys: KeyIndex
    ) -> None:
        self._key_of = plan.key_of
        self._resolve = sync.key.needs_resolution
        self._field = sync.key.field
        self._sync_id = sync.id
        self._raw_key = raw_key
        self._get_stored = digests.get_raw
        self._lookup = keys.lookup

    def __call__(self, line: int, record: list[str]) -> tuple[Pending, tuple[bytes, bytes]] | None:
        key = self._key_of(record)
        customer: str | None = None
        stored: bytes | None = None
        raw = NO_DIGEST
        store_key = b""
        if key is not None:
            customer = self._lookup(self._field, key) if self._resolve else key
            if customer is not None:
                store_key = digest_key(self._sync_id, key)
                stored = self._get_stored(store_key)
                material = "\0".join(record)
                if self._resolve:
                    material = f"{material}\0\0{customer}"
                raw = hashlib.blake2b(material.encode(), digest_size=DIGEST_BYTES, key=self._raw_key).digest()
                if stored is not None and stored[:DIGEST_BYTES] == raw:
                    return None
        return (line, record, customer, stored[DIGEST_BYTES:] if stored else None), (store_key, raw)


class _TextBlocks:
    """A file's text in blocks for the compiled reader. UTF-8 goes as the file's own bytes, each
    block ending on a whole character: decoding it into a ``str`` (~0.35 us a row) only for the
    reader to encode it back to UTF-8 (~0.25 us, holding the GIL) would be work for nothing.
    Latin-1 goes as decoded text."""

    def __init__(self, text: TextIO, codec: str) -> None:
        self._text = text
        self._bytes = text.buffer if codec in ("utf-8", "utf-8-sig") else None
        self._carry = b""  # the start of a character cut off at the end of the last block
        if codec == "utf-8-sig" and self._bytes is not None:
            self._bytes.read(len(codecs.BOM_UTF8))  # the codec strips it: the reader must not see it

    def read(self) -> tuple[str | bytes, bool]:
        """The next block, and whether the file ends with it."""
        if self._bytes is None:
            text: str = self._text.read(TEXT_BLOCK)
            return text, not text
        data = self._bytes.read(TEXT_BLOCK)
        block = self._carry + data
        cut = _whole_characters(block) if data else len(block)
        self._carry = block[cut:]
        return block[:cut], not data

    def rest(self) -> TextIO:
        """The text from where the blocks read so far end (for the csv module to read on)."""
        if self._bytes is not None and self._carry:
            self._bytes.seek(-len(self._carry), io.SEEK_CUR)  # a character the blocks cut off
            self._carry = b""
        return self._text


def _whole_characters(block: bytes) -> int:
    """The length of ``block`` (UTF-8) without a character cut off at its end."""
    end = len(block)
    for back in range(1, min(4, end) + 1):
        byte = block[end - back]
        if byte < 0x80:
            return end  # ASCII: the last character is whole
        if byte >= 0xC0:  # the first byte of a character: is it all there?
            size = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return end if back >= size else end - back
    return end  # not UTF-8: the reader says where


def _file_hash(path: Path) -> str:
    """The BLAKE2b hash of ``path``'s bytes, hex."""
    hasher = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as handle:
        while block := handle.read(FILE_BLOCK_BYTES):
            hasher.update(block)
    return hasher.hexdigest()


def _raw_digest_key(sync: Sync, columns: tuple[str, ...]) -> bytes:
    """The BLAKE2b key of raw pre-digests: the whole sync and the file's column order, so that
    the same text under another mapping or another header never looks unchanged."""
    material = orjson.dumps([to_body(sync), list(columns)], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(material, digest_size=32).digest()
