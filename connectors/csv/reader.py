"""Streamed reading of a CSV file into typed events, row by row, following a sync definition.

``CsvReader(stream, sync)`` judges the file up front (encoding, binary or not, header against
the mapping) and raises ``FileRefused`` before any row is read; iterating it then yields, per
row, a ``RowResult`` (the customer key, the events, a digest) or one ``RowError`` per bad cell.
Nothing is loaded whole: memory stays flat whatever the file's size (products keep, in addition,
a 64-bit hash per customer; see ``_product_rows``).

A seekable stream is checked for encoding in a first pass (a fast, C-level decode) so that a bad
byte refuses the whole file before anything is imported; a stream that cannot seek (an HTTP
body) is checked as it is read, and a bad byte raises ``EncodingRefused`` mid-iteration.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from connectors.csv.encoding import CHUNK_BYTES, ByteChecker, check_stream, decoding_codec
from connectors.csv.errors import CsvFormatError, HeaderRefused
from connectors.csv.mapping import Sync
from connectors.csv.plan import RowPlan, Values
from connectors.csv.rows import Row, RowError, RowResult

__all__ = ["CsvReader", "Row", "RowError", "RowResult"]

# Bytes read to judge a file before reading rows (signatures, byte order mark).
_PREFIX_BYTES = 1 << 16
_COMMON_DELIMITERS = (",", ";", "\t", "|")


class CsvReader:
    """The rows of one CSV file read with one sync; constructing it refuses a bad file.

    Raises ``FileRefused`` (``NotCsvRefused``, ``EncodingRefused``, ``HeaderRefused``,
    ``CsvFormatError``). The caller keeps ownership of ``stream`` (binary): it is not closed.
    Rows come in file order, except that a products sync yields a customer's rows when the
    customer's last row has been read.
    """

    def __init__(self, stream: BinaryIO, sync: Sync) -> None:
        self._sync = sync
        prefix = stream.read(_PREFIX_BYTES)
        codec = decoding_codec(prefix, sync.encoding)
        checker: ByteChecker | None = None
        if stream.seekable():
            stream.seek(-len(prefix), io.SEEK_CUR)
            start = stream.tell()
            check_stream(stream, codec)
            stream.seek(start)
            prefix = b""
        else:
            checker = ByteChecker(codec)
        self._source = _Source(stream, prefix, checker)
        text = io.TextIOWrapper(io.BufferedReader(self._source, CHUNK_BYTES), encoding=codec, newline="")
        self._csv = csv.reader(text, delimiter=sync.delimiter)
        self._pending: tuple[int, list[str]] | None = None
        self.encoding = codec
        """The codec the file is read with (``utf-8-sig`` when it starts with a BOM)."""
        self.columns: tuple[str, ...] = self._read_header()
        """The file's column names (given by the sync for a file without a header)."""
        self.unknown_columns: tuple[str, ...] = tuple(
            name for name in self.columns if name not in sync.file_columns
        )
        """Columns of the file the sync does not read (allowed; worth showing to a person)."""
        positions = {name: self.columns.index(name) for name in sync.file_columns}
        self._plan = RowPlan(sync, positions, len(self.columns))
        self.rows_read = 0
        """Records read so far (blank lines are not records)."""

    @property
    def bytes_read(self) -> int:
        """Bytes of the file read so far (for a progress bar; reading runs ahead of rows)."""
        return self._source.bytes_read

    def __iter__(self) -> Iterator[Row]:
        if self._sync.kind == "products":
            return self._product_rows()
        return self._rows()

    # --- header ------------------------------------------------------------------------------

    def _read_header(self) -> tuple[str, ...]:
        sync = self._sync
        first = self._next_record()
        if sync.header is not None:
            if first is not None and [cell.strip() for cell in first[1]] == list(sync.header):
                raise HeaderRefused(
                    "the first row repeats the column names, so the file has a header: remove"
                    " header: from the sync"
                )
            self._pending = first
            return sync.header
        if first is None:
            raise HeaderRefused(
                f"the file is empty; expected a header row with {_quoted(sync.file_columns)}",
                missing=sync.file_columns,
            )
        names = tuple(cell.strip() for cell in first[1])
        missing = tuple(name for name in sync.file_columns if name not in names)
        if missing:
            raise HeaderRefused(
                f"the header lacks {_quoted(missing)}{self._header_hint(names, missing)}",
                missing=missing,
            )
        for name in sync.file_columns:
            if names.count(name) > 1:
                where = [str(index + 1) for index, other in enumerate(names) if other == name]
                raise HeaderRefused(
                    f"the column '{name}' appears {len(where)} times in the header (positions"
                    f" {', '.join(where)}); the sync cannot tell which one to read"
                )
        return names

    def _header_hint(self, names: tuple[str, ...], missing: tuple[str, ...]) -> str:
        delimiter = self._sync.delimiter
        if len(names) == 1:
            for other in _COMMON_DELIMITERS:
                if other != delimiter and other in names[0]:
                    return (
                        f"; the header reads as one column, so the file seems delimited by"
                        f" {other!r} while the sync says delimiter: {delimiter!r}"
                    )
        folded = {name.casefold(): name for name in names}
        near = [f"'{folded[n.casefold()]}' for '{n}'" for n in missing if n.casefold() in folded]
        if near:
            return f" (the file has {', '.join(near)}: names are case-sensitive)"
        return f"; the file has {_quoted(names)}"

    def _next_record(self) -> tuple[int, list[str]] | None:
        """The next non-blank record and the line it starts on, or None at the end."""
        return next(self._records(), None)

    # --- rows --------------------------------------------------------------------------------

    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """(start line, cells) of each non-blank record."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            yield pending
        reader = self._csv
        previous = reader.line_num
        try:
            for record in reader:
                line = previous + 1
                previous = reader.line_num
                if record:
                    yield line, record
        except csv.Error as exc:
            line = reader.line_num
            raise CsvFormatError(f"line {line}: {exc}; check the quoting", line=line) from None

    def _rows(self) -> Iterator[Row]:
        # The hot loop of an import: _records inlined, everything it touches bound locally.
        if self._pending is not None:
            pending, self._pending = self._pending, None
            yield from self._row(*pending)
        parse, build, digest = self._plan.parse, self._plan.build, self._plan.digest
        reader = self._csv
        previous = reader.line_num
        try:
            for record in reader:
                line = previous + 1
                previous = reader.line_num
                if not record:
                    continue
                self.rows_read += 1
                parsed = parse(line, record)
                if isinstance(parsed, list):
                    yield from parsed
                else:
                    yield RowResult(line, parsed[0], (build(parsed[1]),), digest(parsed[1]))
        except csv.Error as exc:
            line = reader.line_num
            raise CsvFormatError(f"line {line}: {exc}; check the quoting", line=line) from None

    def _row(self, line: int, record: list[str]) -> Iterator[Row]:
        self.rows_read += 1
        parsed = self._plan.parse(line, record)
        if isinstance(parsed, list):
            yield from parsed
        else:
            key, values = parsed
            yield RowResult(line, key, (self._plan.build(values),), self._plan.digest(values))

    def _product_rows(self) -> Iterator[Row]:
        # Rows of one customer must be contiguous (customers in any order), which is what a file
        # sorted or grouped by customer gives: a customer's list is complete when the key
        # changes, so memory holds one customer's rows. A hash per customer seen refuses a
        # customer whose rows come back later: those would replace the list with its tail.
        # (Accepting any order would need all rows, or a buffer as large as the file.)
        plan = self._plan
        seen: set[int] = set()
        group = _ProductGroup(plan)
        for line, record in self._records():
            self.rows_read += 1
            key = plan.key_of(record)
            if key is None:
                yield from plan.errors(line, record)
                continue
            if key != group.key:
                if group.key is not None:
                    seen.add(hash(group.key))
                    yield from group.close()
                if hash(key) in seen:
                    column = self._sync.key.column
                    yield RowError(
                        line,
                        column,
                        record[plan.key_index],
                        "the rows of this customer must be contiguous but some came earlier in"
                        f" the file; sort the file by {column}",
                    )
                    continue
                group.open(key, line)
            parsed = plan.parse(line, record)
            if isinstance(parsed, list):
                group.fail(parsed)
            else:
                group.add(line, parsed[1])
        yield from group.close()


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


class _ProductGroup:
    """The rows of one customer in a products sync, folded into list attributes."""

    def __init__(self, plan: RowPlan) -> None:
        self._plan = plan
        self.key: str | None = None
        self._first_line = 0
        self._lists: dict[str, dict[str, None]] = {}
        self._lines: list[int] = []
        self._errors: list[RowError] = []

    def open(self, key: str, line: int) -> None:
        self.key = key
        self._first_line = line
        self._lists = {attribute: {} for _, attribute in self._plan.stored}
        self._lines = []
        self._errors = []

    def add(self, line: int, values: Values) -> None:
        self._lines.append(line)
        for slot, attribute in self._plan.stored:
            value = values[slot]
            if isinstance(value, tuple):
                self._lists[attribute].update(dict.fromkeys(value))
            elif value is not None:
                self._lists[attribute][str(value)] = None

    def fail(self, errors: list[RowError]) -> None:
        self._errors.extend(errors)

    def close(self) -> Iterator[Row]:
        key = self.key
        if key is None:
            return
        self.key = None
        if self._errors:
            # A partial list would replace the customer's complete one: import none of it.
            yield from self._errors
            bad = self._errors[0].line
            for line in self._lines:
                yield RowError(line, None, None, f"not imported: line {bad} of the same customer is invalid")
            return
        values: Values = [None] * (1 + max((slot for slot, _ in self._plan.stored), default=0))
        for slot, attribute in self._plan.stored:
            items = tuple(self._lists[attribute])
            values[slot] = items if items else None
        events = (self._plan.build(values),)
        yield RowResult(self._first_line, key, events, self._plan.digest(events))


class _Source(io.RawIOBase):
    """The caller's stream behind the prefix already read from it. It checks the bytes when
    asked, and leaves the caller's stream open when the text wrapper over it goes away."""

    def __init__(self, stream: BinaryIO, prefix: bytes, checker: ByteChecker | None) -> None:
        super().__init__()
        self._stream = stream
        self._prefix = prefix
        self._checker = checker
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            data, self._prefix = self._prefix[: len(view)], self._prefix[len(view) :]
        else:
            data = self._stream.read(len(view))
        if self._checker is not None:
            if data:
                self._checker.feed(data)
            else:
                self._checker.finish()
        size = len(data)
        view[:size] = data
        self.bytes_read += size
        return size
