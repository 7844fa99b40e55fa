"""Whether a schema change keeps every reader and writer working, in words a person can act on.

A wire record's current schema must be *backward* compatible with each released version (the
current reader reads data written by the old one) and *forward* compatible (a reader of the old
release reads data written with the current one). The verdicts come from the ``avro`` library's
``ReaderWriterCompatibilityChecker``; this module walks the two schemas to say *where* a
problem is, by field name (``payload<CustomerUpdate>.tier``), because the library reports
positions inside unions only as indexes, or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityType,
    lookup_writer_field,
)
from avro.schema import (
    ArraySchema,
    EnumSchema,
    FixedSchema,
    MapSchema,
    NamedSchema,
    RecordSchema,
    Schema,
    UnionSchema,
    parse,
)

from engine.errors import SchemaCompatibilityError
from schemas.catalog import JsonSchema

Direction: TypeAlias = Literal["backward", "forward"]

_HINT = (
    "A compatible change adds a field with a default, removes only a field that has a default, "
    "and keeps each field's type; see docs/schemas.md."
)

# Per record, the oldest released version whose *readers* must still read data written with the
# current schema (1 when absent). Raise it only for a change old readers cannot read, such as a
# new event type in the Envelope payload union, and only with the rollout of docs/schemas.md:
# keep writing the previous version (Codec write_versions) until no older reader is running.
FORWARD_COMPATIBLE_FROM: Mapping[str, int] = {}


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One way the current schema and one released version cannot read each other's data."""

    record_name: str
    version: int
    direction: Direction
    location: str
    problem: str

    def __str__(self) -> str:
        if self.direction == "backward":
            who = f"the current schema cannot read data written with v{self.version}"
        else:
            who = f"readers of v{self.version} cannot read data written with the current schema"
        return f"{self.record_name}: {who}: {self.location or '(the record)'}: {self.problem}"


def find_problems(reader: JsonSchema, writer: JsonSchema) -> list[tuple[str, str]]:
    """Why ``reader`` cannot read data written with ``writer``: (field path, problem) pairs."""
    return _Explainer().explain(_parse(reader), _parse(writer), "")


def find_incompatibilities(
    record_name: str,
    current: JsonSchema,
    released: Sequence[JsonSchema],
    forward_from: int | None = None,
) -> list[Incompatibility]:
    """Every incompatibility between ``current`` and each released version, both ways.

    Forward compatibility is checked against versions ``forward_from`` and later only (default:
    ``FORWARD_COMPATIBLE_FROM``).
    """
    if forward_from is None:
        forward_from = FORWARD_COMPATIBLE_FROM.get(record_name, 1)
    found: list[Incompatibility] = []
    for version, old in enumerate(released, start=1):
        pairs: list[tuple[Direction, JsonSchema, JsonSchema]] = [("backward", current, old)]
        if version >= forward_from:
            pairs.append(("forward", old, current))
        for direction, reader, writer in pairs:
            for location, problem in find_problems(reader, writer):
                found.append(Incompatibility(record_name, version, direction, location, problem))
    return found


def check_compatible(
    record_name: str,
    current: JsonSchema,
    released: Sequence[JsonSchema],
    forward_from: int | None = None,
) -> None:
    """Raise SchemaCompatibilityError listing every incompatibility, if there is any."""
    found = find_incompatibilities(record_name, current, released, forward_from)
    if found:
        lines = "\n".join(f"  - {item}" for item in found)
        raise SchemaCompatibilityError(f"{record_name} changed incompatibly:\n{lines}\n{_HINT}")


def _parse(schema: JsonSchema) -> Schema:
    return parse(json.dumps(schema))


