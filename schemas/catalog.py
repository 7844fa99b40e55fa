"""The schemas on disk: one named type per ``schemas/<Name>.avsc``, and the released versions of
every wire record in ``schemas/history/<Record>/v<N>.avsc``.

Files reference other named types by full name (``io.refract.PushToken``). A wire record (the
value of a topic) is *expanded* into one self-contained schema: each named type is inlined where
it first appears, as the Avro specification requires. History versions are stored expanded, so
each one parses on its own, forever, whatever later happens to the files it was built from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from schemas.errors import SchemaDefinitionError

JsonSchema: TypeAlias = dict[str, Any]

NAMESPACE = "io.refract"
SCHEMA_DIR = Path(__file__).resolve().parent
HISTORY_DIR = SCHEMA_DIR / "history"

# The records that are the value of a topic: only these are written, framed and fingerprinted,
# and only these have a history (the other named types are parts of them).
WIRE_RECORDS: tuple[str, ...] = (
    "Envelope",
    "Definition",
    "Delivery",
    "SegmentChange",
    "Decision",
    "DeadLetter",
)

_NAMED_KINDS = frozenset({"record", "enum", "fixed"})
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """Every wire record's current schema and its released versions (v1 first), all expanded."""

    current: Mapping[str, JsonSchema]
    released: Mapping[str, tuple[JsonSchema, ...]]


def full_name(schema: Mapping[str, Any]) -> str:
    """The full name (``io.refract.Envelope``) of a named schema."""
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def short_name(name: str) -> str:
    """``Envelope`` for ``io.refract.Envelope``."""
    return name.rpartition(".")[2]


def load_named_types(directory: Path = SCHEMA_DIR) -> dict[str, JsonSchema]:
    """Every ``<Name>.avsc`` of ``directory``, by full name; each file must define ``<Name>``."""
    named: dict[str, JsonSchema] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = _read_json(path)
        if schema.get("type") not in _NAMED_KINDS or schema.get("name") != path.stem:
            raise SchemaDefinitionError(
                f"{path} must define one named type called {path.stem!r} "
                f'(a record, enum or fixed with "name": {path.stem!r})'
            )
        if schema.get("namespace") != NAMESPACE:
            raise SchemaDefinitionError(f'{path} must use "namespace": {NAMESPACE!r}')
        named[full_name(schema)] = schema
    return named


def expand(name: str, named: Mapping[str, JsonSchema]) -> JsonSchema:
    """The self-contained schema of the named type ``name`` (short or full name)."""
    root = name if "." in name else f"{NAMESPACE}.{name}"
    if root not in named:
        raise SchemaDefinitionError(f"no schema file defines {root}; add schemas/{short_name(root)}.avsc")
    expanded = _expand(named[root], named, set())
    assert isinstance(expanded, dict)
    return expanded


def _expand(node: Any, named: Mapping[str, JsonSchema], defined: set[str]) -> Any:
    if isinstance(node, str):
        qualified = node if "." in node else f"{NAMESPACE}.{node}"
        if qualified in named and qualified not in defined:
            return _expand(named[qualified], named, defined)
        return node
    if isinstance(node, list):
        return [_expand(branch, named, defined) for branch in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    result = dict(node)
    if kind in _NAMED_KINDS:
        defined.add(full_name(node))
        if kind == "record":
            result["fields"] = [
                {**field, "type": _expand(field["type"], named, defined)} for field in node["fields"]
            ]
    elif kind == "array":
        result["items"] = _expand(node["items"], named, defined)
    elif kind == "map":
        result["values"] = _expand(node["values"], named, defined)
    elif isinstance(kind, dict | list):
        result["type"] = _expand(kind, named, defined)
    return result


def current_schemas(directory: Path = SCHEMA_DIR) -> dict[str, JsonSchema]:
    """The expanded current schema of every wire record, by short name."""
    named = load_named_types(directory)
    return {record: expand(record, named) for record in WIRE_RECORDS}


def version_path(record: str, version: int, history_dir: Path = HISTORY_DIR) -> Path:
    """Where version ``version`` of ``record`` is (or would be) kept."""
    return history_dir / record / f"v{version}.avsc"


def released_versions(record: str, history_dir: Path = HISTORY_DIR) -> tuple[JsonSchema, ...]:
    """The released versions of ``record``, v1 first; numbering must have no gaps."""
    folder = history_dir / record
    versions: dict[int, JsonSchema] = {}
    for path in folder.glob("*.avsc") if folder.is_dir() else ():
        match = _VERSION_FILE.match(path.name)
        if match is None:
            raise SchemaDefinitionError(f"{path}: history files are named v1.avsc, v2.avsc, ...")
        schema = _read_json(path)
        if schema.get("type") != "record" or full_name(schema) != f"{NAMESPACE}.{record}":
            raise SchemaDefinitionError(f"{path} must be an expanded {NAMESPACE}.{record} record")
        versions[int(match.group(1))] = schema
    expected = list(range(1, len(versions) + 1))
    if sorted(versions) != expected:
        raise SchemaDefinitionError(
            f"{folder}: versions must be numbered v1..v{len(versions)} without gaps, found {sorted(versions)}"
        )
    return tuple(versions[number] for number in expected)


def load_schema_set(directory: Path = SCHEMA_DIR, history_dir: Path = HISTORY_DIR) -> SchemaSet:
    """The current schemas and history of every wire record, as kept in the repository."""
    return SchemaSet(
        current=current_schemas(directory),
        released={record: released_versions(record, history_dir) for record in WIRE_RECORDS},
    )


def _read_json(path: Path) -> JsonSchema:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaDefinitionError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SchemaDefinitionError(f"{path} must hold one JSON object (a named schema)")
    return value
