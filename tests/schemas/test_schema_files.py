"""The ``.avsc`` files: one documented named type each, evolvable, mirroring ``engine.events``."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest

from engine.events import PAYLOAD_TYPE_NAMES, PushToken
from schemas import records
from schemas.catalog import (
    NAMESPACE,
    SCHEMA_DIR,
    WIRE_RECORDS,
    expand,
    load_named_types,
    load_schema_set,
)
from schemas.errors import SchemaDefinitionError
from schemas.events import PAYLOAD_RECORD_NAMES

NAMED = load_named_types()
CURRENT = load_schema_set().current
FILES = sorted(SCHEMA_DIR.glob("*.avsc"))


def fields_of(name: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = NAMED[f"{NAMESPACE}.{name}"]["fields"]
    return fields


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_schema_file_documents_its_type_and_every_field(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema.get("doc"), f"{path.name} has no doc"
    undocumented = [field["name"] for field in schema.get("fields", []) if not field.get("doc")]
    assert not undocumented, f"{path.name}: fields without a doc: {undocumented}"


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_nullable_field_lists_null_first_and_defaults_to_null(path: Path) -> None:
    for field in json.loads(path.read_text()).get("fields", []):
        if isinstance(field["type"], list) and "null" in field["type"]:
            assert field["type"][0] == "null", f"{path.name}:{field['name']}"
            assert "default" in field and field["default"] is None, f"{path.name}:{field['name']}"


def test_every_named_type_is_part_of_a_wire_record() -> None:
    # A type no wire record uses would escape the compatibility check.
    expanded = json.dumps(list(CURRENT.values()))
    unused = [name for name in NAMED if f'"name": "{name.rpartition(".")[2]}"' not in expanded]
    assert not unused


def avro_field_name(python_name: str) -> str:
    # Timestamps are `*_at` with logical type timestamp-millis in Avro, `*_at_ms` ints in Python.
    return python_name.removesuffix("_ms") if python_name.endswith("_at_ms") else python_name


@pytest.mark.parametrize("payload_type", [*PAYLOAD_TYPE_NAMES, PushToken], ids=lambda kind: kind.__name__)
def test_each_payload_record_mirrors_its_engine_dataclass(payload_type: type) -> None:
    python_fields = [avro_field_name(field.name) for field in dataclasses.fields(payload_type)]
    assert [field["name"] for field in fields_of(payload_type.__name__)] == python_fields


def test_the_envelope_payload_union_holds_exactly_the_engine_payload_types() -> None:
    payload = next(field for field in fields_of("Envelope") if field["name"] == "payload")
    expected = [f"{NAMESPACE}.{kind.__name__}" for kind in PAYLOAD_TYPE_NAMES]
    assert payload["type"] == expected
    assert set(expected) == PAYLOAD_RECORD_NAMES


@pytest.mark.parametrize(
    ("record", "shape"),
    [
        ("Definition", records.DefinitionRecord),
        ("Delivery", records.DeliveryRecord),
        ("SegmentChange", records.SegmentChangeRecord),
        ("Decision", records.DecisionRecord),
        ("DeadLetter", records.DeadLetterRecord),
    ],
)
def test_each_typed_dict_has_the_fields_of_its_record_and_optional_means_defaulted(
    record: str, shape: Any
) -> None:
    fields = fields_of(record)
    assert list(typing.get_type_hints(shape)) == [field["name"] for field in fields]
    assert shape.__optional_keys__ == {field["name"] for field in fields if "default" in field}


def test_the_wire_records_are_the_values_of_the_six_topics() -> None:
    assert set(WIRE_RECORDS) == {
        "Envelope",
        "Definition",
        "Delivery",
        "SegmentChange",
        "Decision",
        "DeadLetter",
    }


def test_a_file_must_be_named_after_the_type_it_defines(tmp_path: Path) -> None:
    (tmp_path / "Wrong.avsc").write_text(
        json.dumps({"type": "record", "name": "Right", "namespace": NAMESPACE, "fields": []})
    )
    with pytest.raises(SchemaDefinitionError, match=r"Wrong\.avsc must define one named type"):
        load_named_types(tmp_path)


def test_a_reference_to_a_missing_type_names_the_file_to_add() -> None:
    with pytest.raises(SchemaDefinitionError, match=r"add schemas/Nowhere\.avsc"):
        expand("Nowhere", NAMED)


def test_expanding_inlines_each_named_type_once_then_refers_to_it_by_name() -> None:
    contact = json.dumps(expand("ContactUpdate", NAMED))
    assert contact.count('"name": "PushToken"') == 1
    assert '"items": "io.refract.PushToken"' in contact
