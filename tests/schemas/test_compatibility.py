"""Schema changes stay backward and forward compatible with every released version.

The first two tests guard the repository: they fail when a ``.avsc`` change breaks readers or
writers of a released version, or when a changed schema was not recorded in ``schemas/history``.
The rest prove that the checker notices breaking changes and names the field.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.errors import SchemaCompatibilityError
from schemas.catalog import (
    SCHEMA_DIR,
    WIRE_RECORDS,
    load_schema_set,
    released_versions,
    version_path,
)
from schemas.compatibility import check_compatible, find_incompatibilities, find_problems
from schemas.errors import SchemaDefinitionError
from schemas.release import main, release, unreleased_records

SCHEMAS = load_schema_set()
JsonSchema = dict[str, Any]


@pytest.mark.parametrize("record", WIRE_RECORDS)
def test_the_current_schema_is_compatible_both_ways_with_every_released_version(
    record: str,
) -> None:
    check_compatible(record, SCHEMAS.current[record], SCHEMAS.released[record])


def test_every_changed_wire_schema_is_recorded_in_history() -> None:
    missing = unreleased_records(SCHEMAS)
    assert not missing, (
        f"{', '.join(missing)} changed on the wire but schemas/history has no version for it: "
        "run `python -m schemas.release` and commit the new vN.avsc"
    )


# -- breaking changes are caught ----------------------------------------------------------------


def field_of(record: JsonSchema, name: str) -> JsonSchema:
    return next(field for field in record["fields"] if field["name"] == name)


def payload_branch(envelope: JsonSchema, name: str) -> JsonSchema:
    return next(b for b in field_of(envelope, "payload")["type"] if b.get("name") == name)


def changed(record: str, change: Callable[[JsonSchema], None]) -> JsonSchema:
    schema = copy.deepcopy(SCHEMAS.current[record])
    change(schema)
    return schema


def problems_of(record: str, schema: JsonSchema) -> list[str]:
    return [str(item) for item in find_incompatibilities(record, schema, SCHEMAS.released[record])]


def test_a_field_added_without_a_default_breaks_backward_compatibility_and_is_named() -> None:
    schema = changed(
        "Envelope",
        lambda s: payload_branch(s, "Tick")["fields"].append({"name": "attempt", "type": "long"}),
    )
    assert problems_of("Envelope", schema) == [
        "Envelope: the current schema cannot read data written with v1: payload<Tick>.attempt: "
        "the reader needs field 'attempt', which the writer does not have, and the reader's "
        "field has no default"
    ]


def test_a_field_added_with_a_default_is_compatible() -> None:
    schema = changed(
        "Envelope",
        lambda s: payload_branch(s, "Tick")["fields"].append(
            {"name": "attempt", "type": "long", "default": 0}
        ),
    )
    check_compatible("Envelope", schema, SCHEMAS.released["Envelope"])


def test_a_changed_field_type_breaks_both_ways_and_is_named() -> None:
    schema = changed("Delivery", lambda s: field_of(s, "campaign_version").update(type="string"))
    problems = problems_of("Delivery", schema)
    assert len(problems) == 2
    assert all("campaign_version: the writer's" in problem for problem in problems)
    assert "cannot read data written with v1" in problems[0]
    assert "readers of v1 cannot read data written with the current schema" in problems[1]


def test_a_removed_required_field_breaks_forward_compatibility() -> None:
    schema = changed("Decision", lambda s: s["fields"].remove(field_of(s, "reason")))
    assert problems_of("Decision", schema) == [
        f"Decision: readers of v{version} cannot read data written with the current schema: "
        "reason: the reader needs field 'reason', which the writer does not have, and the "
        "reader's field has no default"
        for version in (1, 2)
    ]


def test_a_removed_field_that_had_a_default_is_compatible() -> None:
    schema = changed("Delivery", lambda s: s["fields"].remove(field_of(s, "expires_at")))
    check_compatible("Delivery", schema, SCHEMAS.released["Delivery"])


def test_widening_int_to_long_breaks_forward_compatibility() -> None:
    schema = changed("DeadLetter", lambda s: field_of(s, "partition").update(type="long"))
    problems = problems_of("DeadLetter", schema)
    assert len(problems) == 1
    assert "readers of v1" in problems[0] and "partition: the writer's long" in problems[0]


def test_a_removed_event_type_breaks_backward_compatibility() -> None:
    def drop_erased(schema: JsonSchema) -> None:
        union = field_of(schema, "payload")["type"]
        union.remove(payload_branch(schema, "CustomerErased"))

    problems = problems_of("Envelope", changed("Envelope", drop_erased))
    assert problems == [
        "Envelope: the current schema cannot read data written with v1: payload<CustomerErased>: "
        "the reader's union has no branch for record io.refract.CustomerErased"
    ]


def test_a_new_event_type_breaks_forward_compatibility() -> None:
    # Avro readers fail on a union branch they do not know, so a new payload type needs readers
    # upgraded before writers (see docs/schemas.md); the check must make that visible.
    def add_login(schema: JsonSchema) -> None:
        field_of(schema, "payload")["type"].append(
            {"type": "record", "name": "Login", "namespace": "io.refract", "fields": []}
        )

    problems = problems_of("Envelope", changed("Envelope", add_login))
    assert len(problems) == 1
    assert "readers of v1" in problems[0] and "record io.refract.Login" in problems[0]


def test_a_new_event_type_passes_once_older_readers_are_declared_gone() -> None:
    # The rollout of docs/schemas.md: v2 adds the type, FORWARD_COMPATIBLE_FROM says v2 readers
    # are the oldest left; backward compatibility is still checked against every version.
    v1 = SCHEMAS.released["Envelope"][0]
    v2 = changed(
        "Envelope",
        lambda s: field_of(s, "payload")["type"].append(
            {"type": "record", "name": "Login", "namespace": "io.refract", "fields": []}
        ),
    )
    check_compatible("Envelope", v2, [v1, v2], forward_from=2)
    broken = copy.deepcopy(v2)
    payload_branch(broken, "Tick")["fields"].append({"name": "n", "type": "long"})
    with pytest.raises(SchemaCompatibilityError, match=r"written with v1: payload<Tick>\.n"):
        check_compatible("Envelope", broken, [v1, v2], forward_from=2)


def test_a_new_enum_symbol_breaks_forward_compatibility_and_is_named() -> None:
    schema = changed(
        "SegmentChange", lambda s: field_of(s, "change")["type"]["symbols"].append("REEVALUATED")
    )
    problems = problems_of("SegmentChange", schema)
    assert len(problems) == 1
    assert "change: the writer may write REEVALUATED" in problems[0]


def test_check_compatible_raises_one_error_listing_every_problem_and_what_to_do() -> None:
    def break_twice(schema: JsonSchema) -> None:
        field_of(schema, "campaign_version")["type"] = "string"
        schema["fields"].append({"name": "priority", "type": "int"})

    with pytest.raises(SchemaCompatibilityError) as caught:
        check_compatible("Delivery", changed("Delivery", break_twice), SCHEMAS.released["Delivery"])
    message = caught.value.message
    assert message.startswith("Delivery changed incompatibly:")
    assert "campaign_version" in message and "priority" in message
    assert "adds a field with a default" in message


def test_nested_problems_inside_maps_and_arrays_are_located() -> None:
    writer: JsonSchema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "tags", "type": {"type": "array", "items": "string"}}],
    }
    reader = copy.deepcopy(writer)
    reader["fields"][0]["type"]["items"] = "long"
    assert find_problems(reader, writer) == [
        ("tags[]", "the writer's string cannot be read as the reader's long")
    ]


# -- the history folder and the release step ----------------------------------------------------


@pytest.fixture
def schema_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of schemas/*.avsc with an empty history, to release into."""
    directory = tmp_path / "schemas"
    directory.mkdir()
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, directory)
    return directory, directory / "history"


