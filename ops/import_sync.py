"""The sync of ``refract import FILE --sync NAME``: a YAML file, or a sync saved as a definition.

``NAME`` is first a path: a file there is read as a sync (as before syncs were definitions).
Otherwise a name that is a valid sync id is looked up on ``refract.definitions`` (read to its end
once, as ``refract apply`` does; the import itself needs Kafka anyway).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from connectors.csv import Sync, load_sync
from connectors.syncs.definition import SYNC_KIND, sync_from_body
from engine.errors import RefractError, ValidationError
from streams.definitions import DefinitionRecord, compile_record

_SYNC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")


class UnknownSync(ValidationError):
    """``--sync`` names neither a file nor a saved sync."""

    code = "sync_not_found"


def import_sync(name: str, definitions: Callable[[], Mapping[str, DefinitionRecord]]) -> Sync:
    """The sync ``name`` stands for; ``definitions()`` reads the definitions topic (only if needed).

    Raises ``UnknownSync``, ``MappingError`` (the file or the stored sync does not validate) or
    ``RefractError`` (the file cannot be read, or the topic cannot).
    """
    path = Path(name)
    if path.is_file():
        try:
            return load_sync(path.read_bytes())
        except OSError as exc:
            raise RefractError(f"cannot read the sync {name}: {exc.strerror}") from None
    if not _SYNC_ID.match(name) or path.suffix in (".yaml", ".yml"):
        raise UnknownSync(f"--sync {name}: no such file")
    record = definitions().get(f"{SYNC_KIND}:{name}")
    if record is None or record.deleted:
        raise UnknownSync(
            f"--sync {name}: no such file, and no sync {name!r} is saved (save it with 'refract apply')"
        )
    return compile_record(record, sync_from_body).sync
