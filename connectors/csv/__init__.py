"""CSV imports and syncs: sync definitions (mappings) and streamed reading of files into events.

The pure core of importing: ``load_sync`` validates a YAML sync definition, ``CsvReader`` turns a
file into per-row events (or precise errors), ``envelope_for`` wraps them with deterministic ids
and ``ErrorReport`` writes the rows that failed. Sources, schedules and Kafka are wired elsewhere.
"""

from connectors.csv.errors import (
    CsvFormatError,
    EncodingRefused,
    FileRefused,
    HeaderRefused,
    MappingError,
    NotCsvRefused,
)
from connectors.csv.events import EventIds, envelope_for, event_id, event_source
from connectors.csv.mapping import (
    BasicAuth,
    BearerAuth,
    Column,
    FolderSource,
    Key,
    Schedule,
    Scope,
    Sync,
    UrlSource,
    from_body,
    load_sync,
    parse_sync,
    to_body,
)
from connectors.csv.reader import CsvReader, Row, RowError, RowResult
from connectors.csv.report import ErrorReport, write_error_report

__all__ = [
    "BasicAuth",
    "BearerAuth",
    "Column",
    "CsvFormatError",
    "CsvReader",
    "EncodingRefused",
    "ErrorReport",
    "EventIds",
    "FileRefused",
    "FolderSource",
    "HeaderRefused",
    "Key",
    "MappingError",
    "NotCsvRefused",
    "Row",
    "RowError",
    "RowResult",
    "Schedule",
    "Scope",
    "Sync",
    "UrlSource",
    "envelope_for",
    "event_id",
    "event_source",
    "from_body",
    "load_sync",
    "parse_sync",
    "to_body",
    "write_error_report",
]
