"""The single-object header: the marker and the CRC-64-AVRO fingerprint of the canonical form."""

from __future__ import annotations

import json

import avro.schema
import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint

from schemas.catalog import WIRE_RECORDS, load_schema_set
from schemas.codec import DEFAULT_CODEC, _without_logical_types
from schemas.framing import (
    HEADER_SIZE,
    MARKER,
    parsing_canonical_form,
    rabin_fingerprint,
    schema_fingerprint,
)

# Canonical forms and their fingerprints (as signed 64-bit ints) from the Avro project's shared
# test data (share/test/data/schema-tests.txt), checked there against the Java implementation.
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"int"', 8247732601305521295),
    ('"string"', -8142146995180207161),
    ("[]", -1241056759729112623),
    ('{"name":"foo","type":"record","fields":[]}', -4824392279771201922),
    ('{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771),
    ('{"name":"foo","type":"enum","symbols":["A1"]}', -6342190197741309591),
    ('{"type":"map","values":"string"}', -8732877298790414990),
]

CURRENT = load_schema_set().current


@pytest.mark.parametrize(("canonical", "expected"), SPEC_VECTORS)
def test_rabin_fingerprint_matches_the_avro_specification_vectors(canonical: str, expected: int) -> None:
    assert rabin_fingerprint(canonical.encode()) == (expected % 2**64).to_bytes(8, "little")


@pytest.mark.parametrize("record", WIRE_RECORDS)
def test_fingerprint_equals_the_avro_library_rabin_of_the_same_canonical_form(record: str) -> None:
    canonical = parsing_canonical_form(CURRENT[record]).encode()
    assert schema_fingerprint(CURRENT[record]) == avro.schema._crc_64_fingerprint(canonical)


@pytest.mark.parametrize("record", WIRE_RECORDS)
def test_fingerprint_equals_the_avro_library_fingerprint_of_the_schema(record: str) -> None:
    # Logical types do not belong in the canonical form; the avro package keeps them there (see
    # the test below), so it is asked about the schema without them, which is the same on the wire.
    plain = avro.schema.parse(json.dumps(_without_logical_types(CURRENT[record])))
    assert schema_fingerprint(CURRENT[record]) == plain.fingerprint("CRC-64-AVRO")


@pytest.mark.parametrize("record", WIRE_RECORDS)
def test_fingerprint_equals_fastavros_fingerprint(record: str) -> None:
    canonical = parsing_canonical_form(CURRENT[record])
    # fastavro gives the hex of the same little-endian bytes.
    expected = fastavro_fingerprint(canonical, "CRC-64-AVRO")
    assert schema_fingerprint(CURRENT[record]).hex() == expected


def test_canonical_form_drops_docs_defaults_and_logical_types_like_the_java_reference() -> None:
    schema = {
        "type": "record",
        "name": "Stamp",
        "namespace": "io.refract",
        "doc": "gone",
        "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}, "doc": "x"},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
    assert parsing_canonical_form(schema) == (
        '{"name":"io.refract.Stamp","type":"record","fields":'
        '[{"name":"at","type":"long"},{"name":"note","type":["null","string"]}]}'
    )


def test_the_avro_package_keeps_logical_types_in_its_canonical_form() -> None:
    # Why the codec does not take fingerprints from the avro package: for a logical type it
    # gives {"type":"long"} where the specification and Java give "long". If this starts to
    # fail, avro fixed it and the test above can compare full schemas directly.
    schema = avro.schema.parse('{"type": "long", "logicalType": "timestamp-millis"}')
    assert schema.canonical_form == '{"type":"long"}'


@pytest.mark.parametrize("record", WIRE_RECORDS)
def test_encoded_values_start_with_the_marker_and_the_schema_fingerprint(record: str) -> None:
    assert DEFAULT_CODEC.fingerprint(record) == schema_fingerprint(CURRENT[record])
    assert MARKER == b"\xc3\x01" and HEADER_SIZE == 10


def test_fingerprints_of_the_wire_records_are_distinct() -> None:
    fingerprints = {DEFAULT_CODEC.fingerprint(record) for record in WIRE_RECORDS}
    assert len(fingerprints) == len(WIRE_RECORDS)
