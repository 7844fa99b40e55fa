"""The one codec of Refract: every record on the log, in Avro single-object encoding.

``encode_envelope``/``decode_envelope`` map the typed ``engine.events.Envelope``; ``encode`` and
``decode`` handle the other topic values (Definition, Delivery, SegmentChange, Decision,
DeadLetter) as Avro dicts. Decoding finds the writer schema by the fingerprint in the header,
among the current schemas and every released version in ``schemas/history/``, and resolves it
to the current schema; bad bytes raise ``DecodeError`` or ``UnknownSchemaFingerprint``, never a
fastavro error.

Record timestamps (``*_at``, Avro ``timestamp-millis``) are int epoch milliseconds in Python:
the codec hands fastavro schemas without logical types so that nothing is converted on the hot
path. The wire bytes and fingerprints are the same either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError as FastavroValidationError
from fastavro.validation import validate

from engine.errors import ConfigurationError, DecodeError, UnknownSchemaFingerprint
from engine.events import Envelope, Payload
from engine.segments.membership import SegmentChange
from schemas.avro_binary import checked_long, encode_long, string_bytes
from schemas.catalog import JsonSchema, SchemaSet, load_schema_set
from schemas.envelope_writer import EnvelopeWriter, compile_writer
from schemas.errors import EncodeError, SchemaDefinitionError
from schemas.events import envelope_from_avro, envelope_to_avro
from schemas.framing import HEADER_SIZE, MARKER, schema_fingerprint
from schemas.record_writer import RecordWriter, compile_record_writer

ENVELOPE = "Envelope"
SEGMENT_CHANGE = "SegmentChange"
_SEGMENT_CHANGE_FIELDS = (
    ("customer_id", "string"),
    ("segment_id", "string"),
    ("segment_version", "long"),
    ("change", "enum"),
    ("caused_by_event_id", "string"),
    ("occurred_at", "long"),
)
_PARTS_REMEMBERED = 4096
DEAD_LETTER = "DeadLetter"
_MARKER_SIZE = len(MARKER)


@dataclass(frozen=True, slots=True)
class _WriterSchema:
    """A schema some producer may have written with, and how to read it as the current one."""

    record_name: str
    version: int | None  # None: the current schema, not (yet) recorded in history
    schema: dict[str, Any]  # parsed by fastavro, without logical types
    reader: dict[str, Any] | None  # the current schema when it differs, else None


@dataclass(frozen=True, slots=True)
class _Output:
    header: bytes
    schema: dict[str, Any]
    # Top-level int/long/boolean fields: (name, Avro type). fastavro writes 1.5 into a long as 1
    # and "no" into a boolean as true, silently; full validation would cost ~3x the write itself.
    guarded: tuple[tuple[str, str], ...]
    # The hand-written writer of a plain record (None: fastavro writes it).
    by_hand: RecordWriter | None


_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _segment_change_symbols(schema: Mapping[str, Any]) -> dict[str, bytes] | None:
    """The encoded change kinds, when SegmentChange has the layout ``encode_segment_changes``
    writes by hand (else None: fastavro writes each)."""
    layout = []
    for field in schema["fields"]:
        kind = field["type"]
        layout.append((field["name"], kind.get("type") if isinstance(kind, dict) else kind))
    if tuple(layout) != _SEGMENT_CHANGE_FIELDS:
        return None
    symbols = schema["fields"][3]["type"]["symbols"]
    return {symbol: encode_long(index) for index, symbol in enumerate(symbols)}


def _guarded_fields(schema: JsonSchema) -> tuple[tuple[str, str], ...]:
    guarded = []
    for field in schema["fields"]:
        types = field["type"] if isinstance(field["type"], list) else [field["type"]]
        kinds = [kind.get("type") if isinstance(kind, dict) else kind for kind in types]
        not_null = [kind for kind in kinds if kind != "null"]
        if len(not_null) == 1 and not_null[0] in ("int", "long", "boolean"):
            guarded.append((field["name"], not_null[0]))
    return tuple(guarded)


def _check_guarded(record_name: str, value: Mapping[str, Any], output: _Output) -> None:
    for name, kind in output.guarded:
        item = value.get(name)
        if item is None:
            continue  # absent or null: the writer applies the default or reports it missing
        if kind == "boolean":
            if type(item) is not bool:
                raise EncodeError(
                    f"{record_name}.{name} is a {type(item).__name__}, expected a bool", field=name
                )
        elif type(item) is not int or not _INT_RANGES[kind][0] <= item <= _INT_RANGES[kind][1]:
            raise EncodeError(
                f"{record_name}.{name} must be an int that fits an Avro {kind}, got {type(item).__name__}",
                field=name,
            )


class Codec:
    """Encodes and decodes every wire record; built once, shared, safe to use from any thread.

    ``write_versions`` pins the schema version a record is *written* with (e.g. during a rolling
    upgrade, so that workers of the previous release can still read what this one writes);
    reading always resolves to the current schema.
    """

    def __init__(self, schemas: SchemaSet, write_versions: Mapping[str, int] | None = None) -> None:
        self._outputs: dict[str, _Output] = {}
        self._writers: dict[bytes, _WriterSchema] = {}
        for record_name, current in schemas.current.items():
            self._add_record(record_name, current, schemas.released.get(record_name, ()))
        for record_name, version in (write_versions or {}).items():
            self._pin(record_name, version, schemas)
        envelope = self._outputs.get(ENVELOPE)
        self._envelope_header = envelope.header if envelope is not None else b""
        self._envelope_writer: EnvelopeWriter | None = (
            compile_writer(envelope.schema) if envelope is not None else None
        )
        segment_change = self._outputs.get(SEGMENT_CHANGE)
        self._segment_change_symbols = (
            _segment_change_symbols(segment_change.schema) if segment_change is not None else None
        )
        self._segment_change_parts: dict[tuple[str, int, str], bytes] = {}

    def _add_record(self, record_name: str, current: JsonSchema, released: tuple[JsonSchema, ...]) -> None:
        reader = _fastavro_schema(current)
        current_fingerprint = schema_fingerprint(current)
        self._outputs[record_name] = _Output(
            MARKER + current_fingerprint, reader, _guarded_fields(current), compile_record_writer(reader)
        )
        current_version = None
        for version, schema in enumerate(released, start=1):
            fingerprint = schema_fingerprint(schema)
            if fingerprint == current_fingerprint:
                current_version = version
                continue
            writer = _WriterSchema(record_name, version, _fastavro_schema(schema), reader)
            self._register(fingerprint, writer)
        current_writer = _WriterSchema(record_name, current_version, reader, None)
        self._register(current_fingerprint, current_writer)

    def _register(self, fingerprint: bytes, writer: _WriterSchema) -> None:
        known = self._writers.get(fingerprint)
        if known is not None and known.record_name != writer.record_name:
            raise SchemaDefinitionError(
                f"{writer.record_name} and {known.record_name} have the same fingerprint "
                f"{fingerprint.hex()}; rename one of them"
            )
        self._writers[fingerprint] = writer

    def _pin(self, record_name: str, version: int, schemas: SchemaSet) -> None:
        released = schemas.released.get(record_name, ())
        if record_name not in self._outputs or not 1 <= version <= len(released):
            raise ConfigurationError(
                f"cannot write {record_name} with version {version}: the released versions of "
                f"{record_name} are 1..{len(released)} (see schemas/history/{record_name}/)"
            )
        schema = released[version - 1]
        fingerprint = schema_fingerprint(schema)
        written = self._writers[fingerprint].schema
        self._outputs[record_name] = _Output(
            MARKER + fingerprint, written, _guarded_fields(schema), compile_record_writer(written)
        )

    @property
    def record_names(self) -> tuple[str, ...]:
        """The records this codec writes and reads."""
        return tuple(self._outputs)

    def readable_versions(self) -> list[tuple[str, int | None, bytes]]:
        """Every writer schema this codec reads: (record, version, fingerprint).

        The version is None for a current schema not yet recorded in ``schemas/history``.
        """
        return [
            (writer.record_name, writer.version, fingerprint) for fingerprint, writer in self._writers.items()
        ]

    def fingerprint(self, record_name: str) -> bytes:
        """The 8-byte fingerprint this codec writes ``record_name`` with."""
        return self._output(record_name).header[_MARKER_SIZE:]

    def encode_envelope(self, envelope: Envelope) -> bytes:
        """The single-object encoding of an event of ``refract.events``."""
        if self._envelope_writer is not None:
            # Profile updates are written by hand (several times faster); the rest, and anything
            # the hand-written writer does not recognize, by fastavro.
            body = self._envelope_writer.envelope(envelope)
            if body is not None:
                return self._envelope_header + body
        return self._write(ENVELOPE, envelope_to_avro(envelope), check_types=False)

    def encode_event(
        self,
        event_id: str,
        customer_id: str,
        occurred_at_ms: int,
        received_at_ms: int,
        source: str,
        payload: Payload,
    ) -> bytes:
        """``encode_envelope(Envelope(...))`` of these fields, without building the Envelope (for
        writers of many events: an import)."""
        if self._envelope_writer is not None:
            body = self._envelope_writer.fields(
                event_id, customer_id, occurred_at_ms, received_at_ms, source, payload
            )
            if body is not None:
                return self._envelope_header + body
        envelope = Envelope(event_id, customer_id, occurred_at_ms, received_at_ms, source, payload)
        return self._write(ENVELOPE, envelope_to_avro(envelope), check_types=False)

    def encode_segment_changes(
        self, customer_id: str, caused_by: str | None, changes: Sequence[SegmentChange]
    ) -> list[bytes]:
        """The SegmentChange records of one customer's ``changes``, caused by the event
        ``caused_by`` (None: a backfill, whose cause names the segment and its version).

        The bytes of ``encode_typed("SegmentChange", ...)``; a busy event makes several, so the
        parts they share (the customer, the cause and time, each segment's id and version) are
        written once.
        """
        symbols = self._segment_change_symbols
        if symbols is None:
            return [self._segment_change_by_fastavro(customer_id, caused_by, change) for change in changes]
        try:
            head = self._output(SEGMENT_CHANGE).header + string_bytes(customer_id)
        except UnicodeEncodeError:
            return [self._segment_change_by_fastavro(customer_id, caused_by, change) for change in changes]
        parts = self._segment_change_parts
        records: list[bytes] = []
        tail_of: tuple[str, int] | None = None
        tail = b""
        for change in changes:
            segment_id, version, kind, at_ms = change
            cause = caused_by or f"backfill:{segment_id}:{version}"
            try:
                middle = parts.get((segment_id, version, kind))
                if middle is None:
                    middle = string_bytes(segment_id) + checked_long(version) + symbols[kind]
                    if len(parts) >= _PARTS_REMEMBERED:
                        parts.clear()
                    parts[(segment_id, version, kind)] = middle
                if tail_of != (cause, at_ms):
                    tail, tail_of = string_bytes(cause) + checked_long(at_ms), (cause, at_ms)
            except (UnicodeEncodeError, KeyError, OverflowError, TypeError):
                records.append(self._segment_change_by_fastavro(customer_id, caused_by, change))
                continue
            records.append(head + middle + tail)
        return records

    def _segment_change_by_fastavro(
        self, customer_id: str, caused_by: str | None, change: SegmentChange
    ) -> bytes:
        return self.encode_typed(
            SEGMENT_CHANGE,
            {
                "customer_id": customer_id,
                "segment_id": change.segment_id,
                "segment_version": change.version,
                "change": change.kind,
                "caused_by_event_id": caused_by or f"backfill:{change.segment_id}:{change.version}",
                "occurred_at": change.at_ms,
            },
        )

    def decode_envelope(self, data: bytes) -> Envelope:
        """The event encoded in ``data``; DecodeError if it is not a readable Envelope."""
        writer, value = self._read(data)
        if writer.record_name != ENVELOPE:
            raise DecodeError(f"expected an Envelope, found a {writer.record_name}")
        try:
            return envelope_from_avro(value)
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"Envelope has a value out of range: {_describe(exc)}") from exc

    def encode(self, record_name: str, value: Mapping[str, Any]) -> bytes:
        """The single-object encoding of ``value``, an Avro dict of ``record_name``.

        Timestamps are int epoch milliseconds; fields with a default may be left out.
        """
        return self._write(record_name, value, check_types=True)

    def encode_typed(self, record_name: str, value: Mapping[str, Any]) -> bytes:
        """``encode`` of a dict built from a typed record (``Decision.to_record()``...), whose field
        types a type checker has seen: the int and boolean guard is skipped, as for the Envelope.

        For the records written several times per event; the bytes are the same.
        """
        return self._write(record_name, value, check_types=False)

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """The record name (e.g. ``"Delivery"``) and Avro dict encoded in ``data``.

        A union of records (the Envelope payload) reads as ``(record full name, dict)``.
        """
        writer, value = self._read(data)
        return writer.record_name, value

    def encode_dead_letter(
        self,
        *,
        original_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error_code: str,
        error_message: str,
        failed_at_ms: int,
    ) -> bytes:
        """The DeadLetter record of a record a consumer could not process."""
        return self._write(
            DEAD_LETTER,
            {
                "original_topic": original_topic,
                "partition": partition,
                "offset": offset,
                "key": key,
                "value": value,
                "error_code": error_code,
                "error_message": error_message,
                "failed_at": failed_at_ms,
            },
            check_types=True,
        )

    def _output(self, record_name: str) -> _Output:
        try:
            return self._outputs[record_name]
        except KeyError:
            raise EncodeError(
                f"{record_name!r} is not a record on the log; known: {', '.join(self._outputs)}"
            ) from None

    def _write(self, record_name: str, value: Mapping[str, Any], *, check_types: bool) -> bytes:
        """``check_types`` for dicts that no type checker has seen (the Envelope is typed)."""
        output = self._output(record_name)
        if output.by_hand is not None:
            body = output.by_hand(value)  # None for anything unexpected: fastavro says what is wrong
            if body is not None:
                return output.header + body
        if check_types:
            _check_guarded(record_name, value, output)
        buffer = BytesIO()
        buffer.write(output.header)
        try:
            schemaless_writer(buffer, output.schema, value)
        except EncodeError:
            raise
        except Exception as exc:
            raise _encode_error(record_name, value, output.schema, exc) from exc
        return buffer.getvalue()

    def _read(self, data: bytes) -> tuple[_WriterSchema, Any]:
        writer = self._writers.get(data[_MARKER_SIZE:HEADER_SIZE])
        if writer is None or data[:_MARKER_SIZE] != MARKER:
            raise _header_error(data)
        stream = BytesIO(data)
        stream.seek(HEADER_SIZE)
        try:
            value = schemaless_reader(stream, writer.schema, writer.reader, True)
        except Exception as exc:
            raise DecodeError(
                f"{writer.record_name} body ({len(data) - HEADER_SIZE} bytes) does not match "
                f"its schema{_version_label(writer)}: {_describe(exc)}; the bytes are truncated "
                "or corrupt"
            ) from exc
        if stream.tell() != len(data):
            raise DecodeError(
                f"{writer.record_name} is followed by {len(data) - stream.tell()} unexpected "
                "bytes; a single-object encoded value holds exactly one record"
            )
        return writer, value


def _fastavro_schema(schema: JsonSchema) -> dict[str, Any]:
    parsed = parse_schema(_without_logical_types(schema))
    assert isinstance(parsed, dict)
    return parsed


def _without_logical_types(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_logical_types(item) for item in node]
    if isinstance(node, dict):
        return {key: _without_logical_types(item) for key, item in node.items() if key != "logicalType"}
    return node


def _version_label(writer: _WriterSchema) -> str:
    return " (current)" if writer.version is None else f" (v{writer.version})"


def _header_error(data: bytes) -> DecodeError:
    if not isinstance(data, bytes | bytearray | memoryview):
        return DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) < HEADER_SIZE:
        return DecodeError(
            f"{len(data)} bytes is too short for an Avro single-object encoded value "
            f"(at least {HEADER_SIZE}: marker C3 01 and an 8-byte schema fingerprint)"
        )
    if data[:_MARKER_SIZE] != MARKER:
        return DecodeError(
            f"value starts with {bytes(data[:_MARKER_SIZE]).hex(' ').upper()}, not the Avro "
            "single-object marker C3 01; it was not written by this codec (JSON? another format?)"
        )
    fingerprint = bytes(data[_MARKER_SIZE:HEADER_SIZE])
    return UnknownSchemaFingerprint(
        f"no known schema has fingerprint {fingerprint.hex()} (CRC-64-AVRO, little-endian); "
        "the value was written by a newer release or a foreign producer: upgrade this worker, "
        "or add the writer's schema to schemas/history/"
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


# fastavro's validation messages quote the offending value; values are message bodies (emails,
# names), which must not reach logs, so only the field, the type and the expectation are kept.
_VALUE_MESSAGE = re.compile(
    r"^(?P<field>\S+) is <.*> of type <class '(?P<type>[^']+)'> expected (?P<expected>.+)$", re.S
)


def _encode_error(
    record_name: str, value: Mapping[str, Any], schema: dict[str, Any], cause: Exception
) -> EncodeError:
    if not isinstance(cause, FastavroValidationError):
        cause = _validation_error(value, schema) or cause
    if not isinstance(cause, FastavroValidationError):
        detail = str(cause) if isinstance(cause, OverflowError) else "a value of the wrong type"
        return EncodeError(f"{record_name} cannot be encoded: {type(cause).__name__}, {detail}")
    problems = []
    for error in cause.errors:
        match = _VALUE_MESSAGE.match(str(error))
        if match:
            problems.append(f"{match['field']} has type {match['type']}, expected {match['expected']}")
        else:
            problems.append(f"{str(error).split(' is ', 1)[0]} is missing or of the wrong type")
    return EncodeError(f"{record_name} cannot be encoded: {'; '.join(problems)}")


def _validation_error(value: Mapping[str, Any], schema: dict[str, Any]) -> FastavroValidationError | None:
    try:
        validate(value, schema, raise_errors=True)
    except FastavroValidationError as exc:
        return exc
    except Exception:
        return None  # the validator gave up too; the writer's own error is reported instead
    return None


DEFAULT_CODEC = Codec(load_schema_set())
"""The codec of the schemas kept in this repository; the functions below are its methods."""

encode_envelope = DEFAULT_CODEC.encode_envelope
encode_event = DEFAULT_CODEC.encode_event
decode_envelope = DEFAULT_CODEC.decode_envelope
encode = DEFAULT_CODEC.encode
encode_typed = DEFAULT_CODEC.encode_typed
encode_segment_changes = DEFAULT_CODEC.encode_segment_changes
decode = DEFAULT_CODEC.decode
encode_dead_letter = DEFAULT_CODEC.encode_dead_letter
fingerprint = DEFAULT_CODEC.fingerprint
