"""Record changed wire schemas in ``schemas/history/`` as their next released version.

Run ``python -m schemas.release`` after changing a ``.avsc`` file. For each wire record whose
current schema differs on the wire (by fingerprint) from its latest version, it checks the
change against every released version both ways and, if compatible, writes the expanded schema
as ``schemas/history/<Record>/v<N+1>.avsc``. ``--check`` writes nothing and exits 1 when a
version is missing, for CI. Edits that do not change the wire (docs, defaults) need no version.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import SchemaCompatibilityError
from schemas.catalog import (
    HISTORY_DIR,
    SCHEMA_DIR,
    WIRE_RECORDS,
    SchemaSet,
    load_schema_set,
    version_path,
)
from schemas.compatibility import check_compatible
from schemas.framing import schema_fingerprint


def unreleased_records(schemas: SchemaSet) -> list[str]:
    """The wire records whose current schema is not their latest released version."""
    return [
        record
        for record in WIRE_RECORDS
        if not schemas.released[record]
        or schema_fingerprint(schemas.released[record][-1]) != schema_fingerprint(schemas.current[record])
    ]


def release(directory: Path = SCHEMA_DIR, history_dir: Path = HISTORY_DIR) -> list[Path]:
    """Write the next version of every changed wire record; the paths written.

    Raises SchemaCompatibilityError, writing nothing, if any change is incompatible.
    """
    schemas = load_schema_set(directory, history_dir)
    changed = unreleased_records(schemas)
    for record in changed:
        check_compatible(record, schemas.current[record], schemas.released[record])
    written = []
    for record in changed:
        path = version_path(record, len(schemas.released[record]) + 1, history_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(schemas.current[record], indent=2, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.release", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a version is missing")
    arguments = parser.parse_args(argv)
    if arguments.check:
        missing = unreleased_records(load_schema_set())
        for record in missing:
            print(f"{record}: the current schema is not in history; run python -m schemas.release")
        return 1 if missing else 0
    try:
        written = release()
    except SchemaCompatibilityError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("every wire schema is already recorded in history")
    return 0


if __name__ == "__main__":
    sys.exit(main())