def edit(path: Path, change: Callable[[JsonSchema], None]) -> None:
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def test_release_records_v1_of_every_wire_record_then_nothing(
    schema_copy: tuple[Path, Path],
) -> None:
    directory, history = schema_copy
    written = release(directory, history)
    assert sorted(path.relative_to(history).as_posix() for path in written) == sorted(
        f"{record}/v1.avsc" for record in WIRE_RECORDS
    )
    assert release(directory, history) == []


def test_release_records_a_compatible_change_as_the_next_version(
    schema_copy: tuple[Path, Path],
) -> None:
    directory, history = schema_copy
    release(directory, history)
    edit(
        directory / "Tick.avsc",
        lambda s: s["fields"].append({"name": "attempt", "type": "long", "default": 0}),
    )
    assert release(directory, history) == [version_path("Envelope", 2, history)]
    v2 = released_versions("Envelope", history)[1]
    assert "attempt" in json.dumps(v2)


def test_release_refuses_an_incompatible_change_and_writes_nothing(
    schema_copy: tuple[Path, Path],
) -> None:
    directory, history = schema_copy
    release(directory, history)
    edit(directory / "Tick.avsc", lambda s: s["fields"].append({"name": "n", "type": "long"}))
    with pytest.raises(SchemaCompatibilityError, match=r"payload<Tick>\.n"):
        release(directory, history)
    assert not version_path("Envelope", 2, history).exists()


def test_a_doc_only_change_needs_no_new_version(schema_copy: tuple[Path, Path]) -> None:
    directory, history = schema_copy
    release(directory, history)
    edit(directory / "Tick.avsc", lambda s: s.update(doc="Reworded."))
    assert release(directory, history) == []


def test_release_check_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0
    assert capsys.readouterr().out == ""


def test_history_versions_must_be_numbered_without_gaps(schema_copy: tuple[Path, Path]) -> None:
    directory, history = schema_copy
    release(directory, history)
    version_path("Envelope", 1, history).rename(version_path("Envelope", 2, history))
    with pytest.raises(SchemaDefinitionError, match="without gaps"):
        released_versions("Envelope", history)
