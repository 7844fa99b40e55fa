"""Syncs stored as Definitions (``sync:<id>`` on ``refract.definitions``), and the YAML files they replace.

The stored body is the sync's canonical JSON form (``connectors.csv.to_body``, with its ``id``),
so two documents that say the same thing in different words give the same body, and saving one
again makes no new version. A sync may still be a file ``<data_dir>/syncs/<id>.yaml``, as before
syncs were definitions; when both exist, the stored definition wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.csv import MappingError, Sync, load_sync, parse_sync, to_body

SYNC_KIND = "sync"
SYNCS_FOLDER = "syncs"
"""The folder of ``<data_dir>`` holding sync files (``<id>.yaml``), read when no definition exists."""


@dataclass(slots=True, frozen=True)
class SyncDefinition:
    """A stored sync: its version and when it was saved, and the validated ``sync``."""

    sync_id: str
    version: int
    updated_at_ms: int
    sync: Sync

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.sync_id,
            "version": self.version,
            "updated_at_ms": self.updated_at_ms,
            "definition": to_body(self.sync),
        }


def sync_body(document: Mapping[str, Any], sync_id: str | None = None) -> dict[str, Any]:
    """The body to store for a sync ``document`` (as YAML or JSON gave it); raises ``MappingError``.

    ``sync_id`` (the id of a path) fills in a missing ``id`` and must equal a given one.
    """
    if sync_id is not None:
        given = document.get("id", sync_id)
        if given != sync_id:
            raise MappingError("id", f"the body says {given!r} but the path says {sync_id!r}")
        document = {**document, "id": sync_id}
    return to_body(parse_sync(dict(document)))


def sync_from_body(definition_id: str, version: int, body: Any, updated_at_ms: int) -> SyncDefinition:
    """The stored sync of a ``Definition`` body; raises ``MappingError`` when it does not validate."""
    if not isinstance(body, Mapping):
        raise MappingError("", "a sync's body must be a JSON object")
    sync = parse_sync(dict(body))
    if sync.id != definition_id:
        raise MappingError("id", f"the body says {sync.id!r} but the definition is {definition_id!r}")
    return SyncDefinition(definition_id, version, updated_at_ms, sync)


def sync_file(data_dir: Path, sync_id: str) -> Path:
    """Where the YAML file of ``sync_id`` would be (``sync_id`` must be a valid sync id)."""
    return data_dir / SYNCS_FOLDER / f"{sync_id}.yaml"


def find_sync(stored: Mapping[str, SyncDefinition], data_dir: Path, sync_id: str) -> Sync | None:
    """The sync ``sync_id``: its stored definition, else its YAML file, else None.

    Raises ``MappingError`` when only the file exists and it does not validate.
    """
    definition = stored.get(sync_id)
    if definition is not None:
        return definition.sync
    path = sync_file(data_dir, sync_id)
    if not path.is_file():
        return None
    return load_sync(path.read_bytes())