class _Explainer:
    """Descends reader and writer together, asking the avro checker at each step."""

    def __init__(self) -> None:
        self._checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]

    def _compatible(self, reader: Schema, writer: Schema) -> bool:
        result = self._checker.get_compatibility(reader, writer)
        return result.compatibility is not SchemaCompatibilityType.incompatible

    def explain(self, reader: Schema, writer: Schema, path: str) -> list[tuple[str, str]]:
        if self._compatible(reader, writer):
            return []
        if isinstance(writer, UnionSchema):
            # Every branch the writer may have used must be readable.
            problems = []
            for branch in writer.schemas:
                problems += self.explain(reader, branch, _branch_path(path, branch, writer))
            return problems or self._fallback(reader, writer, path)
        if isinstance(reader, UnionSchema):
            match = _matching_branch(reader, writer)
            if match is None:
                return [(path, f"the reader's union has no branch for {_kind(writer)}")]
            return self.explain(match, writer, path)
        if isinstance(reader, RecordSchema) and isinstance(writer, RecordSchema):
            return self._explain_records(reader, writer, path)
        if isinstance(reader, ArraySchema) and isinstance(writer, ArraySchema):
            return self.explain(reader.items, writer.items, f"{path}[]")
        if isinstance(reader, MapSchema) and isinstance(writer, MapSchema):
            return self.explain(reader.values, writer.values, f"{path}{{}}")
        if isinstance(reader, EnumSchema) and isinstance(writer, EnumSchema):
            missing = sorted(set(writer.symbols) - set(reader.symbols))
            if missing:
                return [
                    (
                        path,
                        f"the writer may write {', '.join(missing)}, which the reader's enum "
                        f"{reader.fullname} lacks (and it has no default symbol)",
                    )
                ]
        if isinstance(reader, FixedSchema) and isinstance(writer, FixedSchema):
            return [(path, f"fixed size {writer.size} cannot be read as size {reader.size}")]
        if (
            isinstance(reader, NamedSchema)
            and isinstance(writer, NamedSchema)
            and reader.fullname != writer.fullname
        ):
            return [(path, f"{writer.fullname} cannot be read as {reader.fullname}; add an alias")]
        return [(path, f"the writer's {_kind(writer)} cannot be read as the reader's {_kind(reader)}")]

    def _explain_records(
        self, reader: RecordSchema, writer: RecordSchema, path: str
    ) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        aliases = reader.props.get("aliases")
        if reader.fullname != writer.fullname and writer.fullname not in (
            aliases if isinstance(aliases, list) else ()
        ):
            problems.append((path, f"{writer.fullname} cannot be read as {reader.fullname}"))
        for field in reader.fields:
            field_path = f"{path}.{field.name}" if path else field.name
            writer_field = lookup_writer_field(writer_schema=writer, reader_field=field)
            if writer_field is None:
                if not field.has_default:
                    problems.append(
                        (
                            field_path,
                            f"the reader needs field {field.name!r}, which the writer "
                            "does not have, and the reader's field has no default",
                        )
                    )
            else:
                problems += self.explain(field.type, writer_field.type, field_path)
        return problems or self._fallback(reader, writer, path)

    def _fallback(self, reader: Schema, writer: Schema, path: str) -> list[tuple[str, str]]:
        result = self._checker.get_compatibility(reader, writer)
        return [(path, "; ".join(sorted(result.messages)) or "incompatible")]


def _matching_branch(union: UnionSchema, writer: Schema) -> Schema | None:
    """The reader branch Avro resolution would pick for ``writer``: same name, else same type."""
    branch: Schema
    for branch in union.schemas:
        if isinstance(branch, NamedSchema) and isinstance(writer, NamedSchema):
            if branch.fullname == writer.fullname:
                return branch
        elif branch.type == writer.type:
            return branch
    return None


def _branch_path(path: str, branch: Schema, union: UnionSchema) -> str:
    # Name the branch only where it tells something: a union of several records.
    named = [item for item in union.schemas if isinstance(item, NamedSchema)]
    if isinstance(branch, NamedSchema) and len(named) > 1:
        return f"{path}<{branch.name}>"
    return path


def _kind(schema: Schema) -> str:
    if isinstance(schema, NamedSchema):
        return f"{schema.type} {schema.fullname}"
    logical = schema.props.get("logicalType")
    return f"{schema.type} ({logical})" if logical else str(schema.type)
