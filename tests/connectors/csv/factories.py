"""Factories for CSV sync tests: sync definitions, files in any encoding, and reading them."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import yaml

from connectors.csv import CsvReader, RowError, RowResult, Sync, load_sync


def make_sync(**overrides: Any) -> Sync:
    """An attributes sync keyed by ``id`` with one string column ``name``, changed by overrides
    (top-level options of the YAML form; ``None`` removes an option)."""
    definition: dict[str, Any] = {
        "id": "customers",
        "kind": "attributes",
        "key": {"column": "id"},
        "columns": [{"column": "name"}],
    }
    definition.update(overrides)
    return load_sync(yaml.safe_dump({k: v for k, v in definition.items() if v is not None}))


def make_csv(
    rows: Sequence[Sequence[str]],
    header: Sequence[str] | None = ("id", "name"),
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
) -> bytes:
    """The bytes of a CSV file (quoted by the csv module) with ``header`` then ``rows``."""
    import csv

    text = io.StringIO(newline="")
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    data = text.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


class UnseekableStream(io.RawIOBase):
    """A binary stream that cannot seek, like an HTTP response body."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def read_rows(data: bytes, sync: Sync, *, seekable: bool = True) -> list[RowResult | RowError]:
    """Every row ``CsvReader`` yields for the file ``data``."""
    stream: Any = io.BytesIO(data) if seekable else io.BufferedReader(UnseekableStream(data))
    return list(CsvReader(stream, sync))


def results(rows: Sequence[RowResult | RowError]) -> list[RowResult]:
    return [row for row in rows if isinstance(row, RowResult)]


def errors(rows: Sequence[RowResult | RowError]) -> list[RowError]:
    return [row for row in rows if isinstance(row, RowError)]


def attributes_of(data: bytes, sync: Sync) -> list[dict[str, Any]]:
    """The ``set`` of each row's CustomerUpdate (the file must have no bad row)."""
    rows = read_rows(data, sync)
    assert errors(rows) == []
    return [dict(row.events[0].set) for row in results(rows)]  # type: ignore[union-attr]
